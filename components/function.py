"""A Lambda function of the data plane with its own least-privilege role, log group, alarms and triggers.

Order matters at deploy time, so it is encoded here: the log group exists before the function (else Lambda creates it
without retention), the role's policy and the VPC ENI permissions are attached before the function, and the policy
that lets it read its queue exists before the event source mapping (deploy rules 1, 4, 6, 10).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components._options import child
from components.alarms import AlarmSpec, function_alarms, metric_alarm
from components.queue_with_dlq import QueueWithDLQ
from components.secrets import SecretSettings, grant_secret_read
from infra import artifacts, iam
from infra.config import FunctionSettings

RUNTIME = "python3.13"
ARCHITECTURE = "arm64"
RESERVED_ENV = ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                "AWS_EXECUTION_ENV", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME",
                "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
                "_HANDLER", "_X_AMZN_TRACE_ID")

Grant = Callable[[iam.Grants], None]


class MissingArtifactsError(pulumi.RunError):
    """A real preview or update without `make build`: each function would otherwise fail on its own ("failed to
    compute archive hash") after other resources were already changed."""


def require_artifacts() -> None:
    """Call before the first resource. A real run stops with one error naming every missing artifact; a stale one is
    one warning. Under the offline plan (which reads no artifact) nothing is raised: the plan reports both itself."""
    if artifacts.in_offline_evaluation():
        return
    missing = artifacts.missing_artifacts()
    if missing:
        raise MissingArtifactsError(f"{artifacts.missing_message(missing)} before pulumi preview/up, which deploy "
                                    "these zips")
    stale = artifacts.stale_artifacts()
    if stale:
        pulumi.log.warn(artifacts.stale_message(stale))


@dataclass(frozen=True, kw_only=True)
class VpcPlacement:
    subnet_ids: Sequence[pulumi.Input[str]]
    security_group: aws.ec2.SecurityGroup
    """The group data stores admit; shared by the data plane's VPC functions."""
    region: str
    account_id: pulumi.Input[str]
    """Where the functions' network interfaces live (their ENI permissions are scoped to this account and region)."""


@dataclass(frozen=True, kw_only=True)
class FunctionArgs:
    function: str
    """Folder under ``lambdas/``; the handler is ``{function}.handler.handler``."""
    stack: str
    settings: FunctionSettings
    log_retention_days: int
    log_kms_key_arn: pulumi.Input[str] | None = None
    """Customer-managed key of the log groups (CKV_AWS_158)."""
    alarm_topic_arn: pulumi.Input[str]
    environment: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Names, URLs and limits only; secrets go in ``secret_arns``."""
    secret_arns: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Env var name → secret ARN; the handler fetches the value at cold start, and the role may read just these."""
    access: Sequence[Grant] = ()
    """Grant helpers of other components, e.g. ``lambda g: documents.grant_read(g)``."""
    consumes: QueueWithDLQ | None = None
    """The queue this function consumes through an event source mapping (ReportBatchItemFailures)."""
    max_concurrency: int | None = None
    """Cap on the mapping's concurrent invocations (2-1000), so the queue cannot drain the database's connections;
    size it with ``infra.capacity.consumer_concurrency``."""
    asynchronous: bool = False
    """Invoked asynchronously (S3, SNS, EventBridge): failed events go to an on-failure queue after two retries."""
    vpc: VpcPlacement | None = None
    ephemeral_storage_mb: int = 512
    """``/tmp`` size (512-10240 MB): functions that stream whole archives to disk need more."""
    tracing: bool = True
    duration_alarm_percent: int = 80
    secret_settings: SecretSettings | None = None
    """How the platform's secrets are encrypted, so reading ``secret_arns`` includes the key."""
    kms_key_arn: pulumi.Input[str] | None = None
    """Customer-managed key encrypting the environment at rest (CKV_AWS_173); it holds no secrets either way."""


class Function(pulumi.ComponentResource):
    function: aws.lambda_.Function
    role: aws.iam.Role
    log_group: aws.cloudwatch.LogGroup
    mapping: aws.lambda_.EventSourceMapping | None
    failure_queue: aws.sqs.Queue | None

    def __init__(self, name: str, args: FunctionArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("macro:compute:Function", name, None, opts)
        self._name = name
        self.args = args
        s = args.settings
        self.function_name = f"{name}-{args.stack}"
        if not 512 <= args.ephemeral_storage_mb <= 10240:
            raise ValueError(f"{name}: ephemeral storage must be 512-10240 MB")
        if not 1 <= len(self.function_name) <= 64:
            raise ValueError(f"function name {self.function_name!r} must be 1-64 characters")
        reserved = sorted(set(args.environment) & set(RESERVED_ENV) | set(args.secret_arns) & set(RESERVED_ENV))
        if reserved:
            raise ValueError(f"{name}: environment variables {reserved} are reserved by Lambda (deploy rule 5)")
        if args.consumes is not None and args.consumes.args.visibility_timeout_seconds < s.timeout_seconds:
            raise ValueError(
                f"{name}: queue {args.consumes.queue_name} visibility {args.consumes.args.visibility_timeout_seconds}s "
                f"is below the function timeout {s.timeout_seconds}s; AWS rejects the mapping (deploy rule 1). "
                "Derive it with visibility_for_consumer()")

        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs", name=f"/aws/lambda/{self.function_name}", retention_in_days=args.log_retention_days,
            kms_key_id=args.log_kms_key_arn,
            opts=child(self))
        self.role = aws.iam.Role(f"{name}-role", name=f"{self.function_name}-role",
                                 assume_role_policy=iam.assume_role_policy("lambda.amazonaws.com"), opts=child(self))

        self.failure_queue = None
        if args.asynchronous:
            self.failure_queue = aws.sqs.Queue(
                f"{name}-failures", name=f"{self.function_name}-failed-events", sqs_managed_sse_enabled=True,
                message_retention_seconds=14 * 24 * 3600, opts=child(self))
            metric_alarm(self, f"{name}-failures-alarm", AlarmSpec(
                name=f"{self.function_name}-failed-events",
                description=f"{self.function_name} gave up on an asynchronous event; it waits in the failed-events "
                            "queue with its error.",
                namespace="AWS/SQS", metric="ApproximateNumberOfMessagesVisible",
                dimensions={"QueueName": self.failure_queue.name}, threshold=0), args.alarm_topic_arn)

        self.grants = iam.Grants(name)
        self._grant_basics()
        if args.vpc is not None:
            self._grant_network_interfaces(args.vpc)
        for env_name, arn in sorted(args.secret_arns.items()):
            grant_secret_read(self.grants, arn, env_name, args.secret_settings or SecretSettings(
                stack=args.stack, recovery_window_days=0))
        for grant in args.access:
            grant(self.grants)
        if args.consumes is not None:
            args.consumes.grant_consume(self.grants)
        policy_name = f"{name}-access-policy-{args.stack}"
        self.policy = aws.iam.RolePolicy(f"{name}-access-policy", name=policy_name, role=self.role.id,
                                         policy=self.grants.document(), opts=child(self))
        # The ENI statements are in this policy (see _grant_network_interfaces): created before the function.
        before_function: list[pulumi.Resource] = [self.log_group, self.policy]

        environment = {"ENVIRONMENT": args.stack, "POWERTOOLS_SERVICE_NAME": args.function,
                       "POWERTOOLS_LOG_LEVEL": "INFO", **args.environment, **args.secret_arns}
        self.function = aws.lambda_.Function(
            f"{name}-function", name=self.function_name, role=self.role.arn, runtime=RUNTIME,
            architectures=[ARCHITECTURE], handler=f"{args.function}.handler.handler",
            code=pulumi.FileArchive(str(artifacts.artifact_path(args.function))),
            source_code_hash=artifacts.code_sha256_base64(args.function),
            memory_size=s.memory_mb, timeout=s.timeout_seconds,
            reserved_concurrent_executions=s.reserved_concurrency,
            environment={"variables": environment}, kms_key_arn=args.kms_key_arn,
            logging_config={"log_format": "JSON", "log_group": self.log_group.name,
                            "application_log_level": "INFO", "system_log_level": "WARN"},
            tracing_config={"mode": "Active" if args.tracing else "PassThrough"},
            vpc_config={"subnet_ids": list(args.vpc.subnet_ids),
                        "security_group_ids": [args.vpc.security_group.id]} if args.vpc else None,
            ephemeral_storage={"size": args.ephemeral_storage_mb},
            opts=child(self, depends_on=before_function))

        if self.failure_queue is not None:
            aws.lambda_.FunctionEventInvokeConfig(
                f"{name}-async-config", function_name=self.function.name, maximum_retry_attempts=2,
                maximum_event_age_in_seconds=6 * 3600,
                destination_config={"on_failure": {"destination": self.failure_queue.arn}}, opts=child(self))

        self.mapping = None
        if args.consumes is not None:
            self.mapping = aws.lambda_.EventSourceMapping(
                f"{name}-mapping", event_source_arn=args.consumes.queue.arn, function_name=self.function.arn,
                batch_size=s.batch_size, function_response_types=["ReportBatchItemFailures"],
                maximum_batching_window_in_seconds=1 if s.batch_size > 10 else None,
                scaling_config={"maximum_concurrency": args.max_concurrency} if args.max_concurrency else None,
                opts=child(self, depends_on=[self.policy]))

        self.alarms = function_alarms(self, self.function_name, self.function.name, s.timeout_seconds,
                                      args.duration_alarm_percent, args.alarm_topic_arn)
        self.register_outputs({"function_name": self.function.name, "function_arn": self.function.arn})

    def _grant_basics(self) -> None:
        """Write its own logs, send failed async events, trace; nothing else unless granted."""
        self.grants.allow("write own logs", ["logs:CreateLogStream", "logs:PutLogEvents"],
                          [pulumi.Output.concat(self.log_group.arn, ":*")])
        if self.failure_queue is not None:
            self.grants.allow("send failed events", ["sqs:SendMessage"], [self.failure_queue.arn])
        if self.args.tracing:
            # X-Ray has no resource-level permissions: "*" is the only resource AWS accepts.
            self.grants.allow("trace", ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], ["*"])

    def _grant_network_interfaces(self, vpc: VpcPlacement) -> None:
        """What Lambda needs to attach the function to its subnets (the actions of AWSLambdaVPCAccessExecutionRole,
        without its logs:* on "*"), scoped as far as EC2 allows."""
        ec2 = pulumi.Output.concat("arn:aws:ec2:", vpc.region, ":", vpc.account_id, ":")
        # The Describe actions support no resource-level permissions: "*" is the only resource AWS accepts.
        self.grants.allow("find network interfaces", ["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"], ["*"])
        # Create names the new interface, its subnet and its security group: only the function's own may be used.
        self.grants.allow("create network interfaces", ["ec2:CreateNetworkInterface"], [
            pulumi.Output.concat(ec2, "network-interface/*"),
            *[pulumi.Output.concat(ec2, "subnet/", subnet) for subnet in vpc.subnet_ids],
            pulumi.Output.concat(ec2, "security-group/", vpc.security_group.id)])
        # Lambda deletes and re-addresses interfaces it created, whose IDs are unknown in advance: every interface
        # of this account and region (AWS documents this scope for DeleteNetworkInterface).
        self.grants.allow("manage network interfaces", ["ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses",
                                                        "ec2:UnassignPrivateIpAddresses"],
                          [pulumi.Output.concat(ec2, "network-interface/*")])

    def allow_invoke(self, service: str, source_arn: pulumi.Input[str], account_id: pulumi.Input[str],
                     *, label: str) -> aws.lambda_.Permission:
        """Let one AWS service invoke the function, only from ``source_arn`` in this account (Lambda.1)."""
        return aws.lambda_.Permission(
            f"{self._name}-invoke-from-{label}", action="lambda:InvokeFunction", function=self.function.name,
            principal=service, source_arn=source_arn, source_account=account_id, opts=child(self))

    def subscribe(self, topic: aws.sns.Topic, account_id: pulumi.Input[str]) -> aws.sns.TopicSubscription:
        """Deliver an SNS topic's messages to the function, after the permission that admits only that topic."""
        permission = self.allow_invoke("sns.amazonaws.com", topic.arn, account_id, label=topic._name)
        return aws.sns.TopicSubscription(f"{self._name}-subscription-{topic._name}", topic=topic.arn,
                                         protocol="lambda", endpoint=self.function.arn,
                                         opts=child(self, depends_on=[permission]))

    def grant_invoke(self, grants: iam.Grants) -> None:
        grants.allow(f"invoke {self.function_name}", ["lambda:InvokeFunction"], [self.function.arn])
