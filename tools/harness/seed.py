"""What the platform's services do before the data plane runs, for tests and the demo (the upload API's side)."""

from __future__ import annotations

import uuid

from tools.harness.world import World


def bulk_upload_request(world: World, user_id: str, request_id: str | None = None) -> str:
    """A bulk-upload request registered as the upload API does (status ``uploaded``); returns its id (a new UUID
    unless given). The zip goes to ``extract/<id>`` in the staging bucket."""
    from bulk_upload import handler as bulk  # lambdas/ is on sys.path once a world is built

    request_id = request_id or str(uuid.uuid4())
    item = {"PK": f"REQUEST#{request_id}", "SK": "META", "request_id": request_id, "user_id": user_id,
            "key": f"extract/{request_id}", "status": "uploaded"}
    world.client("dynamodb").put_item(TableName=world.table("bulk-upload"), Item=bulk._item(item))
    return request_id
