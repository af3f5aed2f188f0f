"""email_suppression fed SES's own samples inside real SNS envelopes: every documented bounce type and subtype in every
bounce sample, every complaint form, deliveries, and the setup messages SES publishes (acknowledged, never failures).
A message that is neither JSON nor a known setup message still fails, naming the SNS message id.
Handler runs are on each stack's recorded wiring (``world``), the envelopes carrying the recorded SES topic."""

from __future__ import annotations

import pytest
from email_suppression.handler import MalformedNotification, parse_event

from tests.data_plane import events
from tools.harness.world import World

FUNCTION = "email_suppression"

BOUNCE_SAMPLES = (*events.BOUNCE_SAMPLES, events.BOUNCE_OBJECT_SAMPLE)
COMPLAINTS = [
    *[(events.COMPLAINT_WITH_FEEDBACK, feedback) for feedback in events.FEEDBACK_TYPES],
    (events.COMPLAINT_WITHOUT_FEEDBACK, None),
    *[(events.COMPLAINT_EVENT_RECORD, feedback) for feedback in events.FEEDBACK_TYPES],
]


def _short(name: str) -> str:
    return name.split("/")[-1].removesuffix(".json").removesuffix(".txt").replace("notification-examples.", "")


def cases() -> list[tuple[str, str, list[str], str]]:
    """(case id, SNS Message, addresses to block, reason of each block); addresses are unique per case."""
    out = []
    for name in BOUNCE_SAMPLES:
        for bounce_type, sub_types in events.BOUNCE_TYPES.items():
            for sub_type in sub_types:
                case = f"{_short(name)}-{bounce_type}-{sub_type}"
                message, _, failed = events.ses_bounce(name, bounce_type, sub_type, case.lower())
                blocked = failed if bounce_type == "Permanent" else []
                out.append((case, message, blocked, f"bounce:Permanent:{sub_type}"))
    for name, feedback in COMPLAINTS:
        case = f"{_short(name)}-{feedback or 'sample'}"
        message, recipients = events.ses_complaint(name, feedback, case.lower())
        reason_feedback = feedback or ("abuse" if name == events.COMPLAINT_EVENT_RECORD else "unspecified")
        blocked = [] if feedback == "not-spam" else recipients
        out.append((case, message, blocked, f"complaint:{reason_feedback}:none"))
    out.append(("delivery", events.ses_delivery(), [], ""))
    out.append(("setup-event-destination-validated", events.text(events.VALIDATION_MESSAGE), [], ""))
    out.append(("setup-subscription-succeeded", events.text(events.SUBSCRIPTION_SUCCEEDED), [], ""))
    return out


CASES = cases()


@pytest.mark.parametrize("sns_sample", events.SNS_SAMPLES, ids=_short)
@pytest.mark.parametrize(("case", "message", "blocked", "reason"), CASES, ids=[c[0] for c in CASES])
def test_every_ses_sample_in_every_sns_envelope(sns_sample, case, message, blocked, reason):
    """The decision for each case alone, as SNS delivers it (one record an invocation)."""
    decided = parse_event(events.sns_event(sns_sample, message))
    assert sorted((b.email, b.reason) for b in decided) == sorted((address, reason) for address in blocked)


def test_the_delayed_recipient_of_a_permanent_bounce_is_not_blocked():
    """SES's bounce-object example: recipient1 ``failed`` (5.0.0), recipient2 ``delayed`` (4.0.0)."""
    message, recipients, failed = events.ses_bounce(events.BOUNCE_OBJECT_SAMPLE, "Permanent", "General", "d")
    assert len(recipients) == 2 and failed == recipients[:1]
    assert [b.email for b in parse_event(events.sns_event(events.SNS_SAMPLES[0], message))] == failed


@pytest.mark.parametrize("sns_sample", events.SNS_SAMPLES, ids=_short)
def test_all_samples_through_the_handler_write_exactly_the_blocks(sns_sample, world: World, pg):
    """Every case's message in one event through the handler and PostgreSQL (setup messages among them)."""
    event = events.sns_event(sns_sample, *(message for _, message, _, _ in CASES),
                             topic_arn=world.topic_arn("ses-bounces"))
    result = world.invoke(FUNCTION, event)
    expected = sorted({(address, reason) for _, _, blocked, reason in CASES for address in blocked})
    assert sorted(map(tuple, pg.query('SELECT email, reason FROM "BlockedEmail"'))) == expected
    assert result == {"blocked": sorted(address for address, _ in expected)}


@pytest.mark.parametrize("sns_sample", events.SNS_SAMPLES, ids=_short)
def test_the_event_destination_validation_message_is_acknowledged(sns_sample, world: World, pg):
    """Defect 1: this plain-text message used to fail ("Message is not JSON"), then page on-call every setup."""
    event = events.sns_event(sns_sample, events.text(events.VALIDATION_MESSAGE),
                             topic_arn=world.topic_arn("ses-bounces"))
    assert world.invoke(FUNCTION, event) == {"blocked": []}
    assert pg.query('SELECT count(*) FROM "BlockedEmail"') == [[0]]


@pytest.mark.parametrize("sns_sample", events.SNS_SAMPLES, ids=_short)
@pytest.mark.parametrize(
    "message",
    [
        None,  # the envelope sample's own Message: "Hello from SNS!"
        "Successfully validated SNS topic for Amazon SES event publishing. (not really)",
        "Successfully validated SNS topic",
    ],
)
def test_other_plain_text_still_fails_naming_the_message(sns_sample, message, world: World, pg):
    """Not a known setup message: raised with the SNS message id, so retries and the failed-events queue keep it."""
    if message is None:
        message = events.sample(sns_sample)["Records"][0]["Sns"]["Message"]
    event = events.sns_event(sns_sample, message, topic_arn=world.topic_arn("ses-bounces"))
    message_id = event["Records"][0]["Sns"]["MessageId"]
    with pytest.raises(MalformedNotification, match=f"SNS message {message_id}: Message is not JSON"):
        world.invoke(FUNCTION, event)
    assert pg.query('SELECT count(*) FROM "BlockedEmail"') == [[0]]
