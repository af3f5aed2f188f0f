"""A private OpenSearch domain with fine-grained access control, encryption everywhere, logs and health alarms."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components._options import child, stateful
from components.alarms import AlarmSpec, metric_alarm
from components.network import Network
from components.secrets import SecretSettings, create_secret, grant_secret_read
from infra import iam
from infra.config import SearchConfig

MASTER_USER = "macrouser"
TLS_POLICY = "Policy-Min-TLS-1-2-PFS-2023-10"
# Characters OpenSearch accepts in an internal user's password; one of each class is required.
PASSWORD_SPECIALS = "!#$%^&*()-_=+[]{}<>?"
LOG_TYPES = {"INDEX_SLOW_LOGS": "index-slow", "SEARCH_SLOW_LOGS": "search-slow", "ES_APPLICATION_LOGS": "application",
             "AUDIT_LOGS": "audit"}
HTTP_ACTIONS = ["es:ESHttpDelete", "es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPatch", "es:ESHttpPost",
                "es:ESHttpPut"]


@dataclass(frozen=True, kw_only=True)
class SearchDomainArgs:
    domain_name: str
    """3-28 characters of a-z, 0-9 and '-', starting with a letter."""
    account_id: pulumi.Input[str]
    region: str
    network: Network
    allowed_from: Sequence[aws.ec2.SecurityGroup] = ()
    """Security groups whose members may reach HTTPS (443)."""
    settings: SearchConfig = SearchConfig()
    """Engine, instance type, data nodes over ``zone_count`` zones (1 = no zone awareness and exactly one subnet),
    dedicated masters, EBS size: the stack's ``search`` section (its defaults are the production-shaped ones)."""
    log_retention_days: int = 365
    log_kms_key_arn: pulumi.Input[str] | None = None
    """Customer-managed key of the log groups (CKV_AWS_158)."""
    kms_key_arn: pulumi.Input[str] | None = None
    """Customer-managed key of the data at rest (CKV_AWS_247); ``None`` = the AWS-managed ``aws/es`` key."""
    secrets: SecretSettings
    alarm_topic_arn: pulumi.Input[str]
    free_storage_alarm_mb: int = 20480
    jvm_pressure_alarm_percent: int = 80
    protect: bool = False

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9-]{2,27}", self.domain_name):
            raise ValueError(f"OpenSearch domain name {self.domain_name!r} must be 3-28 of a-z0-9- starting a-z")
        if self.settings.zone_count > 1 and self.settings.data_nodes % self.settings.zone_count:
            raise ValueError(f"{self.domain_name}: {self.settings.data_nodes} data nodes do not spread over "
                             f"{self.settings.zone_count} zones")


SERVICE_LINKED_ROLE = "AWSServiceRoleForAmazonOpenSearchService"


def _service_linked_role_exists() -> bool:
    roles = aws.iam.get_roles(name_regex=f"^{SERVICE_LINKED_ROLE}$", path_prefix="/aws-service-role/")
    return SERVICE_LINKED_ROLE in (roles.names or [])


