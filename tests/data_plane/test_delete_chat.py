"""delete_chat: one transaction per soft-deleted chat, idempotent, stale and malformed messages handled visibly.

Messages go through the recorded delete-chat queue and its event source mapping (``world``, both stacks).
"""

from __future__ import annotations

import pytest

from tools.harness.world import World

QUEUE = "delete-chat-handler"


def _seed_chat(pg, chat_id: str, deleted: bool) -> None:
    deleted_at = "now() - interval '40 days'" if deleted else "NULL"
    pg.query(f'INSERT INTO "Chat" (id, "userId", "deletedAt") VALUES (%s, %s, {deleted_at})', chat_id, "u1")
    pg.query('INSERT INTO "ChatMessage" (id, "chatId") VALUES (%s, %s)', f"{chat_id}-m", chat_id)
    pg.query(
        'INSERT INTO "Pin" ("userId", "pinnedItemId", "pinnedItemType") VALUES (%s, %s, %s)', "u1", chat_id, "chat"
    )
    pg.query('INSERT INTO "UserHistory" ("userId", "itemId", "itemType") VALUES (%s, %s, %s)', "u1", chat_id, "chat")
    pg.query('INSERT INTO "SharePermission" (id) VALUES (%s)', f"sp-{chat_id}")
    pg.query('INSERT INTO "ChatPermission" ("chatId", "sharePermissionId") VALUES (%s, %s)', chat_id, f"sp-{chat_id}")
    pg.query('INSERT INTO "UserItemAccess" ("userId", "itemId", "itemType") VALUES (%s, %s, %s)', "u2", chat_id, "chat")


def _counts(pg, chat_id: str) -> dict[str, int]:
    queries = {
        "Chat": ('SELECT count(*) FROM "Chat" WHERE id = %s', chat_id),
        "ChatMessage": ('SELECT count(*) FROM "ChatMessage" WHERE "chatId" = %s', chat_id),
        "Pin": ('SELECT count(*) FROM "Pin" WHERE "pinnedItemId" = %s', chat_id),
        "UserHistory": ('SELECT count(*) FROM "UserHistory" WHERE "itemId" = %s', chat_id),
        "SharePermission": ('SELECT count(*) FROM "SharePermission" WHERE id = %s', f"sp-{chat_id}"),
        "ChatPermission": ('SELECT count(*) FROM "ChatPermission" WHERE "chatId" = %s', chat_id),
        "UserItemAccess": ('SELECT count(*) FROM "UserItemAccess" WHERE "itemId" = %s', chat_id),
    }
    return {name: pg.query(sql, arg)[0][0] for name, (sql, arg) in queries.items()}


def test_deletes_a_soft_deleted_chat_and_everything_pointing_at_it(world: World, pg):
    _seed_chat(pg, "c1", deleted=True)
    _seed_chat(pg, "c2", deleted=True)
    world.send_message(QUEUE, "c1", {"chat_id": "c1"})
    assert world.poll(QUEUE).result == {"batchItemFailures": []}
    assert set(_counts(pg, "c1").values()) == {0}
    assert set(_counts(pg, "c2").values()) == {1}  # other chats untouched
    # Redelivery: the chat is gone, which is success, and nothing else changes.
    world.send_message(QUEUE, "c1", {"chat_id": "c1"})
    assert world.poll(QUEUE).result == {"batchItemFailures": []}
    assert set(_counts(pg, "c2").values()) == {1}


def test_a_chat_that_is_not_soft_deleted_is_kept(world: World, pg):
    _seed_chat(pg, "live", deleted=False)
    world.send_message(QUEUE, "live", {"chat_id": "live"})
    assert world.poll(QUEUE).result == {"batchItemFailures": []}
    assert set(_counts(pg, "live").values()) == {1}


@pytest.mark.parametrize(
    ("body", "attributes"),
    [
        ("c1", {}),  # missing attribute
        ("c1", {"chat_id": "   "}),  # empty attribute
        ("c1", {"chat_id": "other"}),  # body and attribute disagree
        ('{"chat_id": "c1"', {"chat_id": "bad id\n"}),  # unparseable body, invalid id
    ],
)
def test_malformed_messages_are_batch_item_failures(wired_world, pg, caplog, body, attributes):
    world = wired_world("dev")  # the handler's behaviour; both stacks' wiring is covered by the tests above
    _seed_chat(pg, "c1", deleted=True)
    world.send_message(QUEUE, "c1", {"chat_id": "c1"})
    bad = world.send_message(QUEUE, body, attributes)
    run = world.poll(QUEUE)
    assert run is not None and run.result == {"batchItemFailures": [{"itemIdentifier": bad}]}
    logged = caplog.text
    assert "batch item failure" in logged and f"message {bad}" in logged  # the reason names the message
    assert set(_counts(pg, "c1").values()) == {0}  # the good record in the same batch still succeeded


def test_a_database_failure_fails_the_record_not_the_batch(world: World, pg):
    _seed_chat(pg, "c1", deleted=True)
    pg.query('ALTER TABLE "Pin" RENAME TO "PinMoved"')
    try:
        message = world.send_message(QUEUE, "c1", {"chat_id": "c1"})
        run = world.poll(QUEUE)
    finally:
        pg.query('ALTER TABLE "PinMoved" RENAME TO "Pin"')
    assert run is not None and run.result == {"batchItemFailures": [{"itemIdentifier": message}]}
    assert set(_counts(pg, "c1").values()) == {1}  # rolled back: nothing half-deleted
