"""IAM, KMS and Secrets Manager rules, and secret hygiene across the whole stack."""

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
    doc_size,
    get,
    has_condition_key,
    is_false,
    is_public_principal,
    is_true,
    known_str,
    num,
    parse_doc,
    principals,
    resolve,
    statements,
    strings_in,
)
from policy.rules_data import url_password

Found = Iterator[tuple[ResourceRecord | None, str]]

POLICY_DOC_TYPES = [T.IAM_POLICY, T.ROLE_POLICY]

# Actions AWS only authorises on Resource "*" (no resource-level permissions). Each entry is a case this design
# needs; add one only with the reason next to it.
STAR_RESOURCE_ALLOWLIST = {
    # Lambda in a VPC: ENI management has no resource-level permissions (AWSLambdaVPCAccessExecutionRole uses "*").
    "ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses", "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups", "ec2:DescribeVpcs",
    # X-Ray tracing: trace and sampling APIs take no resource ARN.
    "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets",
    "xray:GetSamplingStatisticSummaries",
    # Custom CloudWatch metrics (Powertools metrics): PutMetricData has no resource type; scope with a namespace
    # condition where it matters.
    "cloudwatch:PutMetricData",
    # Secrets Manager rotation functions generate passwords with GetRandomPassword, which has no resource type.
    "secretsmanager:GetRandomPassword",
    # The CI preview role answers the program's lookups: aws.get_availability_zones() and aws.iam.get_roles();
    # neither action has a resource type.
    "ec2:DescribeAvailabilityZones", "iam:ListRoles",
}

# Managed policies that grant far more than a function needs. AWSLambdaRole = lambda:InvokeFunction on "*".
FORBIDDEN_MANAGED = re.compile(r"(FullAccess|AdministratorAccess|PowerUserAccess|/AWSLambdaRole)$")

ESCALATION_ACTIONS = {
    "iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion", "iam:AttachRolePolicy", "iam:PutRolePolicy",
    "iam:AttachUserPolicy", "iam:PutUserPolicy", "iam:CreateAccessKey", "iam:UpdateAssumeRolePolicy",
    "iam:CreateLoginProfile", "iam:UpdateLoginProfile", "iam:AddUserToGroup", "iam:PutGroupPolicy",
    "iam:AttachGroupPolicy",
}


def policy_documents(r: ResourceRecord) -> list[object]:
    """Every permission document on a record (standalone policy, inline role policy, Role.inline_policies)."""
    if r.type in POLICY_DOC_TYPES:
        return [r.inputs.get("policy")]
    if r.type == T.ROLE:
        return [p.get("policy") for p in as_list(r.inputs.get("inlinePolicies")) if isinstance(p, dict)]
    return []


def managed_arns(r: ResourceRecord) -> list[str]:
    if r.type == T.ROLE:
        return [a for a in as_list(r.inputs.get("managedPolicyArns")) if isinstance(a, str)]
    if r.type in (T.ROLE_POLICY_ATTACHMENT, T.POLICY_ATTACHMENT):
        arn = known_str(r.inputs.get("policyArn"))
        return [arn] if arn else []
    return []


@resource_rule("IAM.1", "No administrator, *FullAccess or AWSLambdaRole managed policies, no '*:*' statements",
               types=[T.ROLE, T.ROLE_POLICY_ATTACHMENT, T.POLICY_ATTACHMENT, T.IAM_POLICY, T.ROLE_POLICY],
               fix="replace the managed policy with a least-privilege RolePolicy naming actions and resources")
def no_admin(r: ResourceRecord, stack: str) -> Iterator[str]:
    for arn in managed_arns(r):
        if FORBIDDEN_MANAGED.search(arn):
            yield f"attaches {arn.rsplit('/', 1)[-1]}"
    for doc in policy_documents(r):
        for s in statements(parse_doc(doc)):
            if allows(s) and "*" in actions(s) and "*" in as_list(s.get("Resource")):
                yield "allows '*' on '*'"


@resource_rule("IAM.21", "No wildcard actions, '*' resources only where AWS requires them, no escalation",
               types=[T.ROLE, T.IAM_POLICY, T.ROLE_POLICY],
               fix="name each action and scope Resource to ARNs; '*' only for the allowlisted ENI/X-Ray/metrics "
                   "actions")
