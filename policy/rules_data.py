"""DynamoDB, OpenSearch, RDS (+ Proxy) and ElastiCache rules (security-controls.md; deploy-rules.md 18-33)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from urllib.parse import urlparse

from infra.records import ResourceRecord, StackRecords
from policy import types as T
from policy.engine import ADVISORY, PROD, resource_rule, stack_rule
from policy.helpers import MISSING, as_list, get, is_false, is_true, known_str, num, resolve

Found = Iterator[tuple[ResourceRecord | None, str]]


def _flag(r: ResourceRecord, path: str, what: str) -> Iterator[str]:
    """Yield when a required boolean is not True (silent when unknown)."""
    v = get(r.inputs, path)
    if v is not None and not is_true(v):
        yield f"{what} is {'unset' if v is MISSING else v}"


def _customer_key(r: ResourceRecord, key_path: str, what: str) -> Iterator[str]:
    """Yield when data is encrypted with an AWS-owned or AWS-managed key instead of ours: the key input is absent,
    empty or an ``alias/aws/...`` alias (silent when unknown at preview). ``enabled=True`` alone is not enough."""
    key = get(r.inputs, key_path)
    if key is None:
        return
    if key is MISSING or not key:
        yield f"{what} uses an AWS key: {key_path} is unset"
    elif isinstance(key, str) and key.startswith("alias/aws/"):
        yield f"{what} uses the AWS-managed key {key}"


# ---------------------------------------------------------------- DynamoDB

@resource_rule("DynamoDB.1", "Tables scale with demand", types=[T.TABLE], fix="set billing_mode='PAY_PER_REQUEST'")
def ddb_on_demand(r: ResourceRecord, stack: str) -> Iterator[str]:
    mode = r.inputs.get("billingMode", MISSING)
    if mode is not None and mode != "PAY_PER_REQUEST":
        yield f"billing mode is {mode if mode is not MISSING else 'PROVISIONED (default)'}"


@resource_rule("DynamoDB.2", "Point-in-time recovery is on", types=[T.TABLE], stacks=PROD,
               fix="set point_in_time_recovery={'enabled': True}")
def ddb_pitr(r: ResourceRecord, stack: str) -> Iterator[str]:
    yield from _flag(r, "pointInTimeRecovery.enabled", "point-in-time recovery")


@resource_rule("DynamoDB.6", "Deletion protection is on", types=[T.TABLE], stacks=PROD,
               fix="set deletion_protection_enabled=True in prod")
def ddb_deletion_protection(r: ResourceRecord, stack: str) -> Iterator[str]:
    yield from _flag(r, "deletionProtectionEnabled", "deletion protection")


@resource_rule("CKV_AWS_119", "Tables encrypt with a customer-managed key", types=[T.TABLE], stacks=PROD,
               fix="set server_side_encryption={'enabled': True, 'kms_key_arn': <CMK>}")
def ddb_cmk(r: ResourceRecord, stack: str) -> Iterator[str]:
    if is_false(get(r.inputs, "serverSideEncryption.enabled")) or get(r.inputs, "serverSideEncryption") is MISSING:
        yield "uses the AWS-owned key"
    else:
        yield from _customer_key(r, "serverSideEncryption.kmsKeyArn", "server-side encryption")


@resource_rule("DEPLOY-DYNAMODB-ATTRIBUTES", "Attributes are exactly the table and index keys", types=[T.TABLE],
               source="deploy", fix="declare an attribute for every key and no attribute that is not a key")
def ddb_attributes(r: ResourceRecord, stack: str) -> Iterator[str]:
    attrs = r.inputs.get("attributes")
    if attrs is None or attrs is MISSING:
        return
    declared: set = {a.get("name") for a in as_list(attrs) if isinstance(a, dict)}
    keys: set = {r.inputs.get("hashKey", MISSING), r.inputs.get("rangeKey", MISSING)}
    for idx in as_list(r.inputs.get("globalSecondaryIndexes")) + as_list(r.inputs.get("localSecondaryIndexes")):
        if isinstance(idx, dict):
            keys |= {idx.get("hashKey", MISSING), idx.get("rangeKey", MISSING)}
            keys |= {k.get("attributeName") for k in as_list(idx.get("keySchemas")) if isinstance(k, dict)}
    if None in keys or None in declared:
        return  # a key or attribute name unknown at preview
    keys.discard(MISSING)
    if declared - keys:
        yield f"attributes {sorted(declared - keys)} are not keys of the table or an index"
    if keys - declared:
        yield f"keys {sorted(keys - declared)} have no attribute definition"


# ---------------------------------------------------------------- OpenSearch

@resource_rule("Opensearch.1", "Encrypted at rest", types=[T.DOMAIN], fix="set encrypt_at_rest={'enabled': True}")
def os_at_rest(r: ResourceRecord, stack: str) -> Iterator[str]:
    yield from _flag(r, "encryptAtRest.enabled", "encryption at rest")


@resource_rule("CKV_AWS_247", "Encrypted at rest with a customer-managed key", types=[T.DOMAIN],
               fix="set encrypt_at_rest={'enabled': True, 'kms_key_id': <CMK ARN>}")
def os_cmk(r: ResourceRecord, stack: str) -> Iterator[str]:
    if not is_false(get(r.inputs, "encryptAtRest.enabled")):  # off entirely: Opensearch.1 reports it
        yield from _customer_key(r, "encryptAtRest.kmsKeyId", "encryption at rest")


@resource_rule("Opensearch.2", "Domains live in the VPC with their own security group", types=[T.DOMAIN],
               fix="set vpc_options(subnet_ids=[private...], security_group_ids=[<domain SG>])")
def os_in_vpc(r: ResourceRecord, stack: str) -> Iterator[str]:
    vpc = r.inputs.get("vpcOptions", MISSING)
    if vpc is None:
        return
    if vpc is MISSING or not as_list(get(vpc, "subnetIds", [])):
        yield "has a public endpoint (no vpc_options)"
    elif get(vpc, "securityGroupIds", MISSING) is not None and not as_list(get(vpc, "securityGroupIds", [])):
        yield "uses the VPC's default security group"


@resource_rule("Opensearch.3", "Node-to-node encryption", types=[T.DOMAIN],
               fix="set node_to_node_encryption={'enabled': True}")
def os_n2n(r: ResourceRecord, stack: str) -> Iterator[str]:
    yield from _flag(r, "nodeToNodeEncryption.enabled", "node-to-node encryption")


def _log_types(r: ResourceRecord) -> set[str] | None:
    opts = r.inputs.get("logPublishingOptions", MISSING)
    if opts is None:
        return None
    return {str(o.get("logType")) for o in as_list(opts) if isinstance(o, dict) and not is_false(o.get("enabled"))}


@stack_rule("Opensearch.4", "Error logs go to CloudWatch through a resource policy for es.amazonaws.com",
            types=[T.DOMAIN], fix="publish ES_APPLICATION_LOGS to a log group and add a cloudwatch.LogResourcePolicy "
                                  "for es.amazonaws.com")
def os_error_logs(stack: StackRecords) -> Found:
    for d in stack.of_type(T.DOMAIN):
        types = _log_types(d)
        if types is not None and "ES_APPLICATION_LOGS" not in types:
            yield d, "does not publish ES_APPLICATION_LOGS"
        elif types and not any("es.amazonaws.com" in str(p.inputs.get("policyDocument", ""))
                               or p.inputs.get("policyDocument") is None
                               for p in stack.of_type(T.LOG_RESOURCE_POLICY)):
            yield d, "publishes logs but no LogResourcePolicy admits es.amazonaws.com"


@resource_rule("Opensearch.5", "Audit logs are published", types=[T.DOMAIN], stacks=PROD,
               fix="publish AUDIT_LOGS (needs fine-grained access control)")
def os_audit_logs(r: ResourceRecord, stack: str) -> Iterator[str]:
    types = _log_types(r)
    if types is not None and "AUDIT_LOGS" not in types:
        yield "does not publish AUDIT_LOGS"


@resource_rule("Opensearch.6", "At least 3 data nodes with zone awareness", types=[T.DOMAIN], stacks=PROD,
               fix="set cluster_config.instance_count>=3 and zone_awareness_enabled=True")
def os_three_nodes(r: ResourceRecord, stack: str) -> Iterator[str]:
    n = num(get(r.inputs, "clusterConfig.instanceCount")) or 1
    if get(r.inputs, "clusterConfig.instanceCount") is None:
        return
    if n < 3:
        yield f"has {n:g} data nodes"
    yield from _flag(r, "clusterConfig.zoneAwarenessEnabled", "zone awareness")


@resource_rule("Opensearch.7", "Fine-grained access control is on", types=[T.DOMAIN],
               fix="set advanced_security_options(enabled=True, internal_user_database_enabled=..., "
                   "master_user_options=...)")
def os_fgac(r: ResourceRecord, stack: str) -> Iterator[str]:
    yield from _flag(r, "advancedSecurityOptions.enabled", "fine-grained access control")
    if is_true(get(r.inputs, "advancedSecurityOptions.anonymousAuthEnabled")):
        yield "allows anonymous access"


@resource_rule("Opensearch.ACCESS", "An access policy open to every principal needs a VPC endpoint and FGAC",
               types=[T.DOMAIN], fix="keep the domain in the VPC (vpc_options) with fine-grained access control on, "
                                     "or name the principals in access_policies")
def os_open_policy(r: ResourceRecord, stack: str) -> Iterator[str]:
    policy = known_str(r.inputs.get("accessPolicies"))
    if policy is None or not re.search(r'"Principal"\s*:\s*(\{\s*"AWS"\s*:\s*)?"\*"', policy):
        return
    if not as_list(get(r.inputs, "vpcOptions.subnetIds", [])):
        yield "admits every principal on a public endpoint"
    elif not is_true(get(r.inputs, "advancedSecurityOptions.enabled")):
        yield "admits every principal without fine-grained access control"


TLS_POLICIES = {"Policy-Min-TLS-1-2-PFS-2023-10", "Policy-Min-TLS-1-2-2019-07"}


@resource_rule("Opensearch.8", "HTTPS only, TLS 1.2+", types=[T.DOMAIN],
               fix="set domain_endpoint_options(enforce_https=True, "
                   "tls_security_policy='Policy-Min-TLS-1-2-PFS-2023-10')")
def os_tls(r: ResourceRecord, stack: str) -> Iterator[str]:
    yield from _flag(r, "domainEndpointOptions.enforceHttps", "enforce_https")
    pol = get(r.inputs, "domainEndpointOptions.tlsSecurityPolicy")
    if pol is not None and pol not in TLS_POLICIES:
        yield f"TLS policy is {pol if pol is not MISSING else 'the 1.0 default'}"


@resource_rule("Opensearch.10", "Automatic software updates", types=[T.DOMAIN],
               fix="set software_update_options={'auto_software_update_enabled': True}")
def os_updates(r: ResourceRecord, stack: str) -> Iterator[str]:
    yield from _flag(r, "softwareUpdateOptions.autoSoftwareUpdateEnabled", "auto software update")


@resource_rule("Opensearch.11", "Three dedicated master nodes", types=[T.DOMAIN], stacks=PROD,
               fix="set dedicated_master_enabled=True and dedicated_master_count=3")
def os_masters(r: ResourceRecord, stack: str) -> Iterator[str]:
    yield from _flag(r, "clusterConfig.dedicatedMasterEnabled", "dedicated masters")
    n = num(get(r.inputs, "clusterConfig.dedicatedMasterCount"))
    if is_true(get(r.inputs, "clusterConfig.dedicatedMasterEnabled")) and n is not None and n < 3:
        yield f"has {n:g} dedicated masters"


@resource_rule("DEPLOY-OPENSEARCH-ZONES", "Zone awareness matches node and subnet counts", types=[T.DOMAIN],
               source="deploy", fix="2 AZs: even node count and 2 subnets; 3 AZs: 3 subnets; no zone awareness: "
                                    "exactly one subnet")
def os_zones(r: ResourceRecord, stack: str) -> Iterator[str]:
    aware = get(r.inputs, "clusterConfig.zoneAwarenessEnabled")
    count = num(get(r.inputs, "clusterConfig.instanceCount"))
    subnets = get(r.inputs, "vpcOptions.subnetIds")
    n_subnets = len(as_list(subnets)) if subnets not in (None, MISSING) else None
    if aware is None:
        return
    if is_true(aware):
        azs = num(get(r.inputs, "clusterConfig.zoneAwarenessConfig.availabilityZoneCount")) or 2
        if azs not in (2, 3):
            yield f"availability_zone_count {azs:g} is not 2 or 3"
        if azs == 2 and count is not None and count % 2:
            yield f"{count:g} data nodes over 2 AZs (needs an even count)"
        if n_subnets is not None and n_subnets != azs:
            yield f"{n_subnets} subnets for {azs:g} AZs"
        if count is not None and count < azs:
            yield f"{count:g} data nodes for {azs:g} AZs"
    elif n_subnets is not None and n_subnets != 1:
        yield f"{n_subnets} subnets without zone awareness (needs exactly one)"


@resource_rule("DEPLOY-OPENSEARCH-MASTERS", "Dedicated master count is odd", types=[T.DOMAIN], source="deploy",
               fix="use 3 (or 5) dedicated masters")
def os_master_count(r: ResourceRecord, stack: str) -> Iterator[str]:
    n = num(get(r.inputs, "clusterConfig.dedicatedMasterCount"))
    if is_true(get(r.inputs, "clusterConfig.dedicatedMasterEnabled")) and n is not None and n % 2 == 0:
        yield f"has an even number ({n:g}) of dedicated masters"


def password_strength_problem(pw: str) -> str | None:
    if not 8 <= len(pw) <= 128:
        return f"is {len(pw)} characters (needs 8-128)"
    classes = [any(c.isupper() for c in pw), any(c.islower() for c in pw), any(c.isdigit() for c in pw),
               any(not c.isalnum() for c in pw)]
    if not all(classes):
        return "lacks one of upper case, lower case, digit, special character"
    return None


@resource_rule("DEPLOY-OPENSEARCH-FGAC", "FGAC prerequisites and a valid master user", types=[T.DOMAIN],
               source="deploy", fix="with advanced security: enforce HTTPS, node-to-node and at-rest encryption, and "
                                    "give master_user_arn or a name plus an 8-128 char password with all four classes")
def os_fgac_prereqs(r: ResourceRecord, stack: str) -> Iterator[str]:
    if not is_true(get(r.inputs, "advancedSecurityOptions.enabled")):
        return
    for path, what in (("domainEndpointOptions.enforceHttps", "enforce_https"),
                       ("nodeToNodeEncryption.enabled", "node-to-node encryption"),
                       ("encryptAtRest.enabled", "encryption at rest")):
        v = get(r.inputs, path)
        if v is not None and not is_true(v):
            yield f"advanced security needs {what}"
    mu = get(r.inputs, "advancedSecurityOptions.masterUserOptions")
    if mu is None:
        return
    arn, user, pw = get(mu, "masterUserArn"), get(mu, "masterUserName"), get(mu, "masterUserPassword")
    if mu is MISSING or (arn is MISSING and (user is MISSING or pw is MISSING)):
        yield "has no master user (master_user_arn, or name and password)"
    if isinstance(pw, str):
        problem = password_strength_problem(pw)
        if problem:
            yield f"master password {problem}"


LEGACY_TYPES = re.compile(r"^(t2|m3|r3)\.")


@resource_rule("DEPLOY-OPENSEARCH-TYPES", "Instance types end in .search and support encryption; domain name "
               "3-28 [a-z0-9-]", types=[T.DOMAIN], source="deploy",
               fix="use a current '.search' type (not t2/m3/r3) and a 3-28 character name starting with a letter")
def os_types(r: ResourceRecord, stack: str) -> Iterator[str]:
    for path in ("clusterConfig.instanceType", "clusterConfig.dedicatedMasterType"):
        t = known_str(get(r.inputs, path))
        if t is None:
            continue
        if not t.endswith(".search"):
            yield f"{t} does not end in .search"
        if LEGACY_TYPES.match(t) and is_true(get(r.inputs, "encryptAtRest.enabled")):
            yield f"{t} cannot encrypt at rest"
    name = known_str(r.inputs.get("domainName"))
    if name is None and "domainName" not in r.inputs:
        name_len = len(r.name) + 8
        if name_len > 28:
            yield f"autonamed from {r.name!r}, the domain name exceeds 28 characters"
    elif name is not None and not re.fullmatch(r"[a-z][a-z0-9-]{2,27}", name):
        yield f"domain name {name!r} breaks the 3-28 [a-z0-9-] rule"


# ---------------------------------------------------------------- RDS

@resource_rule("RDS.2", "Instances are private, in a DB subnet group", types=[T.RDS_INSTANCE],
               fix="set publicly_accessible=False and db_subnet_group_name=<private subnet group>")
def rds_private(r: ResourceRecord, stack: str) -> Iterator[str]:
    if is_true(r.inputs.get("publiclyAccessible")):
        yield "is publicly accessible"
    if r.inputs.get("dbSubnetGroupName", MISSING) is MISSING:
        yield "has no DB subnet group (default VPC)"


@resource_rule("RDS.3", "Storage is encrypted", types=[T.RDS_INSTANCE], fix="set storage_encrypted=True")
def rds_encrypted(r: ResourceRecord, stack: str) -> Iterator[str]:
    yield from _flag(r, "storageEncrypted", "storage encryption")


@resource_rule("RDS.5", "Multi-AZ", types=[T.RDS_INSTANCE], stacks=PROD, fix="set multi_az=True")
def rds_multi_az(r: ResourceRecord, stack: str) -> Iterator[str]:
    yield from _flag(r, "multiAz", "multi-AZ")


@resource_rule("RDS.6", "Enhanced monitoring", types=[T.RDS_INSTANCE], stacks=PROD,
               fix="set monitoring_interval=60 and monitoring_role_arn")
def rds_monitoring(r: ResourceRecord, stack: str) -> Iterator[str]:
    n = r.inputs.get("monitoringInterval", MISSING)
    if n is not None and not (num(n) or 0) > 0:
        yield "has no enhanced monitoring interval"
    elif n is not None and r.inputs.get("monitoringRoleArn", MISSING) is MISSING:
        yield "has no monitoring_role_arn"


@resource_rule("RDS.8", "Deletion protection", types=[T.RDS_INSTANCE], stacks=PROD, fix="set deletion_protection=True")
def rds_deletion_protection(r: ResourceRecord, stack: str) -> Iterator[str]:
    yield from _flag(r, "deletionProtection", "deletion protection")


@resource_rule("RDS.9", "PostgreSQL and upgrade logs go to CloudWatch", types=[T.RDS_INSTANCE],
               fix="set enabled_cloudwatch_logs_exports=['postgresql', 'upgrade']")
def rds_logs(r: ResourceRecord, stack: str) -> Iterator[str]:
    logs = r.inputs.get("enabledCloudwatchLogsExports", MISSING)
    if logs is None:
        return
    missing = {"postgresql", "upgrade"} - set(as_list(logs))
    if missing:
        yield f"does not export {sorted(missing)}"


@resource_rule("RDS.10", "IAM database authentication", types=[T.RDS_INSTANCE],
               fix="set iam_database_authentication_enabled=True")
def rds_iam_auth(r: ResourceRecord, stack: str) -> Iterator[str]:
    yield from _flag(r, "iamDatabaseAuthenticationEnabled", "IAM database authentication")


@resource_rule("RDS.11", "Automated backups (>= 7 days in prod)", types=[T.RDS_INSTANCE],
               fix="set backup_retention_period (>= 1; >= 7 in prod)")
def rds_backups(r: ResourceRecord, stack: str) -> Iterator[str]:
    raw = r.inputs.get("backupRetentionPeriod", MISSING)
    if raw is None:
        return
    days = num(raw) if raw is not MISSING else 0
    need = 7 if stack == "prod" else 1
    if days is not None and days < need:
        yield f"keeps backups {days:g} days (needs >= {need})"


@resource_rule("RDS.13", "Automatic minor version upgrades", types=[T.RDS_INSTANCE],
               fix="leave auto_minor_version_upgrade at True")
def rds_minor_upgrades(r: ResourceRecord, stack: str) -> Iterator[str]:
    if is_false(r.inputs.get("autoMinorVersionUpgrade")):
        yield "turns minor upgrades off"


@resource_rule("RDS.17", "Tags are copied to snapshots", types=[T.RDS_INSTANCE], fix="set copy_tags_to_snapshot=True")
def rds_copy_tags(r: ResourceRecord, stack: str) -> Iterator[str]:
    yield from _flag(r, "copyTagsToSnapshot", "copy_tags_to_snapshot")


@resource_rule("RDS.25", "The admin user is not the default", types=[T.RDS_INSTANCE],
               fix="set username to a custom name (not postgres)")
def rds_custom_admin(r: ResourceRecord, stack: str) -> Iterator[str]:
    if r.inputs.get("username") == "postgres":
        yield "uses the default user name postgres"


@stack_rule("CKV2_AWS_69", "A custom parameter group forces TLS and logs slow queries", types=[T.RDS_INSTANCE],
            fix="attach an rds.ParameterGroup with rds.force_ssl=1 and log_min_duration_statement")
def rds_parameters(stack: StackRecords) -> Found:
    for db in stack.of_type(T.RDS_INSTANCE):
        name = db.inputs.get("parameterGroupName", MISSING)
        if name is None:
            continue
        if name is MISSING or (isinstance(name, str) and name.startswith("default.")):
            yield db, "uses the default parameter group"
            continue
        pg = resolve(stack, name, [T.RDS_PARAMETER_GROUP], via=db)
        if pg is None:
            continue
        params = {p.get("name"): str(p.get("value")) for p in as_list(pg.inputs.get("parameters"))
                  if isinstance(p, dict)}
        if params.get("rds.force_ssl") != "1":
            yield db, f"parameter group {pg.name} does not set rds.force_ssl=1"
        if "log_min_duration_statement" not in params:
            yield db, f"parameter group {pg.name} does not set log_min_duration_statement"


CURRENT_CAS = {"rds-ca-rsa2048-g1", "rds-ca-rsa4096-g1", "rds-ca-ecc384-g1"}


@resource_rule("CKV_AWS_211", "A current CA certificate", types=[T.RDS_INSTANCE],
               fix="set ca_cert_identifier='rds-ca-rsa2048-g1'")
def rds_ca(r: ResourceRecord, stack: str) -> Iterator[str]:
    ca = r.inputs.get("caCertIdentifier", MISSING)
    if ca is not None and ca not in CURRENT_CAS:
        yield f"CA is {ca if ca is not MISSING else 'the engine default'}"


@resource_rule("CKV_AWS_353", "Performance Insights", types=[T.RDS_INSTANCE], stacks=PROD,
               fix="set performance_insights_enabled=True")
def rds_pi(r: ResourceRecord, stack: str) -> Iterator[str]:
    yield from _flag(r, "performanceInsightsEnabled", "Performance Insights")


@resource_rule("CKV_AWS_354", "Performance Insights encrypts with a customer-managed key", types=[T.RDS_INSTANCE],
               stacks=PROD, fix="set performance_insights_kms_key_id=<CMK ARN>")
def rds_pi_cmk(r: ResourceRecord, stack: str) -> Iterator[str]:
    if is_true(r.inputs.get("performanceInsightsEnabled")):  # off: CKV_AWS_353 reports it
        yield from _customer_key(r, "performanceInsightsKmsKeyId", "Performance Insights")


@resource_rule("SecretsManager.1-RDS", "RDS rotates its master password in Secrets Manager", types=[T.RDS_INSTANCE],
               fix="set manage_master_user_password=True and drop password")
def rds_managed_password(r: ResourceRecord, stack: str) -> Iterator[str]:
    managed = r.inputs.get("manageMasterUserPassword", MISSING)
    if managed is not None and not is_true(managed):
        yield "sets its own master password instead of manage_master_user_password"


@resource_rule("RDS.43", "The proxy requires TLS", types=[T.RDS_PROXY], fix="set require_tls=True")
def proxy_tls(r: ResourceRecord, stack: str) -> Iterator[str]:
    yield from _flag(r, "requireTls", "require_tls")


FORBIDDEN_PW = set('/@" ')


@resource_rule("DEPLOY-RDS-PASSWORD", "Master password: 8-128 printable ASCII without / @ \" or space",
               types=[T.RDS_INSTANCE], source="deploy",
               fix="generate it with override_special excluding / @ \" and space, or use manage_master_user_password")
def rds_password(r: ResourceRecord, stack: str) -> Iterator[str]:
    pw = known_str(r.inputs.get("password"))
    if pw is None:
        return
    if not 8 <= len(pw) <= 128:
        yield f"password is {len(pw)} characters"
    if any(c in FORBIDDEN_PW or not 32 < ord(c) < 127 for c in pw):
        yield "password has a character RDS rejects"


RESERVED_USERS = {"admin", "rdsadmin", "postgres_reserved"}


@resource_rule("DEPLOY-RDS-USERNAME", "Master user name: letter first, [A-Za-z0-9_], not reserved",
               types=[T.RDS_INSTANCE], source="deploy", fix="use a name like 'macroadmin'")
def rds_username(r: ResourceRecord, stack: str) -> Iterator[str]:
    user = known_str(r.inputs.get("username"))
    if user is None:
        return
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,62}", user):
        yield f"user name {user!r} is not letter-first alphanumerics/_ (<= 63)"
    if user.lower() in RESERVED_USERS or user.lower().startswith("pg_"):
        yield f"user name {user!r} is reserved"


@resource_rule("DEPLOY-RDS-DBNAME", "Database name: letter first, [A-Za-z0-9_], <= 63", types=[T.RDS_INSTANCE],
               source="deploy", fix="use a name like 'macrodb'")
def rds_db_name(r: ResourceRecord, stack: str) -> Iterator[str]:
    name = known_str(r.inputs.get("dbName"))
    if name is not None and not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,62}", name):
        yield f"db_name {name!r} is invalid"


@resource_rule("DEPLOY-RDS-DESTROY", "A final snapshot needs an identifier", types=[T.RDS_INSTANCE], source="deploy",
               fix="dev: skip_final_snapshot=True and no deletion protection; prod: final_snapshot_identifier")
def rds_destroyable(r: ResourceRecord, stack: str) -> Iterator[str]:
    skip = r.inputs.get("skipFinalSnapshot", MISSING)
    if skip is None:
        return
    if not is_true(skip) and r.inputs.get("finalSnapshotIdentifier", MISSING) is MISSING:
        yield "takes a final snapshot on delete but names none, so destroy and replace fail"
    if stack != "prod" and is_true(r.inputs.get("deletionProtection")):
        yield "has deletion protection outside prod, so the stack cannot be destroyed"


def _subnet_problem(stack: StackRecords, subnet_ids: object) -> str | None:
    if subnet_ids is None or subnet_ids is MISSING:
        return None
    ids = as_list(subnet_ids)
    if any(i is None for i in ids):
        return None
    from policy.rules_compute import _zones

    zones = _zones(stack, ids)
    n = len(zones) if zones is not None else len(set(ids))
    if n < 2:
        return f"covers {n} availability zone(s)"
    for sid in ids:
        sub = resolve(stack, sid, [T.SUBNET])
        if sub is not None and is_true(sub.inputs.get("mapPublicIpOnLaunch")):
            return f"uses public subnet {sub.name}"
    return None


@stack_rule("DEPLOY-RDS-SUBNET-AZS", "DB subnet groups span at least two AZs", types=[T.RDS_SUBNET_GROUP],
            source="deploy", fix="list private subnets of two or more AZs")
def rds_subnet_group(stack: StackRecords) -> Found:
    for g in stack.of_type(T.RDS_SUBNET_GROUP):
        problem = _subnet_problem(stack, g.inputs.get("subnetIds"))
        if problem:
            yield g, problem


@stack_rule("DEPLOY-RDS-PROXY-SUBNETS", "Proxy: private subnets in two AZs; no username with SECRETS auth",
            types=[T.RDS_PROXY], source="deploy",
            fix="give vpc_subnet_ids of >= 2 private AZs and leave auths[].username unset")
def proxy_subnets(stack: StackRecords) -> Found:
    for p in stack.of_type(T.RDS_PROXY):
        problem = _subnet_problem(stack, p.inputs.get("vpcSubnetIds"))
        if problem:
            yield p, problem
        for a in as_list(p.inputs.get("auths")):
            if isinstance(a, dict) and a.get("authScheme", "SECRETS") in ("SECRETS", MISSING) and a.get("username"):
                yield p, "sets username with the SECRETS auth scheme"


@stack_rule("DEPLOY-RDS-PROXY-SECRET", "Proxy secret is JSON username/password; targets registered",
            types=[T.RDS_PROXY], source="deploy",
            fix="store {\"username\",\"password\"} JSON in the auth secret, set role_arn, and register the DB with "
                "ProxyDefaultTargetGroup + ProxyTarget")
def proxy_secret(stack: StackRecords) -> Found:
    for p in stack.of_type(T.RDS_PROXY):
        if p.inputs.get("roleArn", MISSING) is MISSING:
            yield p, "has no role to read its secret"
        for a in as_list(p.inputs.get("auths")):
            secret = resolve(stack, get(a, "secretArn"), [T.SECRET])
            if secret is None:
                continue
            for v in stack.of_type(T.SECRET_VERSION):
                if resolve(stack, v.inputs.get("secretId"), [T.SECRET], via=v) is not secret:
                    continue
                body = v.inputs.get("secretString")
                if not isinstance(body, str):
                    continue
                try:
                    parsed = json.loads(body)
                except ValueError:
                    parsed = None
                if not isinstance(parsed, dict) or not {"username", "password"} <= set(parsed):
                    yield p, f"secret {secret.name} is not JSON with username and password"
        targets = [t for t in stack.of_type(T.RDS_PROXY_TARGET)
                   if resolve(stack, t.inputs.get("dbProxyName"), [T.RDS_PROXY], via=t) is p]
        if not targets:
            yield p, "has no ProxyTarget registering the database"


# ---------------------------------------------------------------- ElastiCache

@resource_rule("ElastiCache.1", "Snapshots are kept", types=[T.REPLICATION_GROUP], stacks=PROD,
               fix="set snapshot_retention_limit >= 1")
def cache_snapshots(r: ResourceRecord, stack: str) -> Iterator[str]:
    raw = r.inputs.get("snapshotRetentionLimit", MISSING)
    if raw is not None and (num(raw) or 0) < 1:
        yield "keeps no snapshots"


@resource_rule("ElastiCache.2", "Automatic minor upgrades", types=[T.REPLICATION_GROUP],
               fix="leave auto_minor_version_upgrade True")
def cache_minor(r: ResourceRecord, stack: str) -> Iterator[str]:
    if is_false(r.inputs.get("autoMinorVersionUpgrade")):
        yield "turns minor upgrades off"


@resource_rule("ElastiCache.3", "Automatic failover across AZs", types=[T.REPLICATION_GROUP], stacks=PROD,
               fix="set automatic_failover_enabled=True, multi_az_enabled=True, num_cache_clusters>=2")
def cache_failover(r: ResourceRecord, stack: str) -> Iterator[str]:
    yield from _flag(r, "automaticFailoverEnabled", "automatic failover")
    yield from _flag(r, "multiAzEnabled", "multi-AZ")


@resource_rule("ElastiCache.4", "Encrypted at rest", types=[T.REPLICATION_GROUP],
               fix="set at_rest_encryption_enabled=True")
def cache_at_rest(r: ResourceRecord, stack: str) -> Iterator[str]:
    yield from _flag(r, "atRestEncryptionEnabled", "encryption at rest")


@resource_rule("CKV_AWS_191", "Encrypted at rest with a customer-managed key", types=[T.REPLICATION_GROUP],
               fix="set kms_key_id=<CMK ARN> with at_rest_encryption_enabled=True")
def cache_cmk(r: ResourceRecord, stack: str) -> Iterator[str]:
    if not is_false(r.inputs.get("atRestEncryptionEnabled")):  # off entirely: ElastiCache.4 reports it
        yield from _customer_key(r, "kmsKeyId", "encryption at rest")


@resource_rule("ElastiCache.5", "Encrypted in transit", types=[T.REPLICATION_GROUP],
               fix="set transit_encryption_enabled=True")
def cache_in_transit(r: ResourceRecord, stack: str) -> Iterator[str]:
    yield from _flag(r, "transitEncryptionEnabled", "encryption in transit")


@resource_rule("ElastiCache.6", "Clients authenticate (AUTH token or RBAC user group)", types=[T.REPLICATION_GROUP],
               fix="set auth_token (from a secret) or user_group_ids, with transit encryption")
def cache_auth(r: ResourceRecord, stack: str) -> Iterator[str]:
    token, groups = r.inputs.get("authToken", MISSING), r.inputs.get("userGroupIds", MISSING)
    if token is None or groups is None:
        return
    if not token and not as_list(groups):
        yield "has neither auth_token nor user_group_ids"


@resource_rule("ElastiCache.7", "Own subnet group", types=[T.REPLICATION_GROUP],
               fix="set subnet_group_name=<elasticache.SubnetGroup of private subnets>")
def cache_subnet_group(r: ResourceRecord, stack: str) -> Iterator[str]:
    name = r.inputs.get("subnetGroupName", MISSING)
    if name is MISSING or name == "default":
        yield "uses the default subnet group"


@resource_rule("DEPLOY-ELASTICACHE-AUTH", "AUTH token: transit encryption on; 16-128 chars without @ \" /",
               types=[T.REPLICATION_GROUP], source="deploy",
               fix="enable transit encryption and generate a 16-128 character token without @ \" / (override_special)")
def cache_token(r: ResourceRecord, stack: str) -> Iterator[str]:
    token = r.inputs.get("authToken", MISSING)
    if token is MISSING or token is None:
        return
    if not is_true(r.inputs.get("transitEncryptionEnabled")) and r.inputs.get("transitEncryptionEnabled") is not None:
        yield "sets auth_token without transit encryption"
    if isinstance(token, str):
        if not 16 <= len(token) <= 128:
            yield f"auth token is {len(token)} characters"
        if any(c in '@"/' or not 32 < ord(c) < 127 for c in token):
            yield "auth token has a character ElastiCache rejects"


@resource_rule("DEPLOY-ELASTICACHE-FAILOVER", "Failover needs >= 2 nodes; multi-AZ needs failover",
               types=[T.REPLICATION_GROUP], source="deploy",
               fix="with one node set automatic_failover_enabled and multi_az_enabled False; "
                   "otherwise num_cache_clusters>=2")
def cache_failover_shape(r: ResourceRecord, stack: str) -> Iterator[str]:
    nodes = num(r.inputs.get("numCacheClusters"))
    if r.inputs.get("numCacheClusters", MISSING) is MISSING and r.inputs.get("numNodeGroups", MISSING) is MISSING:
        nodes = 1
    failover, multi_az = r.inputs.get("automaticFailoverEnabled"), r.inputs.get("multiAzEnabled")
    if is_true(failover) and nodes is not None and nodes < 2:
        yield f"automatic failover with {nodes:g} node(s)"
    if is_true(multi_az) and is_false(failover) or (is_true(multi_az) and failover is MISSING):
        yield "multi-AZ without automatic failover"


def url_password(value: str) -> str | None:
    """The password inside ``scheme://user:password@host`` URLs, if any."""
    if "://" not in value or "@" not in value:
        return None
    try:
        return urlparse(value).password
    except ValueError:
        return None


