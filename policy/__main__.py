"""CrossGuard entry point: ``pulumi preview --policy-pack policy``. Constructing PolicyPack serves the rules over gRPC
and blocks, so it happens here and nowhere else."""

import sys
from pathlib import Path

# The pack runs with policy/ as its working directory; the rules import ``policy.*`` and ``infra.records``.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

from policy.crossguard import build_policies  # noqa: E402

PolicyPack(
    name="macro-guardrails",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=build_policies(),
    description="Security controls and AWS deploy-time rules for the macro-infra stacks",
)
