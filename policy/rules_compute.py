"""SQS, SNS, Lambda and EventBridge rules (security-controls.md; deploy-rules.md 1-10, 38)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from infra.records import ResourceRecord, StackRecords
from policy import types as T
from policy.engine import PROD, resource_rule, stack_rule
from policy.helpers import (
    MISSING,
    actions,
    allows,
    as_list,
    depends_on,
    get,
    has_condition_key,
    is_public_principal,
    is_true,
    known_str,
    num,
    parse_doc,
    resolve,
    statements,
)

Found = Iterator[tuple[ResourceRecord | None, str]]

SQS_DEFAULT_VISIBILITY = 30
SQS_DEFAULT_RETENTION = 345_600
LAMBDA_DEFAULT_TIMEOUT = 3


def _open_policy_findings(doc_value: object, service_action: str) -> Iterator[str]:
    for s in statements(parse_doc(doc_value)):
        if not allows(s):
            continue
        if is_public_principal(s) and not has_condition_key(s, "aws:SourceArn", "aws:SourceAccount",
                                                             "aws:PrincipalOrgID", "aws:PrincipalAccount"):
            yield f"statement {s.get('Sid', '?')} allows Principal '*' without aws:SourceArn/SourceAccount"
        for a in actions(s):
            if a in ("*", f"{service_action}:*"):
                yield f"statement {s.get('Sid', '?')} allows {a}"


# ---------------------------------------------------------------- SQS / SNS

@resource_rule("SQS.1", "Queues are encrypted at rest", types=[T.QUEUE],
               fix="set sqs_managed_sse_enabled=True (or kms_master_key_id)")
def sqs_encrypted(r: ResourceRecord, stack: str) -> Iterator[str]:
    sse, kms = r.inputs.get("sqsManagedSseEnabled", MISSING), r.inputs.get("kmsMasterKeyId", MISSING)
    if sse is None or kms is None:
        return
    if not is_true(sse) and not kms:
        yield "has neither sqs_managed_sse_enabled nor kms_master_key_id"


@resource_rule("SQS.3", "Queue policies are not public and grant no '*' actions", types=[T.QUEUE, T.QUEUE_POLICY],
               fix="grant named sqs: actions to a service principal with an aws:SourceArn condition")
def sqs_policy(r: ResourceRecord, stack: str) -> Iterator[str]:
    yield from _open_policy_findings(r.inputs.get("policy"), "sqs")


def alarm_targets(stack: StackRecords) -> set[str]:
    """URNs of topics some alarm notifies: only their keys must admit CloudWatch."""
    out = set()
    for alarm in stack.of_type(T.METRIC_ALARM):
        for key in ("alarmActions", "okActions", "insufficientDataActions"):
            for target in as_list(alarm.inputs.get(key)):
                topic = resolve(stack, target, [T.TOPIC])
                if topic is not None:
                    out.add(topic.urn)
    return out


@stack_rule("SNS.1", "Topics are encrypted with a CMK (alarm topics: one CloudWatch may use)", types=[T.TOPIC],
            fix="set kms_master_key_id=<CMK>; for alarm topics its policy lets cloudwatch.amazonaws.com "
                "kms:Decrypt/GenerateDataKey*")
def sns_encrypted(stack: StackRecords) -> Found:
    alarmed = alarm_targets(stack)
    for t in stack.of_type(T.TOPIC):
        key = t.inputs.get("kmsMasterKeyId", MISSING)
        if key is None:
            continue
        if not key:
            yield t, "has no kms_master_key_id"
        elif t.urn not in alarmed:
            continue
        elif key == "alias/aws/sns":
            yield t, "is an alarm target encrypted with alias/aws/sns, which CloudWatch cannot use"
        else:
            k = resolve(stack, key, [T.KMS_KEY])
            pol = known_str(k.inputs.get("policy")) if k is not None else None
            if pol is not None and "cloudwatch.amazonaws.com" not in pol:
                yield t, f"is an alarm target but key {k.name if k else key} does not admit cloudwatch.amazonaws.com"


@resource_rule("SNS.4", "Topic policies are not public", types=[T.TOPIC, T.TOPIC_POLICY],
               fix="grant sns:Publish to the CloudWatch/EventBridge service principal with aws:SourceAccount")
def sns_policy(r: ResourceRecord, stack: str) -> Iterator[str]:
    yield from _open_policy_findings(r.inputs.get("policy"), "sns")


def _redrive_target(q: ResourceRecord) -> tuple[str | None, float | None]:
    rp = q.inputs.get("redrivePolicy")
    if isinstance(rp, str):
        try:
            rp = json.loads(rp)
        except ValueError:
            return None, None
    if not isinstance(rp, dict):
        return None, None
    return known_str(rp.get("deadLetterTargetArn")), num(rp.get("maxReceiveCount"))


def _is_fifo(q: ResourceRecord) -> bool:
    name = known_str(q.inputs.get("name")) or ""
    return is_true(q.inputs.get("fifoQueue")) or name.endswith(".fifo")


@stack_rule("DEPLOY-SQS-DLQ", "A DLQ is the same queue type and keeps messages longer than its source",
            types=[T.QUEUE], source="deploy",
            fix="make the DLQ FIFO exactly when the source is, with message_retention_seconds above the source's")
def dlq_shape(stack: StackRecords) -> Found:
    for q in stack.of_type(T.QUEUE):
        arn, _ = _redrive_target(q)
        dlq = resolve(stack, arn, [T.QUEUE]) if arn else None
        if dlq is None:
            continue
        if _is_fifo(q) != _is_fifo(dlq):
            yield q, f"is {'FIFO' if _is_fifo(q) else 'standard'} but its DLQ {dlq.name} is not"
        src_ret = num(q.inputs.get("messageRetentionSeconds")) or SQS_DEFAULT_RETENTION
        dlq_ret = num(dlq.inputs.get("messageRetentionSeconds")) or SQS_DEFAULT_RETENTION
        if dlq_ret <= src_ret:
            yield q, f"DLQ {dlq.name} keeps messages {dlq_ret:g}s, not longer than the source's {src_ret:g}s"


@resource_rule("DEPLOY-SQS-NAME", "Queue names: <= 80 chars, '.fifo' exactly on FIFO queues", types=[T.QUEUE],
               source="deploy", fix="shorten the name; end it with .fifo only when fifo_queue=True")
def queue_name(r: ResourceRecord, stack: str) -> Iterator[str]:
    name = known_str(r.inputs.get("name"))
    fifo = is_true(r.inputs.get("fifoQueue"))
    if name is None:
        if len(r.name) + 8 + (5 if fifo else 0) > 80:
            yield f"autonamed from {r.name!r}, the name exceeds 80 characters"
        return
    if len(name) > 80 or not re.fullmatch(r"[A-Za-z0-9_-]+(\.fifo)?", name):
        yield f"name {name!r} is longer than 80 or has invalid characters"
    if name.endswith(".fifo") != fifo:
        yield f"name {name!r} and fifo_queue={fifo} disagree"


def _mapping_parts(stack: StackRecords, m: ResourceRecord) -> tuple[ResourceRecord | None, ResourceRecord | None]:
    # At a first preview the queue ARN is unknown; the mapping's dependency on the queue still names it.
    q = resolve(stack, m.inputs.get("eventSourceArn"), [T.QUEUE], via=m)
    fn = resolve(stack, m.inputs.get("functionName"), [T.FUNCTION], via=m)
    return q, fn


def _sqs_mappings(stack: StackRecords) -> Iterator[tuple[ResourceRecord, ResourceRecord | None, ResourceRecord | None]]:
    for m in stack.of_type(T.ESM):
        arn = known_str(m.inputs.get("eventSourceArn")) or ""
        q, fn = _mapping_parts(stack, m)
        if q is not None or ":sqs:" in arn:
            yield m, q, fn


@stack_rule("DEPLOY-SQS-VISIBILITY", "Queue visibility timeout >= the consuming function's timeout", types=[T.ESM],
            source="deploy", fix="raise the queue's visibility_timeout_seconds to >= 6x the function timeout")
def visibility_vs_timeout(stack: StackRecords) -> Found:
    for m, q, fn in _sqs_mappings(stack):
        if q is None or fn is None:
            continue
        vis_raw, to_raw = q.inputs.get("visibilityTimeoutSeconds", MISSING), fn.inputs.get("timeout", MISSING)
        if vis_raw is None or to_raw is None:
            continue
        vis = num(vis_raw) if vis_raw is not MISSING else SQS_DEFAULT_VISIBILITY
        timeout = num(to_raw) if to_raw is not MISSING else LAMBDA_DEFAULT_TIMEOUT
        if vis is not None and timeout is not None and vis < timeout:
            yield m, f"queue {q.name} visibility {vis:g}s < function {fn.name} timeout {timeout:g}s"


@stack_rule("DEPLOY-ESM-BATCH", "SQS batch size: <= 10 on FIFO; > 10 needs a batching window", types=[T.ESM],
            source="deploy", fix="set maximum_batching_window_in_seconds >= 1 for batch_size > 10 (FIFO: batch <= 10)")
def batch_window(stack: StackRecords) -> Found:
    for m, q, _fn in _sqs_mappings(stack):
        size = num(m.inputs.get("batchSize"))
        window = num(m.inputs.get("maximumBatchingWindowInSeconds")) or 0
        if size is None:
            continue
        fifo = q is not None and _is_fifo(q) or (known_str(m.inputs.get("eventSourceArn")) or "").endswith(".fifo")
        if fifo and size > 10:
            yield m, f"batch_size {size:g} > 10 on a FIFO queue"
        elif size > 10 and window < 1 and m.inputs.get("maximumBatchingWindowInSeconds", MISSING) is not None:
            yield m, f"batch_size {size:g} > 10 without a batching window"
        if size < 1 or size > 10_000:
            yield m, f"batch_size {size:g} outside 1-10000"


@stack_rule("DEPLOY-ESM-PARTIAL-BATCH", "SQS mappings honour the handlers' batch item failures", types=[T.ESM],
            source="deploy", fix="set function_response_types=['ReportBatchItemFailures'] on the mapping")
def partial_batch(stack: StackRecords) -> Found:
    for m, _q, _fn in _sqs_mappings(stack):
        types = m.inputs.get("functionResponseTypes", MISSING)
        if types is not None and "ReportBatchItemFailures" not in as_list(types):
            yield m, "ignores batchItemFailures, so a failed message is deleted with its batch"


def _role_grants(stack: StackRecords, rec: ResourceRecord) -> set[str]:
    """Actions granted by the IAM policy resources ``rec`` depends on (directly, or through an attachment)."""
    granted: set[str] = set()
    for p in depends_on(stack, rec, [T.ROLE_POLICY, T.IAM_POLICY, T.ROLE_POLICY_ATTACHMENT, T.POLICY_ATTACHMENT]):
        docs = [p.inputs.get("policy")]
        if p.type in (T.ROLE_POLICY_ATTACHMENT, T.POLICY_ATTACHMENT):
            pol = resolve(stack, p.inputs.get("policyArn"), [T.IAM_POLICY], via=p)
            docs = [pol.inputs.get("policy")] if pol is not None else []
            arn = known_str(p.inputs.get("policyArn")) or ""
            if arn.endswith("AWSLambdaSQSQueueExecutionRole"):
                granted |= {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}
            if arn.endswith("AWSLambdaVPCAccessExecutionRole"):
                granted |= {"ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces",
                            "ec2:DeleteNetworkInterface"}
        for d in docs:
            for s in statements(parse_doc(d)):
                if allows(s):
                    granted |= set(actions(s))
    return granted


def _grants(granted: set[str], action: str) -> bool:
    service = action.split(":")[0]
    return action in granted or f"{service}:*" in granted or "*" in granted


@stack_rule("DEPLOY-ESM-PERMISSIONS", "SQS mappings are created after the role may receive from the queue",
            types=[T.ESM], source="deploy",
            fix="depends_on the RolePolicy granting sqs:ReceiveMessage, DeleteMessage and GetQueueAttributes")
def mapping_permissions(stack: StackRecords) -> Found:
    for m, _q, _fn in _sqs_mappings(stack):
        granted = _role_grants(stack, m)
        missing = [a for a in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")
                   if not _grants(granted, a)]
        if missing:
            yield m, f"does not depend on a policy granting {', '.join(missing)}"


# ---------------------------------------------------------------- Lambda

@resource_rule("Lambda.1", "Lambda permissions name a service principal and the source", types=[T.PERMISSION],
               fix="use principal '<service>.amazonaws.com' with source_arn (and source_account for S3)")
def lambda_permission(r: ResourceRecord, stack: str) -> Iterator[str]:
    principal = r.inputs.get("principal")
    if principal is None:
        return
    if not isinstance(principal, str) or not principal.endswith(".amazonaws.com"):
        yield f"principal {principal!r} is not a service principal"
        return
    if r.inputs.get("sourceArn", MISSING) is MISSING:
        yield "has no source_arn"
    if principal == "s3.amazonaws.com" and r.inputs.get("sourceAccount", MISSING) is MISSING:
        yield "S3 permission has no source_account"


SUPPORTED_RUNTIMES = {"python3.12", "python3.13"}


@resource_rule("Lambda.2", "Functions use a supported runtime", types=[T.FUNCTION],
               fix="set runtime='python3.13'")
def lambda_runtime(r: ResourceRecord, stack: str) -> Iterator[str]:
    if r.inputs.get("packageType") == "Image":
        return
    rt = r.inputs.get("runtime", MISSING)
    if rt is not None and rt not in SUPPORTED_RUNTIMES:
        yield f"runtime {rt!r} is not one of {sorted(SUPPORTED_RUNTIMES)}"


DATA_STORE_ENV = re.compile(r"^(DATABASE_|REDIS_|CACHE_|OPENSEARCH_|SEARCH_ENDPOINT)")


def _subnets(fn: ResourceRecord) -> list | None:
    subnets = get(fn.inputs, "vpcConfig.subnetIds")
    return None if subnets is None else as_list(subnets)


@resource_rule("Lambda.3", "Functions that reach RDS, Redis or OpenSearch run in the VPC", types=[T.FUNCTION],
               fix="give the function vpc_config(subnet_ids=<private subnets>, security_group_ids=[...])")
def lambda_in_vpc(r: ResourceRecord, stack: str) -> Iterator[str]:
    env = get(r.inputs, "environment.variables")
    if not isinstance(env, dict):
        return
    needs = sorted(k for k in env if DATA_STORE_ENV.match(k))
    subnets = _subnets(r)
    if needs and subnets is not None and not subnets:
        yield f"reaches a data store ({', '.join(needs)}) but has no vpc_config"


def _zones(stack: StackRecords, subnet_ids: list) -> set[str] | None:
    zones: set[str] = set()
    for sid in subnet_ids:
        sub = resolve(stack, sid, [T.SUBNET])
        z = (sub.inputs.get("availabilityZone") or sub.inputs.get("availabilityZoneId")) if sub else None
        if not isinstance(z, str):
            return None
        zones.add(z)
    return zones


@stack_rule("Lambda.5", "VPC functions span at least two availability zones", types=[T.FUNCTION],
            fix="list private subnets of two or more AZs in vpc_config.subnet_ids")
def lambda_multi_az(stack: StackRecords) -> Found:
    for fn in stack.of_type(T.FUNCTION):
        subnets = _subnets(fn)
        if not subnets or any(s is None for s in subnets):
            continue
        zones = _zones(stack, subnets)
        if len(set(subnets)) < 2 or (zones is not None and len(zones) < 2):
            yield fn, f"runs in {len(zones) if zones is not None else len(set(subnets))} AZ"


@resource_rule("CKV_AWS_50", "Functions trace with X-Ray", types=[T.FUNCTION], stacks=PROD,
               fix="set tracing_config={'mode': 'Active'}")
def lambda_tracing(r: ResourceRecord, stack: str) -> Iterator[str]:
    mode = get(r.inputs, "tracingConfig.mode")
    if mode is not None and mode != "Active":
        yield f"tracing mode is {mode if mode is not MISSING else 'unset'}"


ASYNC_PRINCIPALS = {"s3.amazonaws.com", "events.amazonaws.com", "sns.amazonaws.com", "scheduler.amazonaws.com"}


@stack_rule("CKV_AWS_116", "Asynchronously invoked functions keep failed events", types=[T.FUNCTION],
            fix="set dead_letter_config.target_arn or a FunctionEventInvokeConfig on_failure destination")
def async_dlq(stack: StackRecords) -> Found:
    invoked: dict[str, ResourceRecord] = {}
    for p in stack.of_type(T.PERMISSION):
        if p.inputs.get("principal") in ASYNC_PRINCIPALS:
            fn = resolve(stack, p.inputs.get("function"), [T.FUNCTION], via=p)
            if fn is not None:
                invoked[fn.urn] = fn
    for cfg in stack.of_type(T.EVENT_INVOKE_CONFIG):
        if get(cfg.inputs, "destinationConfig.onFailure.destination"):
            fn = resolve(stack, cfg.inputs.get("functionName"), [T.FUNCTION], via=cfg)
            if fn is not None:
                invoked.pop(fn.urn, None)
    for fn in invoked.values():
        if get(fn.inputs, "deadLetterConfig.targetArn") is MISSING:
            yield fn, "is invoked asynchronously but has no DLQ or on-failure destination"


@resource_rule("CKV_AWS_173", "Function environments are encrypted with a CMK", types=[T.FUNCTION],
               fix="set kms_key_arn=<CMK ARN> on functions with environment variables")
def lambda_env_kms(r: ResourceRecord, stack: str) -> Iterator[str]:
    env = get(r.inputs, "environment.variables")
    if isinstance(env, dict) and env and r.inputs.get("kmsKeyArn", MISSING) is MISSING:
        yield "has environment variables but no kms_key_arn"


RESERVED_ENV = {
    "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV", "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
}
ALLOWED_AWS_LAMBDA_ENV = {"AWS_LAMBDA_EXEC_WRAPPER"}


@resource_rule("DEPLOY-LAMBDA-RESERVED-ENV", "No reserved Lambda environment keys", types=[T.FUNCTION],
               source="deploy", fix="rename the variable; read the region etc. from the runtime's own variables")
def reserved_env(r: ResourceRecord, stack: str) -> Iterator[str]:
    env = get(r.inputs, "environment.variables")
    if isinstance(env, dict):
        bad = sorted(k for k in env if k in RESERVED_ENV
                     or (k.startswith("AWS_LAMBDA_") and k not in ALLOWED_AWS_LAMBDA_ENV))
        if bad:
            yield f"sets reserved keys {', '.join(bad)}"


@resource_rule("DEPLOY-LAMBDA-CONCURRENCY", "No reserved concurrency (new accounts have a quota of 10)",
               types=[T.FUNCTION], source="deploy",
               fix="drop reserved_concurrent_executions; cap consumers with the mapping's scaling_config instead")
def reserved_concurrency(r: ResourceRecord, stack: str) -> Iterator[str]:
    n = num(r.inputs.get("reservedConcurrentExecutions"))
    if n is not None and n > 0:
        yield f"reserves {n:g} concurrent executions"


@resource_rule("DEPLOY-LAMBDA-LIMITS", "Memory 128-10240 MB, timeout 1-900 s, name <= 64", types=[T.FUNCTION],
               source="deploy", fix="keep memory_size in 128-10240, timeout in 1-900 and the name <= 64 chars")
def lambda_limits(r: ResourceRecord, stack: str) -> Iterator[str]:
    mem, timeout = num(r.inputs.get("memorySize")), num(r.inputs.get("timeout"))
    if mem is not None and not 128 <= mem <= 10240:
        yield f"memory_size {mem:g} outside 128-10240"
    if timeout is not None and not 1 <= timeout <= 900:
        yield f"timeout {timeout:g} outside 1-900"
    name = known_str(r.inputs.get("name"))
    if name is not None and (len(name) > 64 or not re.fullmatch(r"[A-Za-z0-9_-]+", name)):
        yield f"name {name!r} longer than 64 or with invalid characters"


def _has_vpc(fn: ResourceRecord) -> bool:
    subnets = _subnets(fn)
    return bool(subnets)


@stack_rule("DEPLOY-LAMBDA-ENI", "VPC functions are created after their role may create network interfaces",
            types=[T.FUNCTION], source="deploy",
            fix="depends_on the AWSLambdaVPCAccessExecutionRole attachment (or the RolePolicy granting ENI rights)")
def eni_ordering(stack: StackRecords) -> Found:
    for fn in stack.of_type(T.FUNCTION):
        if _has_vpc(fn) and not _grants(_role_grants(stack, fn), "ec2:CreateNetworkInterface"):
            yield fn, "is in a VPC but does not depend on a grant of ec2:CreateNetworkInterface"


@stack_rule("DEPLOY-LAMBDA-LOGGROUP", "Each function's log group exists before the function", types=[T.FUNCTION],
            source="deploy", fix="create the LogGroup first (depends_on it) or set logging_config.log_group to it")
def log_group_first(stack: StackRecords) -> Found:
    groups = {known_str(g.inputs.get("name")): g for g in stack.of_type(T.LOG_GROUP)}
    for fn in stack.of_type(T.FUNCTION):
        configured = get(fn.inputs, "loggingConfig.logGroup")
        if configured is None or configured:
            continue  # unknown, or an explicit group the function references (so it is created first)
        name = fn.inputs.get("name")
        if name is None and "name" in fn.inputs:
            continue
        g = groups.get(f"/aws/lambda/{name}") if isinstance(name, str) else None
        if g is None:
            yield fn, "has no log group created for it (Lambda would create one without retention)"
        elif g.urn not in fn.dependencies:
            yield fn, f"is not created after its log group {g.name}"


# ---------------------------------------------------------------- EventBridge

RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")


def schedule_problem(expr: str, allow_at: bool = False) -> str | None:
    if allow_at and re.fullmatch(r"at\(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\)", expr):
        return None
    m = RATE.match(expr)
    if m:
        n, unit = int(m.group(1)), m.group(2)
        if n < 1:
            return "a rate must be at least 1"
        if (n == 1) != (not unit.endswith("s")):
            return f"rate({n} {unit}): use the singular unit for 1 and the plural otherwise"
        return None
    m = re.fullmatch(r"cron\((.*)\)", expr)
    if not m:
        return "neither rate(...) nor cron(...)"
    fields = m.group(1).split()
    if len(fields) != 6:
        return f"cron has {len(fields)} fields, needs 6 (min hour day-of-month month day-of-week year)"
    dom, dow = fields[2], fields[4]
    if (dom == "?") == (dow == "?"):
        return "cron needs '?' in exactly one of day-of-month and day-of-week"
    return None


@resource_rule("DEPLOY-SCHEDULE-EXPRESSION", "Schedule expressions are valid and use the default bus",
               types=[T.EVENT_RULE, T.SCHEDULE], source="deploy",
               fix="write rate(1 minute)/rate(5 minutes) or a 6-field cron with one '?'; schedules on the default bus")
def schedule_expression(r: ResourceRecord, stack: str) -> Iterator[str]:
    expr = known_str(r.inputs.get("scheduleExpression"))
    if expr is None:
        return
    problem = schedule_problem(expr, allow_at=r.type == T.SCHEDULE)
    if problem:
        yield f"{expr!r}: {problem}"
    bus = r.inputs.get("eventBusName", MISSING)
    if r.type == T.EVENT_RULE and isinstance(bus, str) and bus != "default":
        yield f"schedule on bus {bus!r}; schedules only run on the default bus"


@stack_rule("DEPLOY-EVENTS-PERMISSION", "Lambda targets of EventBridge rules allow events.amazonaws.com from "
            "that rule", types=[T.EVENT_TARGET], source="deploy",
            fix="add lambda Permission(principal='events.amazonaws.com', source_arn=rule.arn)")
def events_permission(stack: StackRecords) -> Found:
    for t in stack.of_type(T.EVENT_TARGET):
        fn = resolve(stack, t.inputs.get("arn"), [T.FUNCTION])
        if fn is None:
            continue
        rule = resolve(stack, t.inputs.get("rule"), [T.EVENT_RULE], via=t)
        ok = False
        for p in stack.of_type(T.PERMISSION):
            if p.inputs.get("principal") != "events.amazonaws.com":
                continue
            if resolve(stack, p.inputs.get("function"), [T.FUNCTION], via=p) is not fn:
                continue
            src = p.inputs.get("sourceArn")
            if rule is None or src is None or resolve(stack, src, [T.EVENT_RULE], via=p) is rule:
                ok = True
        if not ok:
            yield t, f"targets {fn.name} without an events.amazonaws.com Permission for its rule"
