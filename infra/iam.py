"""IAM policy documents built from grants, so no component writes policy JSON by hand.

A :class:`Grants` collects statements for one principal; components add to it through their grant helpers
(``bucket.grant_read(grants, prefix="extract/")``) and the owner of the role turns it into exactly one policy.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi

# The only statements allowed a "*" resource, because AWS offers no resource-level scoping for these actions.
WILDCARD_RESOURCE_ACTIONS = frozenset({
    "xray:PutTraceSegments",       # X-Ray has no resource ARNs
    "xray:PutTelemetryRecords",
    "ec2:CreateNetworkInterface",  # Lambda VPC ENIs: AWS requires "*" (as AWSLambdaVPCAccessExecutionRole grants)
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
    "ecr:GetAuthorizationToken",   # ECR login token is account-wide
    "secretsmanager:GetRandomPassword",  # rotation functions: the API has no resource type
})


def assume_role_policy(service: str) -> str:
    """Trust policy naming exactly one AWS service principal."""
    if not service.endswith(".amazonaws.com"):
        raise ValueError(f"trust principal {service!r} must be an AWS service principal")
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
    })


@dataclass
class Grants:
    """The statements one principal is allowed; rendered once into a policy document."""

    owner: str
    statements: list[dict[str, Any]] = field(default_factory=list)

    def allow(self, sid: str, actions: Sequence[str], resources: Sequence[pulumi.Input[str]],
              condition: dict[str, Any] | None = None) -> None:
        if not actions or any("*" in a for a in actions):
            raise ValueError(f"{self.owner}: grant {sid} must list concrete actions, got {list(actions)}")
        if any(r == "*" for r in resources) and not set(actions) <= WILDCARD_RESOURCE_ACTIONS:
            raise ValueError(f"{self.owner}: grant {sid} uses resource '*' for actions AWS can scope: {list(actions)}")
        statement: dict[str, Any] = {"Sid": _sid(sid), "Effect": "Allow", "Action": sorted(set(actions)),
                                     "Resource": list(resources)}
        if condition:
            statement["Condition"] = condition
        for existing in self.statements:
            if existing["Sid"] != statement["Sid"]:
                continue
            if _same(existing, statement):
                return  # the same grant reached through two helpers (e.g. one key for several secrets)
            raise ValueError(f"{self.owner}: two different grants are both labelled {sid!r}")
        self.statements.append(statement)

    def __bool__(self) -> bool:
        return bool(self.statements)

    def document(self) -> pulumi.Output[str]:
        if not self.statements:
            raise ValueError(f"{self.owner}: a policy needs at least one grant")
        return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": self.statements})


# The account keeps full control of a key through IAM, spelled out so no wildcard action appears.
KEY_ADMIN_ACTIONS = [
    "kms:CancelKeyDeletion", "kms:CreateAlias", "kms:CreateGrant", "kms:Decrypt", "kms:DeleteAlias",
    "kms:DescribeKey", "kms:DisableKey", "kms:DisableKeyRotation", "kms:EnableKey", "kms:EnableKeyRotation",
    "kms:Encrypt", "kms:GenerateDataKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:ListAliases",
    "kms:ListGrants", "kms:ListResourceTags", "kms:PutKeyPolicy", "kms:ReEncryptFrom", "kms:ReEncryptTo",
    "kms:RetireGrant", "kms:RevokeGrant", "kms:ScheduleKeyDeletion", "kms:TagResource", "kms:UntagResource",
    "kms:UpdateAlias", "kms:UpdateKeyDescription",
]


# What encrypting and decrypting through a service takes (the service creates grants on the caller's behalf).
KEY_USE_ACTIONS = ["kms:CreateGrant", "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey",
                   "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom", "kms:ReEncryptTo"]


def key_policy(account_id: pulumi.Input[str], service_statements: Sequence[dict[str, Any]] = (), *,
               used_via: str | None = None) -> pulumi.Output[str]:
    """A KMS key policy: the account administers the key through IAM (no lock-out), plus the given service grants.
    With ``used_via`` (e.g. ``dynamodb.us-east-1.amazonaws.com``) the account's principals may use the key only through
    that service (``kms:ViaService``), never directly. In a key policy the resource "*" means the key itself."""
    root = pulumi.Output.concat("arn:aws:iam::", account_id, ":root")
    admin = [a for a in KEY_ADMIN_ACTIONS if not used_via or a not in KEY_USE_ACTIONS]
    statements: list[dict[str, Any]] = [{"Sid": "AccountAdministersKey", "Effect": "Allow",
                                         "Principal": {"AWS": root}, "Action": admin, "Resource": "*"}]
    if used_via:
        statements.append({
            "Sid": "AccountUsesKeyOnlyThroughService", "Effect": "Allow", "Principal": {"AWS": root},
            "Action": KEY_USE_ACTIONS, "Resource": "*",
            "Condition": {"StringEquals": {"kms:ViaService": used_via, "kms:CallerAccount": account_id}}})
    return document([*statements, *service_statements])


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal statements; resources may be Outputs, which compare by identity."""
    return (a["Action"] == b["Action"] and a.get("Condition") == b.get("Condition")
            and len(a["Resource"]) == len(b["Resource"])
            and all(x is y or x == y for x, y in zip(a["Resource"], b["Resource"], strict=True)))


def _sid(text: str) -> str:
    cleaned = "".join(ch for ch in text.title() if ch.isalnum())
    return cleaned[:100] or "Grant"


def document(statements: list[dict[str, Any]]) -> pulumi.Output[str]:
    """A policy document (resource policies: bucket, queue, topic, key) from statements that may hold Outputs."""
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": statements})
