"""A private, encrypted, TLS-only PostgreSQL instance with generated credentials in Secrets Manager, optionally behind
an RDS Proxy; the connection URLs services use are secrets too."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components._options import child, stateful
from components.alarms import AlarmSpec, metric_alarm
from components.encryption_keys import grant_decrypt
from components.network import Network
from components.secrets import SecretSettings, create_secret, grant_secret_read
from infra import capacity, iam
from infra.config import DatabaseConfig

PORT = 5432
# Printable ASCII RDS accepts in a master password: everything but '/', '@', '"' and space (deploy rule 25).
PASSWORD_SPECIALS = "!#$%^&*()-_=+[]{}<>:?.,;~"
CA_CERTIFICATE = "rds-ca-rsa2048-g1"
PROXY_MAX_CONNECTIONS_PERCENT = 90


@dataclass(frozen=True, kw_only=True)
class DatabaseAlarmThresholds:
    cpu_percent: int = 80
    free_storage_gb: int = 5
    connections: int = 200


@dataclass(frozen=True, kw_only=True)
class MacroDatabaseArgs:
    identifier: str
    """Instance identifier base: the instance is ``{identifier}-{stack}``."""
    stack: str
    db_name: str
    """The database RDS creates (letters, digits, '_', letter first)."""
    network: Network
    secrets: SecretSettings
    alarm_topic_arn: pulumi.Input[str]
    url_secret_key: str | None = None
    """Seed secret key holding the direct connection URL (``macro_db_secret_key`` for MacroDB)."""
    proxy_url_secret_key: str | None = None
    """Seed secret key holding the proxy connection URL (``macro_db_proxy_secret_key``)."""
    allowed_from: Sequence[aws.ec2.SecurityGroup] = ()
    """Security groups whose members may connect (5432), to the proxy and the instance."""
    username: str = "macrouser"
    settings: DatabaseConfig = DatabaseConfig()
    """Engine, size, availability, backups, deletion protection and proxy: the stack's ``database`` section (its
    defaults are the production-shaped ones)."""
    log_retention_days: int = 365
    log_kms_key_arn: pulumi.Input[str] | None = None
    """Customer-managed key of the log groups (CKV_AWS_158)."""
    performance_insights_kms_key_arn: pulumi.Input[str] | None = None
    """Customer-managed key of Performance Insights (CKV_AWS_354), used only when PI is on."""
    thresholds: DatabaseAlarmThresholds = DatabaseAlarmThresholds()
    rotated: bool = False
    """The credentials rotate (see :meth:`MacroDatabase.rotate_with`). The program then stores no value in the
    credentials and URL secrets at all (the rotation's first run seeds them from the instance) and never writes the
    instance's password after creation: nothing Pulumi manages holds a credential it could write back."""
    connection_borrow_timeout_seconds: int = 120
    """How long the proxy lets a client wait for a pooled connection; derive it from the shortest consumer's timeout
    (a client that waits longer than it may run is killed holding its request)."""
    protect: bool = False

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-zA-Z][a-zA-Z0-9_]{0,62}", self.db_name):
            raise ValueError(f"database name {self.db_name!r}: letters, digits and '_', starting with a letter")
        if not re.fullmatch(r"[a-zA-Z][a-zA-Z0-9_]{0,15}", self.username) or self.username in (
                "admin", "rdsadmin", "postgres") or self.username.startswith("pg_"):
            raise ValueError(f"database user {self.username!r} is reserved or malformed (deploy rule 26, RDS.25)")


