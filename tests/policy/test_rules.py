"""Every rule fires on its minimal violating example and stays silent on its passing one; no rule is dead."""

from __future__ import annotations

import json

import pytest

from policy.engine import make_violation, run_rule
from policy.rules import RULES, evaluate
from tests.policy._examples import EXAMPLES, MORE_VIOLATIONS, build, res, stack


def test_every_rule_has_an_example_pair():
    assert set(EXAMPLES) == set(RULES), (
        f"rules without examples: {sorted(set(RULES) - set(EXAMPLES))}; "
        f"examples without rules: {sorted(set(EXAMPLES) - set(RULES))}")


@pytest.mark.parametrize("rule_id", sorted(EXAMPLES))
def test_rule_fires_on_violating_example(rule_id):
    bad, _ = build(rule_id)
    found = run_rule(RULES[rule_id], bad)
    assert found, f"{rule_id} did not fire on its violating example"
    assert all(v.rule_id == rule_id and v.fix in v.message for v in found)


@pytest.mark.parametrize("rule_id", sorted(EXAMPLES))
def test_rule_passes_on_passing_example(rule_id):
    _, good = build(rule_id)
    found = run_rule(RULES[rule_id], good)
    assert not found, [v.message for v in found]


@pytest.mark.parametrize(("rule_id", "index"), [(r, i) for r, cases in sorted(MORE_VIOLATIONS.items())
                                                 for i in range(len(cases))])
def test_rule_fires_on_further_violating_forms(rule_id, index):
    stack_name, specs = MORE_VIOLATIONS[rule_id][index]
    found = run_rule(RULES[rule_id], stack(*specs, name=stack_name))
    assert found and all(v.rule_id == rule_id for v in found), f"{rule_id} missed violating form {index}"


def test_prod_only_rules_do_not_apply_to_dev():
    prod_rules = [r for r in RULES.values() if r.stacks == "prod"]
    assert prod_rules
    for rule in prod_rules:
        bad, _ = build(rule.id)
        dev = stack(*EXAMPLES[rule.id][1], name="dev")
        assert bad.stack == "prod" and run_rule(rule, bad)
        assert run_rule(rule, dev) == []


def test_unknown_inputs_never_fire():
    """Values unknown at preview arrive as None; a rule must not decide on them."""
    unknown = stack(
        res("aws:sqs/queue:Queue", "q", sqsManagedSseEnabled=None, visibilityTimeoutSeconds=None, policy=None),
        res("aws:lambda/function:Function", "fn", timeout=None, memorySize=None, environment=None, vpcConfig=None,
            runtime=None, tracingConfig=None, kmsKeyArn=None, loggingConfig=None, name=None),
        res("aws:lambda/eventSourceMapping:EventSourceMapping", "m", eventSourceArn=None, functionName=None,
            batchSize=None, functionResponseTypes=None),
        res("aws:opensearch/domain:Domain", "os", clusterConfig=None, vpcOptions=None, encryptAtRest=None,
            nodeToNodeEncryption=None, advancedSecurityOptions=None, domainEndpointOptions=None,
            softwareUpdateOptions=None, logPublishingOptions=None, domainName=None),
        res("aws:iam/role:Role", "r", assumeRolePolicy=None, name=None),
        res("aws:rds/instance:Instance", "db", storageEncrypted=None, iamDatabaseAuthenticationEnabled=None,
            copyTagsToSnapshot=None, caCertIdentifier=None, manageMasterUserPassword=None, backupRetentionPeriod=None,
            enabledCloudwatchLogsExports=None, dbSubnetGroupName=None, parameterGroupName=None,
            skipFinalSnapshot=None, identifier=None),
        name="dev")
    report = evaluate(unknown)
    touched = {v.rule_id for v in report.violations + report.advisories
               if v.resource_name in {"q", "fn", "m", "os", "r", "db"}}
    assert touched == set(), touched


def test_report_lists_exceptions_and_waives_matching_findings():
    s = stack(res("aws:s3/bucket:Bucket", "staging-bucket", bucket="bulk-upload-staging-dev"), name="dev")
    report = evaluate(s)
    assert any(e.rule_id == "S3.14" for e in report.exceptions_declared)
    waived = [w for w in report.exceptions_applied if w.rule_id == "S3.14"]
    assert waived and waived[0].resource_name == "staging-bucket" and waived[0].reason
    assert "S3.14" not in {v.rule_id for v in report.violations}
    assert "Exceptions this design accepts" in report.render()