def least_privilege(r: ResourceRecord, stack: str) -> Iterator[str]:
    for doc in policy_documents(r):
        for s in statements(parse_doc(doc)):
            if not allows(s):
                continue
            sid = s.get("Sid", "?")
            if "NotAction" in s or "NotResource" in s:
                yield f"statement {sid} allows with NotAction/NotResource"
            acts = actions(s)
            wild = [a for a in acts if "*" in a]
            if wild:
                yield f"statement {sid} allows wildcard actions {wild}"
            if "*" in as_list(s.get("Resource")):
                broad = sorted(a for a in acts if a not in STAR_RESOURCE_ALLOWLIST)
                if broad:
                    yield f"statement {sid} allows {broad} on Resource '*'"
            esc = sorted(set(acts) & ESCALATION_ACTIONS)
            if esc:
                yield f"statement {sid} allows privilege escalation ({esc})"
            if "iam:PassRole" in acts and not has_condition_key(s, "iam:PassedToService") \
                    and "*" in as_list(s.get("Resource")):
                yield f"statement {sid} allows iam:PassRole on '*'"


@resource_rule("KMS.2", "No kms:Decrypt or ReEncrypt on all keys", types=[T.ROLE, T.IAM_POLICY, T.ROLE_POLICY],
               fix="scope kms:Decrypt/ReEncrypt* to the key ARNs")
def kms_scope(r: ResourceRecord, stack: str) -> Iterator[str]:
    for doc in policy_documents(r):
        for s in statements(parse_doc(doc)):
            kms = [a for a in actions(s) if a.lower().startswith(("kms:decrypt", "kms:reencrypt", "kms:*")) or a == "*"]
            if allows(s) and kms and "*" in as_list(s.get("Resource")):
                yield f"statement {s.get('Sid', '?')} allows {kms} on every key"


@resource_rule("CKV_AWS_60", "Trust policies name exactly one AWS service principal", types=[T.ROLE],
               fix="assume_role_policy with one statement: Allow sts:AssumeRole to Principal {'Service': "
                   "'<service>.amazonaws.com'}")
def trust_policy(r: ResourceRecord, stack: str) -> Iterator[str]:
    raw = r.inputs.get("assumeRolePolicy")
    doc = parse_doc(raw)
    if doc is None:
        return
    services: set[str] = set()
    allowed = [s for s in statements(doc) if allows(s)]
    if allowed and all(github_oidc_statement(s) for s in allowed):
        return  # a CI role trusted by GitHub's OIDC issuer: judged by CKV_AWS_358
    for s in allowed:
        p = principals(s)
        others = sorted(k for k in p if k != "Service")
        if others:
            yield f"trusts non-service principals ({others})"
        services |= set(p.get("Service", []))
    bad = sorted(x for x in services if not x.endswith(".amazonaws.com"))
    if bad:
        yield f"trusts {bad}"
    if len(services) != 1:
        yield f"trusts {len(services)} services {sorted(services)} (needs exactly one)"


GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
# A subject naming one repository and one trigger: pull_request, ref:refs/..., environment:NAME (no wildcards).
GITHUB_SUBJECT = re.compile(r"repo:[A-Za-z0-9-]+/[A-Za-z0-9._-]+:(pull_request|ref:refs/[^*?]+|environment:[^*?]+)")


def github_oidc_statement(s: dict) -> bool:
    """A statement trusting GitHub Actions' OIDC issuer (and nothing else)."""
    p = principals(s)
    return set(p) == {"Federated"} and all(GITHUB_OIDC_HOST in arn for arn in p["Federated"])


@resource_rule("CKV_AWS_358", "GitHub OIDC trust names the audience and exact repository subjects",
               types=[T.ROLE],
               fix="Condition StringEquals token.actions.githubusercontent.com:aud = sts.amazonaws.com and :sub = "
                   "['repo:<owner>/<name>:pull_request' | ':ref:refs/heads/<branch>' | ':environment:<name>']")