class SearchDomain(pulumi.ComponentResource):
    domain: aws.opensearch.Domain
    security_group: aws.ec2.SecurityGroup
    master_password_secret: aws.secretsmanager.Secret

    def __init__(self, name: str, args: SearchDomainArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("macro:search:SearchDomain", name, None, opts)
        self._name = name
        self.args = args
        zone_aware = args.settings.zone_count > 1
        subnets = args.network.private_subnet_ids[: args.settings.zone_count]

        self.security_group = args.network.security_group(
            f"{name}-sg", description=f"HTTPS to the {args.domain_name} OpenSearch domain from named groups only",
            port=443, allowed_from=args.allowed_from, parent=self)

        self.master_password = random.RandomPassword(
            f"{name}-master-password", length=32, special=True, override_special=PASSWORD_SPECIALS,
            min_upper=2, min_lower=2, min_numeric=2, min_special=2, opts=child(self))
        self.master_password_secret = create_secret(
            self, f"{name}-master-password-secret", args.secrets, key="opensearch_password_key",
            description=f"Master user {MASTER_USER} of the {args.domain_name} OpenSearch domain",
            value=self.master_password.result)

        log_groups = {
            log_type: aws.cloudwatch.LogGroup(
                f"{name}-{suffix}-logs", name=f"/aws/opensearch/{args.domain_name}/{suffix}",
                retention_in_days=args.log_retention_days, kms_key_id=args.log_kms_key_arn, opts=child(self))
            for log_type, suffix in LOG_TYPES.items()
        }
        log_policy = aws.cloudwatch.LogResourcePolicy(
            f"{name}-log-policy", policy_name=f"{args.domain_name}-opensearch-logs",
            policy_document=iam.document([{
                "Sid": "OpenSearchWritesLogs", "Effect": "Allow", "Principal": {"Service": "es.amazonaws.com"},
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": [pulumi.Output.concat(g.arn, ":*") for g in log_groups.values()],
                "Condition": {"StringEquals": {"aws:SourceAccount": args.account_id}},
            }]), opts=child(self))

        depends: list[pulumi.Resource] = [log_policy]
        if not _service_linked_role_exists():
            # A VPC domain needs this account-wide role (deploy rule 24), and creating it fails once it exists. The
            # first stack deployed into an account creates it; it is kept when that stack goes (other stacks' domains
            # use it), and from the next `up` on the program sees it and no longer declares it (Pulumi then forgets
            # it without deleting it).
            depends.append(aws.iam.ServiceLinkedRole(
                f"{name}-service-linked-role", aws_service_name="opensearchservice.amazonaws.com",
                opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True)))

        domain_arn = pulumi.Output.concat("arn:aws:es:", args.region, ":", args.account_id, ":domain/",
                                          args.domain_name)
        # Fine-grained access control with the internal user database authenticates every request as macrouser or
        # another internal user (HTTP basic auth). An access policy that names IAM principals would refuse those
        # unsigned requests at the edge, so the policy admits any principal, for HTTP actions on this domain only,
        # and the domain is reachable only inside the VPC from the named security groups (rule Opensearch.ACCESS).
        access_policy = iam.document([{
            "Sid": "HttpThroughFineGrainedAccessControl", "Effect": "Allow", "Principal": {"AWS": "*"},
            "Action": HTTP_ACTIONS, "Resource": pulumi.Output.concat(domain_arn, "/*"),
        }])

        self.domain = aws.opensearch.Domain(
            f"{name}-domain", domain_name=args.domain_name, engine_version=args.settings.engine_version,
            cluster_config={
                "instance_type": args.settings.instance_type, "instance_count": args.settings.data_nodes,
                "zone_awareness_enabled": zone_aware,
                "zone_awareness_config": {"availability_zone_count": args.settings.zone_count} if zone_aware else None,
                "dedicated_master_enabled": args.settings.dedicated_masters,
                "dedicated_master_type": args.settings.master_type if args.settings.dedicated_masters else None,
                "dedicated_master_count": args.settings.master_count if args.settings.dedicated_masters else None,
            },
            ebs_options={"ebs_enabled": True, "volume_type": "gp3", "volume_size": args.settings.ebs_size_gb},
            vpc_options={"subnet_ids": subnets, "security_group_ids": [self.security_group.id]},
            encrypt_at_rest={"enabled": True, "kms_key_id": args.kms_key_arn},
            node_to_node_encryption={"enabled": True},
            domain_endpoint_options={"enforce_https": True, "tls_security_policy": TLS_POLICY},
            advanced_security_options={
                "enabled": True, "internal_user_database_enabled": True, "anonymous_auth_enabled": False,
                "master_user_options": {"master_user_name": MASTER_USER,
                                        "master_user_password": self.master_password.result},
            },
            # AWS's default, stated so a domain created with "false" is reset: "false" refuses _bulk, _mget and
            # _msearch that name an index in the body (how most clients index); FGAC already authorises per index.
            advanced_options={"rest.action.multi.allow_explicit_index": "true"},
            software_update_options={"auto_software_update_enabled": True},
            snapshot_options={"automated_snapshot_start_hour": 3},
            access_policies=access_policy,
            log_publishing_options=[{"log_type": t, "cloudwatch_log_group_arn": g.arn, "enabled": True}
                                    for t, g in log_groups.items()],
            opts=stateful(self, args.protect, depends_on=depends))

        dims = {"DomainName": self.domain.domain_name, "ClientId": args.account_id}
        topic = args.alarm_topic_arn
        specs = [
            ("red", "ClusterStatus.red", 1, "GreaterThanOrEqualToThreshold", "a primary shard is unassigned"),
            ("snapshot", "AutomatedSnapshotFailure", 1, "GreaterThanOrEqualToThreshold",
             "the automated snapshot failed"),
            ("jvm", "JVMMemoryPressure", args.jvm_pressure_alarm_percent, "GreaterThanOrEqualToThreshold",
             "JVM memory pressure is high"),
        ]
        if args.settings.data_nodes > 1:  # a single node can never place replicas: yellow would never clear
            specs.append(("yellow", "ClusterStatus.yellow", 1, "GreaterThanOrEqualToThreshold",
                          "a replica shard is unassigned"))
        self.alarms = [
            metric_alarm(self, f"{name}-{key}-alarm", AlarmSpec(
                name=f"{args.domain_name}-{key}", description=f"{args.domain_name}: {text}.", namespace="AWS/ES",
                metric=metric, dimensions=dims, threshold=threshold, comparison=comparison, statistic="Maximum",
                period=60, evaluation_periods=1 if key in ("red", "snapshot") else 5), topic)
            for key, metric, threshold, comparison, text in specs
        ]
        self.alarms.append(metric_alarm(self, f"{name}-storage-alarm", AlarmSpec(
            name=f"{args.domain_name}-free-storage", description=f"{args.domain_name}: a node is low on storage.",
            namespace="AWS/ES", metric="FreeStorageSpace", dimensions=dims, threshold=args.free_storage_alarm_mb,
            comparison="LessThanOrEqualToThreshold", statistic="Minimum", period=60, evaluation_periods=1), topic))

        self.register_outputs({"endpoint": self.domain.endpoint, "domain_arn": self.domain.arn,
                               "master_password_secret_arn": self.master_password_secret.arn})

    def grant_http(self, grants: iam.Grants) -> None:
        """HTTP access to the domain as ``macrouser`` (the seed's model: the password from Secrets Manager), plus the
        IAM actions for SigV4-signed requests once a role is mapped inside the domain."""
        grants.allow(f"query {self.args.domain_name}", HTTP_ACTIONS,
                     [pulumi.Output.concat(self.domain.arn, "/*")])
        grant_secret_read(grants, self.master_password_secret.arn, "opensearch master password", self.args.secrets)
