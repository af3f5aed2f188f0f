"""email_suppression: every SES bounce and complaint subtype handled; permanent ones blocked; malformed ones raise."""

from __future__ import annotations

import json

import pytest
from email_suppression.handler import MalformedNotification, handler, parse_event

BOUNCES = {
    "Undetermined": ["Undetermined"],
    "Permanent": ["General", "NoEmail", "Suppressed", "OnAccountSuppressionList", "SomethingNew"],
    "Transient": ["General", "MailboxFull", "MessageTooLarge", "ContentRejected", "AttachmentRejected", "Other"],
    "Unheard": ["General"],
}
CASES = [(t, s) for t, subs in BOUNCES.items() for s in subs]
# (complaintFeedbackType, complaintSubType); None = absent. Only not-spam is not blocked.
COMPLAINTS = [
    ("abuse", None),
    ("auth-failure", None),
    ("fraud", None),
    ("virus", None),
    ("other", None),
    (None, None),
    (None, "OnAccountSuppressionList"),
    ("not-spam", None),
]


def _event(*notifications) -> dict:
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "Sns": {"MessageId": f"sns-{i}", "Message": n if isinstance(n, str) else json.dumps(n)},
            }
            for i, n in enumerate(notifications)
        ]
    }


def _bounce(bounce_type, sub_type, *emails, key="notificationType"):
    recipients = [{"emailAddress": e, "status": "5.1.1"} for e in emails]
    return {
        key: "Bounce",
        "bounce": {"bounceType": bounce_type, "bounceSubType": sub_type, "bouncedRecipients": recipients},
        "mail": {"messageId": "x"},
    }


def _complaint(feedback, sub_type, *emails):
    complaint = {"complainedRecipients": [{"emailAddress": e} for e in emails], "complaintSubType": sub_type}
    if feedback is not None:
        complaint["complaintFeedbackType"] = feedback
    return {"notificationType": "Complaint", "complaint": complaint, "mail": {"messageId": "x"}}


def _blocked(pg) -> list[str]:
    return [row[0] for row in pg.query('SELECT email FROM "BlockedEmail" ORDER BY email')]


def test_every_bounce_subtype_and_complaint_kind_in_one_event(database_secret, pg, lambda_context):
    """One recipient a case; only permanent bounces and real complaints end up blocked (lower-cased)."""
    bounces = [_bounce(t, s, f"Bounce.{t}.{s}@Example.com") for t, s in CASES]
    complaints = [
        _complaint(feedback, sub_type, f"complaint.{feedback}.{sub_type}@example.com")
        for feedback, sub_type in COMPLAINTS
    ]
    result = handler(_event(*bounces, *complaints), lambda_context)
    expected = sorted(
        [f"bounce.permanent.{s.lower()}@example.com" for t, s in CASES if t == "Permanent"]
        + [f"complaint.{f}.{s}@example.com".lower() for f, s in COMPLAINTS if f != "not-spam"]
    )
    assert _blocked(pg) == expected
    assert result == {"blocked": expected}
    reasons = dict(pg.query('SELECT email, reason FROM "BlockedEmail"'))
    assert (
        reasons["bounce.permanent.onaccountsuppressionlist@example.com"] == "bounce:Permanent:OnAccountSuppressionList"
    )
    assert reasons["complaint.none.none@example.com"] == "complaint:unspecified:none"


def test_display_names_are_stripped(database_secret, pg, lambda_context):
    handler(_event(_complaint("abuse", None, "A@x.io", "Bob <B@x.io>")), lambda_context)
    assert _blocked(pg) == ["a@x.io", "b@x.io"]


def test_redelivery_and_event_publishing_format(database_secret, pg, lambda_context):
    event = _event(_bounce("Permanent", "General", "a@x.io", key="eventType"), {"notificationType": "Delivery"})
    handler(event, lambda_context)
    handler(event, lambda_context)
    assert pg.query('SELECT email, reason FROM "BlockedEmail"') == [["a@x.io", "bounce:Permanent:General"]]


@pytest.mark.parametrize(
    "bad",
    [
        "not json",
        json.dumps(["a list"]),
        {"bounce": {}},  # no type
        {"notificationType": "Bounce"},
        _bounce("Permanent", "General"),  # no recipients
        {"notificationType": "Bounce", "bounce": {"bounceType": "Permanent", "bouncedRecipients": [{"x": 1}]}},
        _complaint("abuse", None, "not-an-address"),
    ],
)
def test_malformed_notifications_are_named(bad):
    with pytest.raises(MalformedNotification, match="SNS message sns-1"):
        parse_event(_event(_bounce("Permanent", "General", "ok@x.io"), bad))


def test_a_malformed_event_raises_and_writes_nothing(database_secret, pg, lambda_context):
    with pytest.raises(MalformedNotification, match="sns-1"):
        handler(_event(_bounce("Permanent", "General", "ok@x.io"), "not json"), lambda_context)
    assert _blocked(pg) == []  # all-or-nothing: the retry / on-failure destination gets the whole event
    for bad_event in ({"Records": []}, {"Records": [{"no": "Sns"}]}, []):
        with pytest.raises(MalformedNotification):
            handler(bad_event, lambda_context)
