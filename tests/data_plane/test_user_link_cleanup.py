"""user_link_cleanup: rows older than 24 hours go, newer ones stay, a second run deletes nothing."""

from __future__ import annotations

import pytest
from user_link_cleanup.handler import handler


def test_deletes_only_expired_links(database_secret, pg, lambda_context, monkeypatch):
    for i, age in enumerate(("25 hours", "23 hours", "10 days")):
        pg.query(
            f"INSERT INTO in_progress_user_link (macro_user_id, created_at) VALUES (%s, now() - interval '{age}')",
            f"u{i}",
        )
        pg.query(
            "INSERT INTO in_progress_email_link (macro_user_id, email, created_at) "
            f"VALUES (%s, %s, now() - interval '{age}')",
            f"u{i}",
            f"u{i}@x.io",
        )
    assert handler({}, lambda_context) == {"in_progress_user_link": 2, "in_progress_email_link": 2}
    assert pg.query("SELECT macro_user_id FROM in_progress_user_link") == [["u1"]]
    assert pg.query("SELECT macro_user_id FROM in_progress_email_link") == [["u1"]]
    assert handler({}, lambda_context) == {"in_progress_user_link": 0, "in_progress_email_link": 0}

    monkeypatch.setenv("USER_LINK_MAX_AGE_HOURS", "0")
    with pytest.raises(ValueError, match="USER_LINK_MAX_AGE_HOURS"):
        handler({}, lambda_context)