class MacroDatabase(pulumi.ComponentResource):
    instance: aws.rds.Instance
    security_group: aws.ec2.SecurityGroup
    credentials_secret: aws.secretsmanager.Secret
    url_secret: aws.secretsmanager.Secret | None
    proxy: aws.rds.Proxy | None
    proxy_url_secret: aws.secretsmanager.Secret | None

    def __init__(self, name: str, args: MacroDatabaseArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("macro:database:MacroDatabase", name, None, opts)
        self._name = name
        self.args = args
        net = args.network
        identifier = f"{args.identifier}-{args.stack}"
        self.identifier = identifier
        db = args.settings
        major = db.engine_version.split(".")[0]

        self.proxy_security_group = None
        if db.proxy:
            self.proxy_security_group = net.security_group(
                f"{name}-proxy-sg", description=f"PostgreSQL to the {identifier} proxy from named groups only",
                port=PORT, allowed_from=args.allowed_from, parent=self)
        sources = [*args.allowed_from, *([self.proxy_security_group] if self.proxy_security_group else [])]
        self.security_group = net.security_group(
            f"{name}-sg", description=f"PostgreSQL to {identifier} from named groups only", port=PORT,
            allowed_from=sources, parent=self)
        if self.proxy_security_group is not None:
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-proxy-egress", security_group_id=self.proxy_security_group.id, ip_protocol="tcp",
                from_port=PORT, to_port=PORT, referenced_security_group_id=self.security_group.id,
                description=f"proxy to {identifier}", opts=child(self))

        subnet_group = aws.rds.SubnetGroup(f"{name}-subnets", name=identifier, subnet_ids=net.private_subnet_ids,
                                           description=f"Private subnets of {identifier}", opts=child(self))
        parameters = aws.rds.ParameterGroup(
            f"{name}-parameters", name=f"{identifier}-pg{major}", family=f"postgres{major}",
            description=f"{identifier}: TLS only, slow queries logged",
            # pending-reboot is accepted for static and dynamic parameters alike (immediate fails on a static one);
            # on a new instance the group applies at creation either way.
            parameters=[{"name": "rds.force_ssl", "value": "1", "apply_method": "pending-reboot"},
                        {"name": "log_min_duration_statement", "value": "1000"}], opts=child(self))

        self.password = random.RandomPassword(
            f"{name}-master-password", length=32, special=True, override_special=PASSWORD_SPECIALS, min_upper=2,
            min_lower=2, min_numeric=2, min_special=1, opts=child(self))

        for log in ("postgresql", "upgrade"):
            aws.cloudwatch.LogGroup(f"{name}-{log}-logs", name=f"/aws/rds/instance/{identifier}/{log}",
                                    retention_in_days=args.log_retention_days, kms_key_id=args.log_kms_key_arn,
                                    opts=child(self))

        monitoring_role = None
        if db.monitoring_interval:
            monitoring_role = aws.iam.Role(
                f"{name}-monitoring-role", name=f"{identifier}-monitoring",
                assume_role_policy=iam.assume_role_policy("monitoring.rds.amazonaws.com"), opts=child(self))
            aws.iam.RolePolicyAttachment(
                f"{name}-monitoring-policy", role=monitoring_role.name,
                policy_arn="arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole", opts=child(self))

        self.instance = aws.rds.Instance(
            f"{name}-instance", identifier=identifier, engine="postgres", engine_version=db.engine_version,
            instance_class=db.instance_class, allocated_storage=db.allocated_storage_gb,
            max_allocated_storage=db.max_allocated_storage_gb, storage_type="gp3", storage_encrypted=True,
            db_name=args.db_name, username=args.username, password=self.password.result, port=PORT,
            db_subnet_group_name=subnet_group.name, vpc_security_group_ids=[self.security_group.id],
            parameter_group_name=parameters.name, publicly_accessible=False, multi_az=db.multi_az,
            backup_retention_period=db.backup_retention_days, backup_window="03:00-04:00",
            maintenance_window="mon:07:30-mon:08:30", deletion_protection=db.deletion_protection,
            skip_final_snapshot=not db.final_snapshot,
            final_snapshot_identifier=f"{identifier}-final" if db.final_snapshot else None,
            copy_tags_to_snapshot=True, auto_minor_version_upgrade=True,
            performance_insights_enabled=db.performance_insights,
            performance_insights_retention_period=7 if db.performance_insights else None,
            performance_insights_kms_key_id=args.performance_insights_kms_key_arn if db.performance_insights else None,
            enabled_cloudwatch_logs_exports=["postgresql", "upgrade"], iam_database_authentication_enabled=True,
            ca_cert_identifier=CA_CERTIFICATE, monitoring_interval=db.monitoring_interval,
            monitoring_role_arn=monitoring_role.arn if monitoring_role else None, apply_immediately=False,
            opts=stateful(self, args.protect, ignore_changes=["password"] if args.rotated else ()))

        # Rotated credentials: no SecretVersion at all. A version Pulumi manages would, once rotations have moved its
        # stages away and Secrets Manager has dropped it, vanish from state at the next refresh and be re-created as
        # AWSCURRENT with the first password. The rotation's first run writes every value instead.
        credentials = None if args.rotated else pulumi.Output.all(self.password.result, self.instance.address).apply(
            lambda v: json.dumps({"username": args.username, "password": v[0], "engine": "postgres",
                                  "host": v[1], "port": PORT, "dbname": args.db_name}))
        self.credentials_secret = create_secret(
            self, f"{name}-credentials", args.secrets, key=f"{args.identifier.replace('-', '_')}_credentials",
            description=f"Master credentials of {identifier} (JSON: username, password, engine, host, port, dbname)",
            value=credentials)

        self.url_secret = None
        if args.url_secret_key:
            self.url_secret = create_secret(
                self, f"{name}-url", args.secrets, key=args.url_secret_key,
                description=f"Direct connection URL of {identifier} (DATABASE_URL)",
                value=None if args.rotated else _url(args, self.password.result, self.instance.address))

        self.proxy = None
        self.proxy_url_secret = None
        self.proxy_target: aws.rds.ProxyTarget | None = None
        if db.proxy:
            self._build_proxy(name, identifier, net)

        self._alarms(name, identifier)
        self.register_outputs({
            "address": self.instance.address, "credentials_secret_arn": self.credentials_secret.arn,
            "proxy_endpoint": self.proxy.endpoint if self.proxy else None,
        })

    def _build_proxy(self, name: str, identifier: str, net: Network) -> None:
        """The proxy reads only the credentials secret, requires TLS and sits in the same private subnets."""
        args = self.args
        role = aws.iam.Role(f"{name}-proxy-role", name=f"{identifier}-proxy",
                            assume_role_policy=iam.assume_role_policy("rds.amazonaws.com"), opts=child(self))
        grants = iam.Grants(f"{name}-proxy-role")
        grants.allow("read database credentials", ["secretsmanager:GetSecretValue"], [self.credentials_secret.arn])
        if args.secrets.kms_key_arn is not None:
            grant_decrypt(grants, args.secrets.kms_key_arn, "secretsmanager", args.secrets.region, "secrets")
        policy = aws.iam.RolePolicy(f"{name}-proxy-policy", role=role.id, policy=grants.document(),
                                    opts=child(self))
        assert self.proxy_security_group is not None
        self.proxy = aws.rds.Proxy(
            f"{name}-proxy", name=f"{identifier}-proxy", engine_family="POSTGRESQL", require_tls=True,
            role_arn=role.arn, vpc_subnet_ids=net.private_subnet_ids,
            vpc_security_group_ids=[self.proxy_security_group.id], idle_client_timeout=1800,
            auths=[{"auth_scheme": "SECRETS", "secret_arn": self.credentials_secret.arn, "iam_auth": "DISABLED",
                    "client_password_auth_type": "POSTGRES_SCRAM_SHA_256", "description": "master credentials"}],
            opts=child(self, depends_on=[policy]))
        target_group = aws.rds.ProxyDefaultTargetGroup(
            f"{name}-proxy-target-group", db_proxy_name=self.proxy.name,
            connection_pool_config={"max_connections_percent": PROXY_MAX_CONNECTIONS_PERCENT,
                                    "max_idle_connections_percent": 50,
                                    "connection_borrow_timeout": args.connection_borrow_timeout_seconds},
            opts=child(self))
        self.proxy_target = aws.rds.ProxyTarget(
            f"{name}-proxy-target", db_proxy_name=self.proxy.name, target_group_name=target_group.name,
            db_instance_identifier=self.instance.identifier, opts=child(self))
        if args.proxy_url_secret_key:
            self.proxy_url_secret = create_secret(
                self, f"{name}-proxy-url", args.secrets, key=args.proxy_url_secret_key,
                description=f"Connection URL of {identifier} through its RDS Proxy (DATABASE_URL_PROXY)",
                value=None if args.rotated else _url(args, self.password.result, self.proxy.endpoint))

    def _alarms(self, name: str, identifier: str) -> None:
        t = self.args.thresholds
        dims = {"DBInstanceIdentifier": self.instance.identifier}
        topic = self.args.alarm_topic_arn
        self.alarms = [
            metric_alarm(self, f"{name}-cpu-alarm", AlarmSpec(
                name=f"{identifier}-cpu", description=f"{identifier}: CPU above {t.cpu_percent}% for 15 minutes.",
                namespace="AWS/RDS", metric="CPUUtilization", statistic="Average", dimensions=dims,
                threshold=t.cpu_percent, period=300, evaluation_periods=3), topic),
            metric_alarm(self, f"{name}-storage-alarm", AlarmSpec(
                name=f"{identifier}-free-storage", description=f"{identifier}: under {t.free_storage_gb} GB free.",
                namespace="AWS/RDS", metric="FreeStorageSpace", statistic="Minimum", dimensions=dims,
                threshold=t.free_storage_gb * 1024**3, comparison="LessThanThreshold", period=300), topic),
            metric_alarm(self, f"{name}-connections-alarm", AlarmSpec(
                name=f"{identifier}-connections", description=f"{identifier}: over {t.connections} connections.",
                namespace="AWS/RDS", metric="DatabaseConnections", statistic="Maximum", dimensions=dims,
                threshold=t.connections, period=300, evaluation_periods=2), topic),
        ]

    def rotation_environment(self) -> dict[str, pulumi.Input[str]]:
        """The rotation function's environment: ``URL_SECRETS`` (each URL secret's ARN and the host its URL names),
        ``DB_INSTANCE_IDENTIFIER`` (the instance its first run describes and sets the password of) and
        ``DATABASE_CA_BUNDLE``, empty: no RDS CA bundle is shipped, so ``sslmode=require`` encrypts without verifying
        the instance's certificate (a bundle's path in the artifact would go here)."""
        pairs = [(self.url_secret, self.instance.address)] if self.url_secret else []
        if self.proxy is not None and self.proxy_url_secret is not None:
            pairs.append((self.proxy_url_secret, self.proxy.endpoint))
        return {"URL_SECRETS": pulumi.Output.json_dumps({secret.arn: host for secret, host in pairs}),
                "DB_INSTANCE_IDENTIFIER": self.instance.identifier, "DATABASE_CA_BUNDLE": ""}

    def grant_rotate(self, grants: iam.Grants) -> None:
        """What the credentials rotation function needs: stage new credentials, rewrite the URLs, use the key."""
        grants.allow(f"rotate {self.identifier} credentials",
                     ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue",
                      "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage"],
                     [self.credentials_secret.arn])
        urls = [s.arn for s in (self.url_secret, self.proxy_url_secret) if s is not None]
        if urls:
            grants.allow(f"rewrite {self.identifier} urls",
                         ["secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"], urls)
        # Seeding (first run only): read the instance's endpoint and user, set its master password. The function is
        # the holder of the master credentials anyway; ModifyDBInstance has no condition key narrowing it further.
        grants.allow(f"seed {self.identifier} credentials", ["rds:DescribeDBInstances", "rds:ModifyDBInstance"],
                     [self.instance.arn])
        # GetRandomPassword has no resource type: "*" is the only resource AWS accepts.
        grants.allow("generate passwords", ["secretsmanager:GetRandomPassword"], ["*"])
        if self.args.secrets.kms_key_arn is not None:
            grants.allow("encrypt secrets", ["kms:Decrypt", "kms:GenerateDataKey"], [self.args.secrets.kms_key_arn],
                         {"StringEquals": {"kms:ViaService":
                                           f"secretsmanager.{self.args.secrets.region}.amazonaws.com"}})

    def rotate_with(self, function_arn: pulumi.Input[str], permission: pulumi.Resource,
                    days: int) -> aws.secretsmanager.SecretRotation:
        """Rotate the credentials every ``days`` with the rotation function (after its invoke permission)."""
        if not self.args.rotated:
            raise ValueError(f"{self._name}: set rotated=True so Pulumi does not undo rotations")
        # Rotation starts at once, seeding the empty secrets: the instance must exist (its description is the
        # seed). The URL secrets exist before the function, whose environment names them.
        return aws.secretsmanager.SecretRotation(
            f"{self._name}-credentials-rotation", secret_id=self.credentials_secret.id,
            rotation_lambda_arn=function_arn, rotation_rules={"automatically_after_days": days},
            opts=child(self, depends_on=[permission, self.instance]))

    @property
    def function_connection_budget(self) -> int:
        """Connections the data plane's SQS consumers may hold together through the proxy (``infra.capacity``)."""
        return capacity.function_connection_budget(self.args.settings.instance_class, PROXY_MAX_CONNECTIONS_PERCENT)

    @property
    def client_url_secret(self) -> aws.secretsmanager.Secret:
        """The URL clients should use: through the proxy when there is one."""
        secret = self.proxy_url_secret or self.url_secret
        if secret is None:
            raise ValueError(f"{self._name}: no URL secret was requested")
        return secret

    def grant_connect(self, grants: iam.Grants) -> None:
        """Read the URL secret clients connect with (network reach comes from ``allowed_from``)."""
        grant_secret_read(grants, self.client_url_secret.arn, f"{self.identifier} connection URL",
                          self.args.secrets)


def _url(args: MacroDatabaseArgs, password: pulumi.Output[str], host: pulumi.Input[str]) -> pulumi.Output[str]:
    return pulumi.Output.all(password, host).apply(
        lambda v: f"postgresql://{args.username}:{quote(v[0], safe='')}@{v[1]}:{PORT}/{args.db_name}?sslmode=require")
