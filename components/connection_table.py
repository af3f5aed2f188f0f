"""The connection gateway's WebSocket connection table: a :class:`Table` with the reference schema fixed."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.table import GlobalIndex, Table, TableArgs

CONNECTION_PK_INDEX = GlobalIndex(name="ConnectionPkIndex", hash_key="SK", range_key="PK", projection="ALL")


@dataclass(frozen=True, kw_only=True)
class ConnectionTableArgs:
    table_name: str
    point_in_time_recovery: bool = True
    deletion_protection: bool = True
    ttl_attribute: str | None = None
    """Optional expiry attribute for stale connections (the gateway computes staleness itself today)."""
    kms_key_arn: pulumi.Input[str] | None = None
    region: str | None = None
    protect: bool = False


class ConnectionTable(Table):
    """``PK`` = ``#{entity_type}#{entity_id}``, ``SK`` = connection id; ``ConnectionPkIndex`` finds a connection's
    entities."""

    TYPE = "macro:data:ConnectionTable"

    def __init__(self, name: str, args: ConnectionTableArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(name, TableArgs(
            table_name=args.table_name, hash_key="PK", range_key="SK", indexes=(CONNECTION_PK_INDEX,),
            ttl_attribute=args.ttl_attribute, point_in_time_recovery=args.point_in_time_recovery,
            deletion_protection=args.deletion_protection, kms_key_arn=args.kms_key_arn,
            region=args.region, protect=args.protect), opts)
