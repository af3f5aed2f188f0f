"""Blocks addresses that SES reports as permanently bouncing or complaining (SNS → Lambda, asynchronous).

Decisions, by SES notification:
- Bounce ``Permanent`` (any subtype: General, NoEmail, Suppressed, OnAccountSuppressionList, unknown future ones):
  every bounced recipient is blocked. Sending again only hurts the account's reputation. A recipient whose DSN
  ``action`` is not ``failed`` (``delayed``: SES's own bounce-object example has one, status 4.0.0) has not failed
  yet: logged, not blocked. Recipients without an action (bounces without a DSN) are blocked.
- Bounce ``Transient`` (General, MailboxFull, MessageTooLarge, ContentRejected, AttachmentRejected, ...) and
  ``Undetermined``: logged, not blocked; the address may work tomorrow. Unknown bounce types: logged as a warning.
- Complaint: every complained recipient is blocked, whatever ``complaintSubType`` and whether or not a feedback type
  is present (many providers send none), except feedback type ``not-spam``, which is the recipient *undoing* a spam
  report: logged, not blocked.
- SES setup messages are acknowledged and logged at info, never failures: the plain-text "Successfully validated SNS
  topic for Amazon SES event publishing." SES publishes when a configuration-set event destination is created, and
  ``notificationType: AmazonSnsSubscriptionSucceeded`` when an identity's notifications are pointed at the topic.
- Delivery and other notification types: ignored (logged at debug).
A malformed notification (including any other message that is not JSON) raises, so Lambda's retries and then the
on-failure destination keep it; nothing is dropped.
Writes are ``ON CONFLICT DO NOTHING``, so retries and duplicate notifications are harmless.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any

from core import db
from core.logging import logger

# Sent by SES itself when the topic is wired up; matched exactly, so anything else that is not JSON still fails.
SETUP_MESSAGES = frozenset({"Successfully validated SNS topic for Amazon SES event publishing."})
SETUP_NOTIFICATION_TYPES = frozenset({"AmazonSnsSubscriptionSucceeded"})


class MalformedNotification(ValueError):
    """The SNS record is not an SES notification we can read; the message names the SNS message id."""


@dataclass(frozen=True)
class Block:
    email: str
    reason: str


def _addresses(message_id: str, recipients: Any, field: str) -> list[str]:
    if not isinstance(recipients, list) or not recipients:
        raise MalformedNotification(f"SNS message {message_id}: {field} is missing or empty")
    out = []
    for entry in recipients:
        raw = entry.get("emailAddress") if isinstance(entry, dict) else None
        address = parseaddr(raw)[1].strip().lower() if isinstance(raw, str) else ""
        if "@" not in address:
            raise MalformedNotification(f"SNS message {message_id}: {field} has an invalid emailAddress {raw!r}")
        out.append(address)
    return out


def decide(message_id: str, notification: Any) -> list[Block]:
    """The addresses to block for one SES notification (logging the ones deliberately not blocked)."""
    if not isinstance(notification, dict):
        raise MalformedNotification(f"SNS message {message_id}: notification is not a JSON object")
    kind = notification.get("notificationType") or notification.get("eventType")
    if kind == "Bounce":
        bounce = notification.get("bounce")
        if not isinstance(bounce, dict):
            raise MalformedNotification(f"SNS message {message_id}: Bounce without a bounce object")
        bounce_type, sub_type = bounce.get("bounceType"), bounce.get("bounceSubType")
        recipients = _addresses(message_id, bounce.get("bouncedRecipients"), "bounce.bouncedRecipients")
        if bounce_type == "Permanent":  # _addresses checked: a list of objects, one per recipient
            actions = [str(entry.get("action") or "failed").lower() for entry in bounce["bouncedRecipients"]]
            pending = [r for r, action in zip(recipients, actions, strict=True) if action != "failed"]
            if pending:
                logger.info(
                    "permanent bounce recipients not failed yet (DSN action), not blocked",
                    extra={"sns_message_id": message_id, "recipients": pending},
                )
            return [
                Block(r, f"bounce:Permanent:{sub_type}")
                for r, action in zip(recipients, actions, strict=True)
                if action == "failed"
            ]
        log = logger.info if bounce_type in {"Transient", "Undetermined"} else logger.warning
        log("bounce not blocked", extra={"sns_message_id": message_id, "type": bounce_type, "sub_type": sub_type})
        return []
    if kind == "Complaint":
        complaint = notification.get("complaint")
        if not isinstance(complaint, dict):
            raise MalformedNotification(f"SNS message {message_id}: Complaint without a complaint object")
        feedback = complaint.get("complaintFeedbackType")
        recipients = _addresses(message_id, complaint.get("complainedRecipients"), "complaint.complainedRecipients")
        if feedback == "not-spam":
            logger.info("not-spam feedback not blocked", extra={"sns_message_id": message_id})
            return []
        reason = f"complaint:{feedback or 'unspecified'}:{complaint.get('complaintSubType') or 'none'}"
        return [Block(r, reason) for r in recipients]
    if kind in SETUP_NOTIFICATION_TYPES:
        logger.info("SES setup notification acknowledged", extra={"sns_message_id": message_id, "type": kind})
        return []
    if isinstance(kind, str) and kind:
        logger.debug("notification ignored", extra={"sns_message_id": message_id, "type": kind})
        return []
    raise MalformedNotification(f"SNS message {message_id}: no notificationType or eventType")


def parse_event(event: Any) -> list[Block]:
    if not isinstance(event, dict) or not isinstance(event.get("Records"), list) or not event["Records"]:
        raise MalformedNotification("event is not an SNS event (no Records)")
    blocks: list[Block] = []
    for record in event["Records"]:
        sns = record.get("Sns") if isinstance(record, dict) else None
        if not isinstance(sns, dict):
            raise MalformedNotification("record without an Sns object")
        message_id = str(sns.get("MessageId", "unknown"))
        message = sns.get("Message")
        if isinstance(message, str) and message.strip() in SETUP_MESSAGES:
            logger.info("SES setup message acknowledged", extra={"sns_message_id": message_id, "text": message})
            continue
        try:
            notification = json.loads(message or "")
        except (TypeError, ValueError):
            raise MalformedNotification(
                f"SNS message {message_id}: Message is not JSON and not a known SES setup message: "
                f"{str(message)[:60]!r}"
            ) from None
        blocks.extend(decide(message_id, notification))
    return blocks


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    blocks = parse_event(event)  # validate everything before writing anything
    if blocks:
        with db.connection() as conn, db.transaction(conn) as cur:
            for block in blocks:
                cur.execute(
                    'INSERT INTO "BlockedEmail" (email, reason) VALUES (%s, %s) ON CONFLICT (email) DO NOTHING',
                    (block.email, block.reason),
                )
    logger.info("suppression processed", extra={"blocked": len(blocks)})
    return {"blocked": sorted({b.email for b in blocks})}
