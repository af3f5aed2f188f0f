"""An IAM role for one platform service with exactly one policy, ``{service}-access-policy-{stack}``, built from
grant helpers, and a trust policy naming one AWS service."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components._options import child
from infra import iam

Grant = Callable[[iam.Grants], None]


@dataclass(frozen=True, kw_only=True)
class ServiceRoleArgs:
    service: str
    """Service name, e.g. ``document-storage-service``."""
    stack: str
    access: Sequence[Grant]
    trusted_service: str = "ecs-tasks.amazonaws.com"


class ServiceRole(pulumi.ComponentResource):
    role: aws.iam.Role
    policy: aws.iam.RolePolicy

    def __init__(self, name: str, args: ServiceRoleArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("macro:iam:ServiceRole", name, None, opts)
        role_name = f"{args.service}-{args.stack}"
        if len(role_name) > 64:
            raise ValueError(f"role name {role_name!r} is longer than IAM's 64 characters")
        self.role = aws.iam.Role(f"{name}-role", name=role_name,
                                 assume_role_policy=iam.assume_role_policy(args.trusted_service), opts=child(self))
        grants = iam.Grants(args.service)
        for grant in args.access:
            grant(grants)
        self.policy = aws.iam.RolePolicy(f"{name}-access-policy", name=f"{args.service}-access-policy-{args.stack}",
                                         role=self.role.id, policy=grants.document(), opts=child(self))
        self.register_outputs({"role_arn": self.role.arn})