def github_oidc_trust(r: ResourceRecord, stack: str) -> Iterator[str]:
    for s in statements(parse_doc(r.inputs.get("assumeRolePolicy"))):
        if not (allows(s) and github_oidc_statement(s)):
            continue
        if actions(s) != ["sts:AssumeRoleWithWebIdentity"]:
            yield f"statement {s.get('Sid', '?')} allows {actions(s)} (only sts:AssumeRoleWithWebIdentity)"
        raw = s.get("Condition")
        cond: dict = raw if isinstance(raw, dict) else {}
        exact = cond.get("StringEquals") or {}
        if as_list(exact.get(f"{GITHUB_OIDC_HOST}:aud")) != ["sts.amazonaws.com"]:
            yield "does not require the audience sts.amazonaws.com"
        subjects = as_list(exact.get(f"{GITHUB_OIDC_HOST}:sub"))
        loose = [k for op, body in cond.items() if op != "StringEquals" and isinstance(body, dict)
                 for k in body if k.startswith(f"{GITHUB_OIDC_HOST}:")]
        if loose:
            yield f"matches GitHub claims with other operators than StringEquals ({sorted(loose)})"
        if not subjects:
            yield "does not limit the subject: any repository on GitHub could assume it"
        bad = [x for x in subjects if not (isinstance(x, str) and GITHUB_SUBJECT.fullmatch(x))]
        if bad:
            yield f"trusts subjects that are not one repository's exact trigger: {bad}"


@stack_rule("IAM.POLICY-STYLE", "One policy style per role (AWSGuard iam-role-no-policy-management-conflicts)",
            types=[T.ROLE], fix="use either Role.inline_policies/managed_policy_arns or separate RolePolicy/"
                                "RolePolicyAttachment resources, not both")
def policy_style(stack: StackRecords) -> Found:
    for role in stack.of_type(T.ROLE):
        inline = bool(as_list(role.inputs.get("inlinePolicies"))) or bool(as_list(role.inputs.get("managedPolicyArns")))
        if not inline:
            continue
        separate = [p for p in stack.matching([T.ROLE_POLICY, T.ROLE_POLICY_ATTACHMENT])
                    if resolve(stack, p.inputs.get("role"), [T.ROLE], via=p) is role]
        if separate:
            yield role, f"mixes inline policies with {[p.name for p in separate]}"


def _name_len_problem(r: ResourceRecord, key: str, limit: int) -> str | None:
    name = r.inputs.get(key, MISSING)
    if name is None:
        return None
    if name is MISSING:
        prefix = known_str(r.inputs.get("namePrefix"))
        length = len(prefix) + 26 if prefix else len(r.name) + 8
        return f"autonamed name is {length} characters (limit {limit})" if length > limit else None
    return f"name {name!r} is {len(name)} characters (limit {limit})" if len(name) > limit else None


@stack_rule("DEPLOY-IAM-LIMITS", "IAM names and policy sizes stay within quotas", types=[T.ROLE, T.IAM_POLICY],
            source="deploy", fix="shorten names (role 64, policy 128); split documents (managed 6144, inline per "
                                 "role 10240, trust 2048 chars); attach at most 10 managed policies per role")
def iam_limits(stack: StackRecords) -> Found:
    for role in stack.of_type(T.ROLE):
        problem = _name_len_problem(role, "name", 64)
        if problem:
            yield role, problem
        trust = doc_size(role.inputs.get("assumeRolePolicy"))
        if trust is not None and trust > 2048:
            yield role, f"trust policy is {trust} characters (limit 2048)"
        inline = [p for p in stack.of_type(T.ROLE_POLICY)
                  if resolve(stack, p.inputs.get("role"), [T.ROLE], via=p) is role]
        sizes = [doc_size(p.inputs.get("policy")) for p in inline]
        sizes += [doc_size(d) for d in policy_documents(role)]
        if None not in sizes and sum(s or 0 for s in sizes) > 10240:
            yield role, f"inline policies total {sum(s or 0 for s in sizes)} characters (limit 10240)"
        attached = [a for a in stack.of_type(T.ROLE_POLICY_ATTACHMENT)
                    if resolve(stack, a.inputs.get("role"), [T.ROLE], via=a) is role]
        n = len(attached) + len(as_list(role.inputs.get("managedPolicyArns")))
        if n > 10:
            yield role, f"has {n} managed policies (limit 10)"
    for pol in stack.of_type(T.IAM_POLICY):
        problem = _name_len_problem(pol, "name", 128)
        if problem:
            yield pol, problem
        size = doc_size(pol.inputs.get("policy"))
        if size is not None and size > 6144:
            yield pol, f"document is {size} characters (limit 6144)"


# ---------------------------------------------------------------- KMS