# ---------------------------------------------------------------- cost


@stack_rule("COST-BUDGET", "The stack's fixed monthly cost stays within its configured budget",
            types=["pulumi:pulumi:Stack"], severity=ADVISORY,
            fix="cut the largest fixed lines (the plan's Cost section lists them) or raise costs.fixedBudgetUsd")
def fixed_cost_budget(stack: StackRecords) -> Iterator[tuple[ResourceRecord | None, str]]:
    """Advisory only: the estimate counts priced lines, so it is a floor of what AWS will bill."""
    from infra.costs import estimate, stack_cost_config  # the price table is read only when the rule runs

    budget = stack_cost_config(stack.stack).fixed_budget_usd
    if budget is None:
        return
    est = estimate(stack)
    fixed = est.total(fixed=True)
    if fixed > budget:
        top = sorted((line for line in est.lines if line.fixed and line.monthly), key=lambda line: -(line.monthly or 0))
        biggest = ", ".join(f"{line.resource} ${line.monthly:,.2f}" for line in top[:3])
        unpriced = len(est.unpriced(fixed=True))
        yield None, (f"fixed cost ${fixed:,.2f}/month exceeds the budget ${budget:,}"
                     f"{f' (and {unpriced} fixed lines are unpriced)' if unpriced else ''}; largest: {biggest}")
