"""Batch sends that check every entry: failed entries are retried a bounded number of times, then reported.

The reference poller sent batches of 10 and ignored ``Failed``; a message lost there means an item never deleted.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from core import aws

BATCH = 10  # SendMessageBatch accepts at most 10 entries


@dataclass(frozen=True)
class Message:
    key: str
    """Caller's name for the message (e.g. ``chat:c1``), reported back when it could not be sent."""
    body: str
    attributes: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, key: str, payload: Any, **attributes: str) -> Message:
        return cls(key=key, body=json.dumps(payload, separators=(",", ":")), attributes=attributes)


def send_all(queue_url: str, messages: list[Message], *, attempts: int = 3, backoff: float = 0.2) -> dict[str, str]:
    """Send every message; returns ``{key: reason}`` for those still failing after ``attempts`` tries."""
    sqs = aws.client("sqs")
    failed: dict[str, str] = {}
    for start in range(0, len(messages), BATCH):
        pending = {str(i): m for i, m in enumerate(messages[start : start + BATCH])}
        reasons: dict[str, str] = {}
        for attempt in range(attempts):
            if not pending:
                break
            if attempt:
                time.sleep(backoff * 2 ** (attempt - 1))
            entries = [
                {
                    "Id": entry_id,
                    "MessageBody": m.body,
                    "MessageAttributes": {k: {"DataType": "String", "StringValue": v} for k, v in m.attributes.items()},
                }
                for entry_id, m in pending.items()
            ]
            try:
                response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
            except Exception as exc:  # the whole call failed: every entry is still pending
                reasons = {entry_id: f"{type(exc).__name__}: {exc}" for entry_id in pending}
                continue
            reasons = {f["Id"]: f"{f.get('Code')}: {f.get('Message', '')}" for f in response.get("Failed", [])}
            pending = {entry_id: m for entry_id, m in pending.items() if entry_id in reasons}
        failed.update({m.key: reasons.get(entry_id, "unknown") for entry_id, m in pending.items()})
    return failed