@resource_rule("KMS.4", "Key rotation is on", types=[T.KMS_KEY], fix="set enable_key_rotation=True")
def kms_rotation(r: ResourceRecord, stack: str) -> Iterator[str]:
    v = r.inputs.get("enableKeyRotation", MISSING)
    if v is not None and not is_true(v):
        yield "does not rotate"


@resource_rule("KMS.3", "Deletion window of 30 days", types=[T.KMS_KEY], stacks=PROD,
               fix="set deletion_window_in_days=30")
def kms_deletion_window(r: ResourceRecord, stack: str) -> Iterator[str]:
    raw = r.inputs.get("deletionWindowInDays", MISSING)
    if raw is not None and (num(raw) if raw is not MISSING else 30) != 30:
        yield f"deletion window is {num(raw):g} days"


@resource_rule("KMS.5", "Explicit key policy without '*' principals; key enabled", types=[T.KMS_KEY],
               fix="set policy=... naming the account root and service principals with conditions; is_enabled=True")
def kms_policy(r: ResourceRecord, stack: str) -> Iterator[str]:
    raw = r.inputs.get("policy", MISSING)
    if raw is MISSING:
        yield "has no explicit key policy"
    for s in statements(parse_doc(raw)):
        if allows(s) and is_public_principal(s) and not has_condition_key(
                s, "kms:CallerAccount", "aws:SourceAccount", "aws:PrincipalAccount", "kms:ViaService"):
            yield f"statement {s.get('Sid', '?')} allows Principal '*'"
    if is_false(r.inputs.get("isEnabled")):
        yield "is disabled"


@stack_rule("DEPLOY-KMS-LOGS", "Log group keys admit the CloudWatch Logs service", types=[T.LOG_GROUP],
            source="deploy", fix="add a key policy statement for logs.<region>.amazonaws.com with an "
                                 "kms:EncryptionContext:aws:logs:arn condition")
def kms_logs(stack: StackRecords) -> Found:
    for g in stack.of_type(T.LOG_GROUP):
        key = resolve(stack, g.inputs.get("kmsKeyId"), [T.KMS_KEY])
        pol = known_str(key.inputs.get("policy")) if key is not None else None
        if pol is not None and not re.search(r"logs\.[a-z0-9-]*\.?amazonaws\.com", pol):
            yield g, f"key {key.name if key else '?'} does not admit the logs service principal"


# ---------------------------------------------------------------- Secrets Manager

@stack_rule("SecretsManager.1", "Secrets rotate at least every 90 days", types=[T.SECRET], stacks=PROD,
            fix="add secretsmanager.SecretRotation(rotation_rules={'automatically_after_days': <= 90})")
def secret_rotation(stack: StackRecords) -> Found:
    for sec in stack.of_type(T.SECRET):
        rots = [r for r in stack.of_type(T.SECRET_ROTATION)
                if resolve(stack, r.inputs.get("secretId"), [T.SECRET], via=r) is sec]
        if not rots:
            yield sec, "is never rotated"
        for r in rots:
            days = num(get(r.inputs, "rotationRules.automaticallyAfterDays"))
            if days is not None and days > 90:
                yield sec, f"rotates every {days:g} days"


@resource_rule("CKV_AWS_149", "Secrets encrypt with a customer-managed key", types=[T.SECRET], stacks=PROD,
               fix="set kms_key_id=<CMK> (not aws/secretsmanager)")
def secret_cmk(r: ResourceRecord, stack: str) -> Iterator[str]:
    key = r.inputs.get("kmsKeyId", MISSING)
    if key is not None and (key is MISSING or "aws/secretsmanager" in str(key)):
        yield "uses the AWS-managed key"


@resource_rule("DEPLOY-SECRET-RECOVERY", "Recovery window 0 or 7-30 days; named dev secrets delete at once",
               types=[T.SECRET], source="deploy",
               fix="set recovery_window_in_days to 0 or 7-30; in dev use 0 or autonaming so re-creates do not collide")
def secret_recovery(r: ResourceRecord, stack: str) -> Iterator[str]:
    raw = r.inputs.get("recoveryWindowInDays", MISSING)
    if raw is None:
        return
    days = num(raw) if raw is not MISSING else 30
    if days is not None and not (days == 0 or 7 <= days <= 30):
        yield f"recovery window {days:g} is not 0 or 7-30"
    if stack != "prod" and isinstance(r.inputs.get("name"), str) and days:
        yield f"fixed name with a {days:g}-day recovery window: a re-created dev stack collides with the deleted name"


