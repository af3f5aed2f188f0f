"""The CrossGuard pack's validations, called directly with CrossGuard argument objects (no CLI, no gRPC server)."""

from __future__ import annotations

import json

import pytest
from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UNKNOWN_BOOLEAN_VALUE, UNKNOWN_NUMBER_VALUE, unknown_checking_proxy

from policy.crossguard import EXCEPTIONS_POLICY, build_policies, plain, policy_name, stack_from_args
from policy.rules import RULES
from tests.policy._examples import QUEUE, build


def _opts() -> PolicyResourceOptions:
    return PolicyResourceOptions(protect=False, ignore_changes=[], delete_before_replace=None, aliases=[],
                                 custom_timeouts=None, additional_secret_outputs=[], parent=None)


@pytest.fixture(scope="module")
def policies():
    return {p.name: p for p in build_policies()}


def _resource_args(type_: str, name: str, props: dict, stack: str = "dev") -> ResourceValidationArgs:
    urn = f"urn:pulumi:{stack}::macro-infra::{type_}::{name}"
    return ResourceValidationArgs(type_, unknown_checking_proxy(props), urn, name, _opts(), None)


def _validate(policy, args) -> list[str]:
    found: list[str] = []
    policy.validate(args, lambda message, urn=None: found.append(message))
    return found


def test_one_policy_per_rule_with_enforcement(policies):
    assert len(policies) == len(RULES) + 1  # plus the advisory list of accepted exceptions
    for rule in RULES.values():
        p = policies[policy_name(rule.id)]
        assert isinstance(p, StackValidationPolicy if rule.is_stack_rule else ResourceValidationPolicy)
        expected = EnforcementLevel.MANDATORY if rule.severity == "mandatory" else EnforcementLevel.ADVISORY
        assert p.enforcement_level == expected, rule.id


def test_resource_policy_reports_violation_and_passes_good(policies):
    p = policies["sqs-1"]
    bad = _validate(p, _resource_args("aws:sqs/queue:Queue", "work", {**QUEUE, "sqsManagedSseEnabled": False}))
    assert len(bad) == 1 and "sqs.Queue 'work'" in bad[0] and "Fix:" in bad[0]
    assert _validate(p, _resource_args("aws:sqs/queue:Queue", "work", QUEUE)) == []


def test_unknown_values_at_preview_do_not_fire(policies):
    props = {**QUEUE, "sqsManagedSseEnabled": UNKNOWN_BOOLEAN_VALUE}
    assert _validate(policies["sqs-1"], _resource_args("aws:sqs/queue:Queue", "work", props)) == []
    fn = {"timeout": UNKNOWN_NUMBER_VALUE, "memorySize": 256, "runtime": "python3.13"}
    assert _validate(policies["deploy-lambda-limits"],
                     _resource_args("aws:lambda/function:Function", "fn", fn)) == []


def test_plain_turns_proxies_and_sentinels_into_data():
    proxied = unknown_checking_proxy({"a": {"b": [1, UNKNOWN_NUMBER_VALUE]}, "c": UNKNOWN_BOOLEAN_VALUE})
    assert plain(proxied) == {"a": {"b": [1, None]}, "c": None}


def test_prod_only_policy_skips_dev_resources(policies):
    table = {"billingMode": "PAY_PER_REQUEST", "pointInTimeRecovery": {"enabled": False}}
    p = policies["dynamodb-2"]
    assert _validate(p, _resource_args("aws:dynamodb/table:Table", "t", table, stack="dev")) == []
    assert len(_validate(p, _resource_args("aws:dynamodb/table:Table", "t", table, stack="prod"))) == 1


def _stack_args(stack_records) -> StackValidationArgs:
    by_urn: dict[str, PolicyResource] = {}
    for r in stack_records:
        by_urn[r.urn] = PolicyResource(r.type, unknown_checking_proxy(dict(r.outputs)), r.urn, r.name, _opts(), None,
                                       None, [by_urn[d] for d in r.dependencies if d in by_urn], {})
    return StackValidationArgs(list(by_urn.values()))


@pytest.mark.parametrize("rule_id", ["DEPLOY-SQS-VISIBILITY", "DEPLOY-S3-NOTIFICATION", "S3.8", "DEPLOY-LAMBDA-ENI"])
def test_stack_policy_matches_the_rule(policies, rule_id):
    bad, good = build(rule_id)
    p = policies[policy_name(rule_id)]
    assert _validate(p, _stack_args(bad)), f"{rule_id} did not fire through CrossGuard"
    assert _validate(p, _stack_args(good)) == []


def test_stack_outputs_come_from_the_stack_resource():
    stack_res = PolicyResource("pulumi:pulumi:Stack", {"dbPassword": "x"}, "urn:pulumi:prod::p::pulumi:pulumi:Stack::p",
                               "p", _opts(), None, None, [], {})
    records = stack_from_args(StackValidationArgs([stack_res]))
    assert records.stack == "prod" and records.outputs == {"dbPassword": "x"} and len(records) == 0


def test_exceptions_apply_inside_the_pack(policies):
    bucket = PolicyResource("aws:s3/bucket:Bucket", {"bucket": "bulk-upload-staging-dev"},
                            "urn:pulumi:dev::p::aws:s3/bucket:Bucket::staging-bucket", "staging-bucket", _opts(),
                            None, None, [], {})
    assert _validate(policies["s3-14"], StackValidationArgs([bucket])) == []
    other = PolicyResource("aws:s3/bucket:Bucket", {"bucket": "x"}, "urn:pulumi:dev::p::aws:s3/bucket:Bucket::docs",
                           "docs", _opts(), None, None, [], {})
    assert len(_validate(policies["s3-14"], StackValidationArgs([other]))) == 1


def test_the_pack_shows_accepted_exceptions_with_their_reason(policies):
    p = policies[EXCEPTIONS_POLICY]
    assert p.enforcement_level == EnforcementLevel.ADVISORY
    bucket = PolicyResource("aws:s3/bucket:Bucket", {"bucket": "bulk-upload-staging-dev"},
                            "urn:pulumi:dev::p::aws:s3/bucket:Bucket::staging-bucket", "staging-bucket", _opts(),
                            None, None, [], {})
    shown = _validate(p, StackValidationArgs([bucket]))
    assert any(m.startswith("accepted [S3.14]") and "staging-bucket" in m and "short-lived" in m for m in shown)


def test_pack_entry_point_is_not_imported_by_the_rules():
    from pathlib import Path

    import policy.crossguard as cg

    source = Path(cg.__file__).read_text()
    assert "PolicyPack(" not in source.replace("``PolicyPack``", "")
    assert json.dumps(sorted(RULES))  # registry importable without starting a server