def test_message_names_resource_and_fix():
    bad, _ = build("SQS.1")
    v = run_rule(RULES["SQS.1"], bad)[0]
    assert "sqs.Queue 'r'" in v.message and "sqs_managed_sse_enabled" in v.message and "\n" not in v.message
    assert make_violation(RULES["SQS.1"], None, "x", "dev").resource_type == "pulumi:pulumi:Stack"


def test_every_rule_declares_metadata():
    for rule in RULES.values():
        assert rule.severity in ("mandatory", "advisory") and rule.stacks in ("both", "prod"), rule.id
        assert rule.title and rule.fix, rule.id
        assert (rule.resource_check is None) != (rule.stack_check is None), rule.id
        assert rule.id.startswith("DEPLOY-") == (rule.source == "deploy"), rule.id


def test_sns_key_must_admit_cloudwatch_only_on_alarm_topics():
    key = res("aws:kms/key:Key", "key", policy='{"Statement": []}', enableKeyRotation=True)
    topic = res("aws:sns/topic:Topic", "ses", kmsMasterKeyId="arn:aws:test:us-east-1:123456789012:key")
    alarm = res("aws:cloudwatch/metricAlarm:MetricAlarm", "a", alarmActions=["arn:aws:test:us-east-1:123456789012:ses"],
                period=60, evaluationPeriods=1)
    assert run_rule(RULES["SNS.1"], stack(key, topic)) == []
    assert len(run_rule(RULES["SNS.1"], stack(key, topic, alarm))) == 1
    assert len(run_rule(RULES["SNS.1"], stack(res("aws:sns/topic:Topic", "plain")))) == 1


def test_sse_kms_exempts_access_log_targets():
    """AWS cannot deliver server access logs to an SSE-KMS bucket, so the log bucket keeps SSE-S3."""
    specs = [res("aws:s3/bucket:Bucket", "logs", bucket="logs-prod"),
             res("aws:s3/bucket:Bucket", "docs", bucket="docs-prod"),
             res("aws:s3/bucketLogging:BucketLogging", "lg", bucket="docs", targetBucket="logs"),
             *(res("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", f"sse-{b}",
                   bucket=b, rules=[{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}])
               for b in ("logs", "docs"))]
    assert [v.resource_name for v in run_rule(RULES["S3.17"], stack(*specs, name="prod"))] == ["docs"]


def test_env_naming_secrets_by_arn_is_not_a_secret_value() -> None:
    """A rotation function's ``URL_SECRETS`` maps secret ARNs to hosts: it names secrets and holds none."""
    from policy.rules import evaluate
    from tests.policy._examples import FUNCTION, T, patch, res, stack

    arn_map = json.dumps({"arn:aws:secretsmanager:us-east-1:123456789012:secret:x": "db.example"})
    clean = stack(res(T.FUNCTION, "f", **patch(FUNCTION, "environment.variables.URL_SECRETS", arn_map)))
    leaky = stack(res(T.FUNCTION, "f", **patch(FUNCTION, "environment.variables.URL_SECRETS", "hunter22hunter")))
    assert not [v for v in evaluate(clean).violations if v.rule_id == "CKV_AWS_45"]
    assert [v for v in evaluate(leaky).violations if v.rule_id == "CKV_AWS_45"]


def test_queue_visibility_is_checked_when_the_queue_arn_is_unknown_at_preview() -> None:
    """A fresh deploy is exactly when AWS rejects a short visibility, and exactly when the ARN is not yet known."""
    from policy import types as T
    from policy.rules import evaluate
    from tests.policy._examples import FUNCTION, QUEUE, res, stack

    def records(visibility: int) -> object:
        return stack(res(T.QUEUE, "jobs", **{**QUEUE, "visibilityTimeoutSeconds": visibility}),
                     res(T.FUNCTION, "worker", **{**FUNCTION, "timeout": 60}),
                     res(T.ESM, "mapping", deps=("jobs", "worker"), eventSourceArn=None, functionName=None,
                         batchSize=1, functionResponseTypes=["ReportBatchItemFailures"]))

    def fired(visibility: int) -> bool:
        return any(v.rule_id == "DEPLOY-SQS-VISIBILITY" for v in evaluate(records(visibility)).violations)

    assert fired(30) and not fired(360)