# ---------------------------------------------------------------- secret hygiene

SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|PRIVATE_KEY|CREDENTIAL|AUTH_KEY)", re.I)
SECRET_JSON_KEYS = re.compile(r"(pass|secret|token|key|credential)", re.I)
MIN_SECRET_LEN = 8

# Inputs that legitimately carry a secret value to AWS (write-only into the service that needs it).
SECRET_SINKS = {
    (T.SECRET_VERSION, "secretString"),
    (T.RDS_INSTANCE, "password"),
    (T.REPLICATION_GROUP, "authToken"),
    (T.DOMAIN, "advancedSecurityOptions"),
    (T.RANDOM_PASSWORD, "*"),
}


def secret_values(stack: StackRecords) -> dict[str, str]:
    """Secret strings the stack holds -> the record that holds them."""
    found: dict[str, str] = {}
    for r in stack.of_type(T.RANDOM_PASSWORD):
        v = r.outputs.get("result")
        if isinstance(v, str) and len(v) >= MIN_SECRET_LEN:
            found[v] = r.name
    for r in stack.of_type(T.SECRET_VERSION):
        body = r.inputs.get("secretString")
        if not isinstance(body, str):
            continue
        parts = [body]
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            parts = [v for k, v in parsed.items() if isinstance(v, str) and SECRET_JSON_KEYS.search(k)]
        elif url_password(body):
            parts = [url_password(body) or ""]
        for p in parts:
            if len(p) >= MIN_SECRET_LEN:
                found[p] = r.name
    return found


def _leaks(value: object, secrets: dict[str, str]) -> list[str]:
    return sorted({holder for s in strings_in(value) for secret, holder in secrets.items() if secret in s})


def _arn_map(value: str) -> bool:
    """A JSON object keyed by ARNs (e.g. secret ARN → host): names secrets, holds none."""
    try:
        parsed = json.loads(value)
    except ValueError:
        return False
    return isinstance(parsed, dict) and bool(parsed) and all(str(k).startswith("arn:") for k in parsed)


@stack_rule("CKV_AWS_45", "No secret values in Lambda environment variables", types=[T.FUNCTION],
            fix="put the secret's ARN in the environment and read the value at cold start")
def env_secrets(stack: StackRecords) -> Found:
    secrets = secret_values(stack)
    for fn in stack.of_type(T.FUNCTION):
        env = get(fn.inputs, "environment.variables")
        if not isinstance(env, dict):
            continue
        for k, v in env.items():
            if not isinstance(v, str):
                continue
            leaked = _leaks(v, secrets)
            if leaked:
                yield fn, f"env {k} holds the value of {leaked}"
            elif url_password(v):
                yield fn, f"env {k} is a URL with a password"
            elif (SECRET_NAME.search(k) and not k.endswith(("_ARN", "_NAME", "_ID")) and not v.startswith("arn:")
                  and not _arn_map(v)):
                yield fn, f"env {k} looks like a secret value, not an ARN"


@stack_rule("SECRET-INPUTS", "Secret values reach only the services that need them", types=[],
            fix="pass the secret ARN (or let the service manage it); only SecretVersion, the RDS password, the "
                "ElastiCache auth token and the OpenSearch master user may carry the value")
def secret_inputs(stack: StackRecords) -> Found:
    secrets = secret_values(stack)
    if not secrets:
        return
    for r in stack:
        if r.type == T.FUNCTION or (r.type, "*") in SECRET_SINKS:
            continue  # functions: CKV_AWS_45
        for key, value in r.inputs.items():
            if (r.type, key) in SECRET_SINKS:
                continue
            leaked = _leaks(value, secrets)
            if leaked:
                yield r, f"input {key} holds the value of {leaked}"


@stack_rule("SECRET-OUTPUTS", "Stack outputs hold no secret values", types=[],
            fix="export the secret's ARN, never its value")
def secret_outputs(stack: StackRecords) -> Found:
    secrets = secret_values(stack)
    for key, value in stack.outputs.items():
        leaked = _leaks(value, secrets)
        if leaked:
            yield None, f"output {key} holds the value of {leaked}"
