"""The one table of findings this design accepts, each with its reason. Every report lists them.

Prod-only controls (marked [P] in security-controls.md) simply do not apply to dev; they need no entry here. An entry
is for a finding the rules would raise on purpose-built resources (e.g. short-lived buckets without versioning).
Match on the rule ID, the stacks, and an fnmatch pattern over the logical resource name.
"""

from __future__ import annotations

from dataclasses import dataclass

from policy.engine import Violation, name_matches


@dataclass(frozen=True, kw_only=True)
class DesignException:
    rule_id: str
    resources: str
    """fnmatch pattern over logical names, e.g. ``*staging*``; ``*`` = every resource the rule reports."""
    stacks: tuple[str, ...]
    reason: str

    def matches(self, v: Violation) -> bool:
        return v.rule_id == self.rule_id and name_matches(self.resources, v.resource_name)


EXCEPTIONS: tuple[DesignException, ...] = (
    DesignException(
        rule_id="S3.14", resources="*staging*", stacks=("dev", "prod"),
        reason="bulk-upload staging holds short-lived zips (expired by lifecycle); versioning would only keep "
               "deleted zips (security-controls.md: S3.14 does not fit staging/DOCX buckets)"),
    DesignException(
        rule_id="S3.14", resources="*docx*", stacks=("dev", "prod"),
        reason="DOCX uploads expire after 1 day; versioning adds nothing (S3.14 does not fit staging/DOCX buckets)"),
    DesignException(
        rule_id="S3.14", resources="*attachment*", stacks=("dev", "prod"),
        reason="email attachments expire after 1 day by design; the expiry is the deletion mechanism"),
    DesignException(
        rule_id="S3.14", resources="*log*", stacks=("dev", "prod"),
        reason="the access-log bucket is append-only and expired by lifecycle; it is not replicated"),
)


def exceptions_for(stack: str) -> list[DesignException]:
    return [e for e in EXCEPTIONS if stack in e.stacks]
