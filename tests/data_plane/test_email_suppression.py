"""email_suppression: every SES bounce and complaint subtype handled; permanent ones blocked; malformed ones raise.

Handler runs are on each stack's recorded wiring (``world``): the notifications come from the recorded SES topics the
function is subscribed to, and it reaches the database through its recorded secret and role."""

from __future__ import annotations

import json

import pytest
from email_suppression.handler import MalformedNotification, parse_event

from tools.harness.world import UnwiredEvent, World

FUNCTION = "email_suppression"

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


def _topic(world: World | None, notification) -> str | None:
    """The recorded topic SES publishes this kind of notification to (None: no world, for the parser alone)."""
    if world is None:
        return None
    complaint = isinstance(notification, dict) and "complaint" in notification
    return world.topic_arn("ses-complaints" if complaint else "ses-bounces")


def _event(*notifications, world: World | None = None) -> dict:
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "Sns": {"MessageId": f"sns-{i}", "Message": n if isinstance(n, str) else json.dumps(n),
                        "TopicArn": _topic(world, n)},
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


def test_every_bounce_subtype_and_complaint_kind_in_one_event(world: World, pg):
    """One recipient a case; only permanent bounces and real complaints end up blocked (lower-cased)."""
    bounces = [_bounce(t, s, f"Bounce.{t}.{s}@Example.com") for t, s in CASES]
    complaints = [
        _complaint(feedback, sub_type, f"complaint.{feedback}.{sub_type}@example.com")
        for feedback, sub_type in COMPLAINTS
    ]
    result = world.invoke(FUNCTION, _event(*bounces, *complaints, world=world))
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


def test_display_names_are_stripped(world: World, pg):
    world.invoke(FUNCTION, _event(_complaint("abuse", None, "A@x.io", "Bob <B@x.io>"), world=world))
    assert _blocked(pg) == ["a@x.io", "b@x.io"]


def test_redelivery_and_event_publishing_format(world: World, pg):
    event = _event(_bounce("Permanent", "General", "a@x.io", key="eventType"), {"notificationType": "Delivery"},
                   world=world)
    world.invoke(FUNCTION, event)
    world.invoke(FUNCTION, event)
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


def test_a_malformed_event_raises_and_writes_nothing(world: World, pg):
    with pytest.raises(MalformedNotification, match="sns-1"):
        world.invoke(FUNCTION, _event(_bounce("Permanent", "General", "ok@x.io"), "not json", world=world))
    assert _blocked(pg) == []  # all-or-nothing: the retry / on-failure destination gets the whole event
    for bad_event in ({"Records": []}, {"Records": [{"no": "Sns"}]}, []):  # shapes no trigger delivers
        with pytest.raises(UnwiredEvent):
            world.invoke(FUNCTION, bad_event)
        with pytest.raises(MalformedNotification):
            world.run(FUNCTION, bad_event)


def test_a_notification_published_to_its_topic_is_blocked_and_one_from_another_topic_is_not_delivered(
        world: World, pg):
    [run] = world.publish("ses-complaints", json.dumps(_complaint("abuse", None, "Spam@x.io")))
    assert run.via.startswith("SNS topic") and run.result == {"blocked": ["spam@x.io"]}
    other = _event(_complaint("abuse", None, "x@x.io"))
    other["Records"][0]["Sns"]["TopicArn"] = world.topic_arn("on-call")
    with pytest.raises(UnwiredEvent):
        world.invoke(FUNCTION, other)
