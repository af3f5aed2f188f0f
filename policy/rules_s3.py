"""S3 rules: v7 buckets are bare, so most controls look for the bucket's separate sub-resources across the stack."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator

from infra.records import ResourceRecord, StackRecords
from policy import types as T
from policy.engine import ADVISORY, PROD, resource_rule, stack_rule
from policy.helpers import (
    MISSING,
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
    principals,
    resolve,
    statements,
)

Found = Iterator[tuple[ResourceRecord | None, str]]


def bucket_of(stack: StackRecords, sub: ResourceRecord) -> ResourceRecord | None:
    return resolve(stack, sub.inputs.get("bucket"), [T.BUCKET], via=sub)


def subs_of(stack: StackRecords, bucket: ResourceRecord, sub_type: str) -> list[ResourceRecord]:
    return [s for s in stack.of_type(sub_type) if bucket_of(stack, s) is bucket]


def bucket_name(bucket: ResourceRecord) -> str | None:
    return known_str(bucket.inputs.get("bucket")) or known_str(bucket.outputs.get("bucket"))


def versioning_enabled(stack: StackRecords, bucket: ResourceRecord) -> bool:
    return any(get(v.inputs, "versioningConfiguration.status") == "Enabled"
               for v in subs_of(stack, bucket, T.BUCKET_VERSIONING))


def log_target_buckets(stack: StackRecords) -> set[str]:
    """URNs of buckets that receive access logs (they do not log to themselves)."""
    out = set()
    for lg in stack.of_type(T.BUCKET_LOGGING):
        target = resolve(stack, lg.inputs.get("targetBucket"), [T.BUCKET])
        if target is not None:
            out.add(target.urn)
    return out


@resource_rule("S3.1", "Account-level public access block has all four flags on", types=[T.ACCOUNT_BPA],
               fix="set block_public_acls, block_public_policy, ignore_public_acls and restrict_public_buckets True")
def account_bpa(r: ResourceRecord, stack: str) -> Iterator[str]:
    for flag in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"):
        if r.inputs.get(flag, MISSING) is not None and not is_true(r.inputs.get(flag)):
            yield f"{flag} is not True"


@stack_rule("S3.8", "Every bucket has a public access block with all four flags on", types=[T.BUCKET],
            fix="add s3.BucketPublicAccessBlock(bucket=...) with all four flags True")
def bucket_bpa(stack: StackRecords) -> Found:
    for b in stack.of_type(T.BUCKET):
        blocks = subs_of(stack, b, T.BUCKET_BPA)
        if not blocks:
            yield b, "has no BucketPublicAccessBlock"
        for blk in blocks:
            for flag in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"):
                v = blk.inputs.get(flag, MISSING)
                if v is not None and not is_true(v):
                    yield b, f"public access block {blk.name} leaves {flag} off"


PUBLIC_ACLS = {"public-read", "public-read-write", "authenticated-read"}


@resource_rule("S3.2", "No public read or write through ACLs or bucket policies",
               types=[T.BUCKET, T.BUCKET_ACL, T.BUCKET_POLICY],
               fix="drop the public ACL/grant and the Allow for Principal '*'; rely on the public access block")
def no_public_access(r: ResourceRecord, stack: str) -> Iterator[str]:
    acl = r.inputs.get("acl")
    if acl in PUBLIC_ACLS:
        yield f"ACL {acl} is public"
    if r.type == T.BUCKET_POLICY:
        for s in statements(parse_doc(r.inputs.get("policy"))):
            if allows(s) and is_public_principal(s) and not has_condition_key(
                    s, "aws:SourceArn", "aws:SourceAccount", "aws:PrincipalAccount", "aws:PrincipalOrgID"):
                yield f"statement {s.get('Sid', '?')} allows Principal '*' unconditionally"


@stack_rule("S3.5", "Every bucket policy denies requests without TLS", types=[T.BUCKET],
            fix="add a BucketPolicy statement Deny s3:* when aws:SecureTransport is false")
def deny_non_tls(stack: StackRecords) -> Found:
    for b in stack.of_type(T.BUCKET):
        pols = subs_of(stack, b, T.BUCKET_POLICY)
        docs = [parse_doc(p.inputs.get("policy")) for p in pols]
        if any(p.inputs.get("policy") is None for p in pols):
            continue  # unknown at preview
        ok = any(
            s.get("Effect") == "Deny" and "false" in str(get(s, "Condition.Bool.aws:SecureTransport", "")).lower()
            for d in docs for s in statements(d))
        if not ok:
            yield b, "no bucket policy denies aws:SecureTransport=false"


@resource_rule("S3.6", "Bucket policies grant nothing to '*' principals or whole accounts",
               types=[T.BUCKET_POLICY], fix="name the role ARNs (same account) as principals, never '*' or ':root'")
def no_open_principals(r: ResourceRecord, stack: str) -> Iterator[str]:
    for s in statements(parse_doc(r.inputs.get("policy"))):
        if not allows(s):
            continue
        if is_public_principal(s):
            yield f"statement {s.get('Sid', '?')} allows Principal '*'"
        for arn in principals(s).get("AWS", []):
            if arn.endswith(":root") or re.fullmatch(r"\d{12}", arn):
                yield f"statement {s.get('Sid', '?')} allows a whole account ({arn})"


@stack_rule("S3.9", "Buckets write server access logs", types=[T.BUCKET], stacks=PROD,
            fix="add s3.BucketLogging(bucket=..., target_bucket=<log bucket>)")
def access_logging(stack: StackRecords) -> Found:
    targets = log_target_buckets(stack)
    for b in stack.of_type(T.BUCKET):
        if b.urn not in targets and not subs_of(stack, b, T.BUCKET_LOGGING):
            yield b, "has no BucketLogging"


def _lifecycle_rules(stack: StackRecords, b: ResourceRecord) -> list[dict] | None:
    confs = subs_of(stack, b, T.BUCKET_LIFECYCLE)
    if any(c.inputs.get("rules") is None and "rules" in c.inputs for c in confs):
        return None
    return [rule for c in confs for rule in as_list(c.inputs.get("rules")) if isinstance(rule, dict)
            and rule.get("status") != "Disabled"]


@stack_rule("S3.13", "Every bucket has a lifecycle that aborts incomplete multipart uploads", types=[T.BUCKET],
            fix="add a BucketLifecycleConfiguration rule with abort_incomplete_multipart_upload")
def abort_mpu(stack: StackRecords) -> Found:
    for b in stack.of_type(T.BUCKET):
        rules = _lifecycle_rules(stack, b)
        if rules is not None and not any(get(r, "abortIncompleteMultipartUpload") for r in rules):
            yield b, "no lifecycle rule aborts incomplete multipart uploads"


@stack_rule("S3.10", "Versioned buckets expire noncurrent versions", types=[T.BUCKET],
            fix="add a lifecycle rule with noncurrent_version_expiration (e.g. 30 days)")
def noncurrent_expiry(stack: StackRecords) -> Found:
    for b in stack.of_type(T.BUCKET):
        if not versioning_enabled(stack, b):
            continue
        rules = _lifecycle_rules(stack, b)
        if rules is not None and not any(get(r, "noncurrentVersionExpiration") for r in rules):
            yield b, "is versioned but no lifecycle rule expires noncurrent versions"


@stack_rule("S3.11", "Buckets send event notifications", types=[T.BUCKET],
            fix="add one s3.BucketNotification (eventbridge=True or lambda_functions=[...])")
def notifications(stack: StackRecords) -> Found:
    targets = log_target_buckets(stack)
    for b in stack.of_type(T.BUCKET):
        if b.urn not in targets and not subs_of(stack, b, T.BUCKET_NOTIFICATION):
            yield b, "has no BucketNotification"


@stack_rule("S3.12", "ACLs are disabled (BucketOwnerEnforced) on every bucket", types=[T.BUCKET],
            fix="add s3.BucketOwnershipControls(rule={'object_ownership': 'BucketOwnerEnforced'})")
def acls_disabled(stack: StackRecords) -> Found:
    for b in stack.of_type(T.BUCKET):
        ctl = subs_of(stack, b, T.BUCKET_OWNERSHIP)
        owners = [get(c.inputs, "rule.objectOwnership") for c in ctl]
        if None in owners:
            continue
        if "BucketOwnerEnforced" not in owners:
            yield b, "has no BucketOwnershipControls with BucketOwnerEnforced"


def _sse_defaults(stack: StackRecords, b: ResourceRecord) -> list[dict]:
    return [r for c in subs_of(stack, b, T.BUCKET_SSE) for r in as_list(c.inputs.get("rules")) if isinstance(r, dict)]


@stack_rule("CKV_AWS_19", "Every bucket declares default encryption", types=[T.BUCKET],
            fix="add s3.BucketServerSideEncryptionConfiguration (AES256, or aws:kms in prod)")
def default_encryption(stack: StackRecords) -> Found:
    for b in stack.of_type(T.BUCKET):
        if not subs_of(stack, b, T.BUCKET_SSE):
            yield b, "has no BucketServerSideEncryptionConfiguration"


@stack_rule("S3.17", "Buckets encrypt with SSE-KMS and S3 bucket keys", types=[T.BUCKET], stacks=PROD,
            fix="set sse_algorithm='aws:kms', kms_master_key_id=<CMK>, bucket_key_enabled=True")
def sse_kms(stack: StackRecords) -> Found:
    log_targets = log_target_buckets(stack)  # S3 server access logs cannot be delivered to SSE-KMS buckets
    for b in stack.of_type(T.BUCKET):
        if b.urn in log_targets:
            continue
        rules = _sse_defaults(stack, b)
        if not rules:
            continue  # CKV_AWS_19 reports the missing configuration
        alg = [get(r, "applyServerSideEncryptionByDefault.sseAlgorithm") for r in rules]
        if None in alg:
            continue
        if not any(a in ("aws:kms", "aws:kms:dsse") and is_true(r.get("bucketKeyEnabled"))
                   for a, r in zip(alg, rules, strict=True)):
            yield b, f"default encryption is {alg} without aws:kms and bucket_key_enabled"


@stack_rule("S3.14", "Buckets are versioned", types=[T.BUCKET],
            fix="add s3.BucketVersioning(versioning_configuration={'status': 'Enabled'})")
def versioned(stack: StackRecords) -> Found:
    for b in stack.of_type(T.BUCKET):
        if not versioning_enabled(stack, b):
            yield b, "has no BucketVersioning with status Enabled"


def replication_destinations(stack: StackRecords) -> set[str]:
    out = set()
    for rc in stack.of_type(T.BUCKET_REPLICATION):
        for rule in as_list(rc.inputs.get("rules")):
            dest = resolve(stack, get(rule, "destination.bucket"), [T.BUCKET])
            if dest is not None:
                out.add(dest.urn)
    return out


@stack_rule("S3.7", "Versioned buckets replicate to another region", types=[T.BUCKET], stacks=PROD,
            fix="add s3.BucketReplicationConfig to the replica bucket in the second region")
def cross_region_replication(stack: StackRecords) -> Found:
    dests = replication_destinations(stack)
    for b in stack.of_type(T.BUCKET):
        if b.urn in dests or not versioning_enabled(stack, b):
            continue
        if not subs_of(stack, b, T.BUCKET_REPLICATION):
            yield b, "is versioned but not replicated"


# ---------------------------------------------------------------- deploy-time rules (deploy-rules.md 11-17)

@stack_rule("DEPLOY-S3-NOTIFICATION", "Notifications wait for the invoke permission; one per bucket; filters apart",
            types=[T.BUCKET_NOTIFICATION], source="deploy",
            fix="depends_on the s3.amazonaws.com lambda Permission, keep one BucketNotification per bucket, "
                "and make prefix/suffix filters of the same event type disjoint")
def notification_order(stack: StackRecords) -> Found:
    seen: dict[str, ResourceRecord] = {}
    for n in stack.of_type(T.BUCKET_NOTIFICATION):
        b = bucket_of(stack, n)
        if b is not None:
            if b.urn in seen:
                yield n, f"is a second notification for bucket {b.name} (first: {seen[b.urn].name})"
            seen[b.urn] = n
        fns = as_list(n.inputs.get("lambdaFunctions"))
        if fns:
            perms = [p for p in depends_on(stack, n, [T.PERMISSION]) if p.inputs.get("principal") == "s3.amazonaws.com"]
            if not perms:
                yield n, "targets Lambda but does not depend on an s3.amazonaws.com lambda Permission"
        targets = [t for key in ("lambdaFunctions", "queues", "topics") for t in as_list(n.inputs.get(key))
                   if isinstance(t, dict)]
        for i, a in enumerate(targets):
            for c in targets[i + 1:]:
                if _overlap(a, c):
                    yield n, "two targets share an event type with overlapping prefix/suffix filters"


def _overlap(a: dict, b: dict) -> bool:
    ev_a, ev_b = set(as_list(a.get("events"))), set(as_list(b.get("events")))

    def covers(x: str, y: str) -> bool:
        return x == y or (x.endswith("*") and y.startswith(x[:-1]))

    if not any(covers(x, y) or covers(y, x) for x in ev_a for y in ev_b):
        return False
    pa, pb = a.get("filterPrefix") or "", b.get("filterPrefix") or ""
    sa, sb = a.get("filterSuffix") or "", b.get("filterSuffix") or ""
    return (pa.startswith(pb) or pb.startswith(pa)) and (sa.endswith(sb) or sb.endswith(sa))


BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@resource_rule("DEPLOY-S3-NAME", "Bucket names follow the S3 naming rules", types=[T.BUCKET], source="deploy",
               fix="use 3-63 chars of [a-z0-9.-], alphanumeric ends, no IP shape, no xn--/sthree- prefix, "
                   "no -s3alias/--ol-s3 suffix")
def bucket_name_rules(r: ResourceRecord, stack: str) -> Iterator[str]:
    name = known_str(r.inputs.get("bucket"))
    prefix = known_str(r.inputs.get("bucketPrefix"))
    if name is not None:
        if not BUCKET_NAME.match(name) or ".." in name:
            yield f"name {name!r} breaks the character/length rules"
        try:
            ipaddress.ip_address(name)
            yield f"name {name!r} is shaped like an IP address"
        except ValueError:
            pass
        if name.startswith(("xn--", "sthree-")) or name.endswith(("-s3alias", "--ol-s3", ".mrap", "--x-s3")):
            yield f"name {name!r} uses a reserved prefix or suffix"
    elif prefix is not None and (len(prefix) > 37 or not re.fullmatch(r"[a-z0-9][a-z0-9.-]*", prefix)):
        yield f"bucket_prefix {prefix!r} is too long (> 37) or has invalid characters"


@stack_rule("DEPLOY-S3-ACCELERATION", "Transfer acceleration only on bucket names without dots",
            types=[T.BUCKET_ACCELERATE], source="deploy", fix="rename the bucket without '.' or drop acceleration")
def acceleration_dots(stack: StackRecords) -> Found:
    for a in stack.of_type(T.BUCKET_ACCELERATE):
        b = bucket_of(stack, a)
        name = bucket_name(b) if b is not None else None
        if a.inputs.get("status") == "Enabled" and name and "." in name:
            yield a, f"enables acceleration on {name!r}, which contains '.'"


@stack_rule("DEPLOY-S3-REPLICATION", "Replication waits for versioning on both buckets; filter rules replicate "
            "delete markers", types=[T.BUCKET_REPLICATION], source="deploy",
            fix="depends_on both BucketVersioning resources (status Enabled), set delete_marker_replication on "
                "filter rules, and use a role trusting s3.amazonaws.com")
def replication(stack: StackRecords) -> Found:
    for rc in stack.of_type(T.BUCKET_REPLICATION):
        src = bucket_of(stack, rc)
        buckets = [src] + [resolve(stack, get(rule, "destination.bucket"), [T.BUCKET])
                           for rule in as_list(rc.inputs.get("rules"))]
        deps = {v.urn for v in depends_on(stack, rc, [T.BUCKET_VERSIONING])
                if get(v.inputs, "versioningConfiguration.status") == "Enabled"}
        for b in buckets:
            if b is None:
                continue
            mine = {v.urn for v in subs_of(stack, b, T.BUCKET_VERSIONING)}
            if not mine & deps:
                yield rc, f"does not depend on an Enabled BucketVersioning of bucket {b.name}"
        for rule in as_list(rc.inputs.get("rules")):
            if isinstance(rule, dict) and rule.get("filter") is not None and "filter" in rule \
                    and not rule.get("deleteMarkerReplication"):
                yield rc, f"rule {rule.get('id', '?')} has a filter but no delete_marker_replication"
        role = resolve(stack, rc.inputs.get("role"), [T.ROLE])
        if role is not None:
            doc = parse_doc(role.inputs.get("assumeRolePolicy"))
            if doc is not None and not any("s3.amazonaws.com" in principals(s).get("Service", [])
                                           for s in statements(doc)):
                yield rc, f"role {role.name} does not trust s3.amazonaws.com"


IA_CLASSES = {"STANDARD_IA", "ONEZONE_IA"}


@resource_rule("DEPLOY-S3-LIFECYCLE", "Delete-marker cleanup is its own rule; IA transitions >= 30 days; explicit "
               "filters", types=[T.BUCKET_LIFECYCLE], source="deploy",
               fix="put expired_object_delete_marker in a rule without days/date, transition to IA after >= 30 days, "
                   "and give every rule filter={} or a prefix")
def lifecycle_shape(r: ResourceRecord, stack: str) -> Iterator[str]:
    for rule in as_list(r.inputs.get("rules")):
        if not isinstance(rule, dict):
            continue
        rid = rule.get("id", "?")
        exp = get(rule, "expiration")
        if isinstance(exp, list):
            exp = exp[0] if exp else None
        if isinstance(exp, dict) and is_true(exp.get("expiredObjectDeleteMarker")) and (
                exp.get("days") not in (None, MISSING, 0) or exp.get("date") not in (None, MISSING, "")):
            yield f"rule {rid} mixes expired_object_delete_marker with days/date"
        for t in as_list(rule.get("transitions")):
            d = num(get(t, "days"))
            if get(t, "storageClass") in IA_CLASSES and d is not None and d < 30:
                yield f"rule {rid} moves objects to {get(t, 'storageClass')} after {d:g} < 30 days"
        if "filter" not in rule and "prefix" not in rule:
            yield f"rule {rid} has neither filter nor prefix"


@resource_rule("DEPLOY-S3-ACL", "No BucketAcl on BucketOwnerEnforced buckets", types=[T.BUCKET_ACL, T.BUCKET],
               source="deploy", fix="delete the BucketAcl / acl / grants; grant access with bucket policies")
def no_bucket_acl(r: ResourceRecord, stack: str) -> Iterator[str]:
    if r.type == T.BUCKET_ACL:
        yield "ACLs are rejected on new buckets (AccessControlListNotSupported)"
    elif r.inputs.get("acl") not in (None, MISSING, "private") or r.inputs.get("grants"):
        yield "sets an inline acl/grants"


@stack_rule("DEPLOY-S3-ORDERING", "Bucket policy waits for the public access block and ownership controls",
            types=[T.BUCKET_POLICY], source="deploy",
            fix="give the BucketPolicy depends_on=[public access block, ownership controls] of its bucket")
def policy_ordering(stack: StackRecords) -> Found:
    for p in stack.of_type(T.BUCKET_POLICY):
        b = bucket_of(stack, p)
        if b is None:
            continue
        for sub_type in (T.BUCKET_BPA, T.BUCKET_OWNERSHIP):
            for sub in subs_of(stack, b, sub_type):
                if sub.urn not in p.dependencies:
                    yield p, f"is written in parallel with {sub.name}"


@resource_rule("S3-CORS", "CORS names its origins", types=["aws:s3/bucketCorsConfiguration:BucketCorsConfiguration"],
               severity=ADVISORY, fix="list the allowed origins explicitly instead of '*'")
def cors_origins(r: ResourceRecord, stack: str) -> Iterator[str]:
    for rule in as_list(r.inputs.get("corsRules")):
        if "*" in as_list(get(rule, "allowedOrigins", [])):
            yield "allows origin '*'"
