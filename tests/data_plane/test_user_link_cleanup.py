"""user_link_cleanup: rows older than 24 hours go, newer ones stay, a second run deletes nothing (on the recorded
schedule, both stacks); a bad limit fails every retry and lands in the function's on-failure queue."""

from __future__ import annotations

import json

from tools.harness.world import World


def test_deletes_only_expired_links(world: World, pg):
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
    [run] = world.schedule("user-link-cleanup")
    assert run.result == {"in_progress_user_link": 2, "in_progress_email_link": 2}
    assert pg.query("SELECT macro_user_id FROM in_progress_user_link") == [["u1"]]
    assert pg.query("SELECT macro_user_id FROM in_progress_email_link") == [["u1"]]
    [run] = world.schedule("user-link-cleanup")
    assert run.result == {"in_progress_user_link": 0, "in_progress_email_link": 0}


def test_an_invalid_limit_ends_in_the_failed_events_queue(world: World):
    function = world.function("user_link_cleanup")
    world.set_env("user_link_cleanup", "USER_LINK_MAX_AGE_HOURS", "0")  # a deploy with a bad value
    runs = world.schedule("user-link-cleanup")
    assert len(runs) == 1 + function.retries and all("USER_LINK_MAX_AGE_HOURS" in r.outcome for r in runs)
    assert function.on_failure is not None
    [failed] = world.messages(world.url_of_queue_arn(function.on_failure))
    record = json.loads(failed["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert "USER_LINK_MAX_AGE_HOURS" in record["responsePayload"]["errorMessage"]
