"""Evaluate the Pulumi program for one stack under mocks and record every resource it registers.

No Pulumi CLI, AWS account, credentials or network: the stack's config is read from ``Pulumi.<stack>.yaml`` (``secure:``
values become placeholders), the program runs against :class:`PlatformMocks`, and a recording monitor keeps each
registration as a :class:`~infra.records.ResourceRecord`. Tests, the rule set and the plan all read these records.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import re
import runpy
import string
import sys
import threading
import uuid
from contextlib import nullcontext
from functools import cache
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import resource as pulumi_resource
from pulumi.runtime import rpc, settings
from pulumi.runtime.proto import source_pb2
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from infra import artifacts
from infra.records import ResourceRecord, StackRecords
from infra.sdk import has_arn

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
SECRET_PLACEHOLDER = "<secret from pulumi config: {key}>"
MOCK_SECRET_MARKER = "MockSecret"
"""Every generated secret value under mocks contains this marker, so tests can find a leaked value anywhere."""


class StackConfigFileError(ValueError):
    """The stack file is missing or malformed."""


def read_stack_config(stack: str, root: Path = ROOT) -> tuple[str, dict[str, str], list[str]]:
    """(project, config map as the engine passes it, secret keys) from ``Pulumi.yaml`` and ``Pulumi.<stack>.yaml``."""
    project_file = root / "Pulumi.yaml"
    stack_file = root / f"Pulumi.{stack}.yaml"
    if not stack_file.exists():
        raise StackConfigFileError(f"{stack_file.name} does not exist: stacks are "
                                   f"{sorted(p.name[7:-5] for p in root.glob('Pulumi.*.yaml'))}")
    project = yaml.safe_load(project_file.read_text())["name"]
    raw = (yaml.safe_load(stack_file.read_text()) or {}).get("config") or {}
    if not isinstance(raw, dict):
        raise StackConfigFileError(f"{stack_file.name}: 'config' must be a mapping")
    config: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, value in raw.items():
        full, text = _engine_entry(project, key, value)
        if isinstance(value, dict) and set(value) == {"secure"}:
            config[full] = SECRET_PLACEHOLDER.format(key=full)
            secret_keys.append(full)
        else:
            config[full] = text
    return project, config, secret_keys


def _engine_entry(project: str, key: str, value: Any) -> tuple[str, str]:
    """A config entry as the engine passes it: ``project:key`` (unless namespaced), non-strings as JSON."""
    return key if ":" in key else f"{project}:{key}", value if isinstance(value, str) else json.dumps(value)


# ARNs in each service's real format (the resource types the program records), so policies, references and the
# outside checkers see what AWS would return. Fields: {name} physical name, {region}, {account}, and values derived
# from the type and logical name so the same program gives the same ARNs: {uid} (a UUID, e.g. KMS key ids),
# {suffix} (the six characters Secrets Manager appends), {hex17} (EC2/RDS-style resource ids, e.g. vpc-<17 hex>).
# Types whose SDK class has no ``arn`` output get none: AWS gives them no ARN.
ARN_TEMPLATES: dict[str, str] = {
    "aws:s3/bucket:Bucket": "arn:aws:s3:::{name}",
    "aws:sqs/queue:Queue": "arn:aws:sqs:{region}:{account}:{name}",
    "aws:sns/topic:Topic": "arn:aws:sns:{region}:{account}:{name}",
    "aws:sns/topicSubscription:TopicSubscription": "arn:aws:sns:{region}:{account}:{topic}:{uid}",
    "aws:iam/role:Role": "arn:aws:iam::{account}:role/{name}",
    "aws:iam/policy:Policy": "arn:aws:iam::{account}:policy/{name}",
    "aws:iam/serviceLinkedRole:ServiceLinkedRole": "arn:aws:iam::{account}:role/aws-service-role/{service}/{role}",
    "aws:kms/key:Key": "arn:aws:kms:{region}:{account}:key/{uid}",
    "aws:kms/alias:Alias": "arn:aws:kms:{region}:{account}:{name}",
    "aws:secretsmanager/secret:Secret": "arn:aws:secretsmanager:{region}:{account}:secret:{name}-{suffix}",
    "aws:secretsmanager/secretVersion:SecretVersion": "{secret}",
    "aws:lambda/function:Function": "arn:aws:lambda:{region}:{account}:function:{name}",
    "aws:lambda/eventSourceMapping:EventSourceMapping": "arn:aws:lambda:{region}:{account}:event-source-mapping:{uid}",
    "aws:cloudwatch/logGroup:LogGroup": "arn:aws:logs:{region}:{account}:log-group:{name}",
    "aws:cloudwatch/metricAlarm:MetricAlarm": "arn:aws:cloudwatch:{region}:{account}:alarm:{name}",
    "aws:cloudwatch/eventRule:EventRule": "arn:aws:events:{region}:{account}:rule/{name}",
    "aws:scheduler/schedule:Schedule": "arn:aws:scheduler:{region}:{account}:schedule/{group}/{name}",
    "aws:opensearch/domain:Domain": "arn:aws:es:{region}:{account}:domain/{name}",
    "aws:dynamodb/table:Table": "arn:aws:dynamodb:{region}:{account}:table/{name}",
    "aws:ecs/cluster:Cluster": "arn:aws:ecs:{region}:{account}:cluster/{name}",
    "aws:rds/instance:Instance": "arn:aws:rds:{region}:{account}:db:{name}",
    "aws:rds/proxy:Proxy": "arn:aws:rds:{region}:{account}:db-proxy:prx-{hex17}",
    "aws:rds/proxyDefaultTargetGroup:ProxyDefaultTargetGroup":
        "arn:aws:rds:{region}:{account}:target-group:prx-tg-{hex17}",
    "aws:rds/subnetGroup:SubnetGroup": "arn:aws:rds:{region}:{account}:subgrp:{name}",
    "aws:rds/parameterGroup:ParameterGroup": "arn:aws:rds:{region}:{account}:pg:{name}",
    "aws:elasticache/replicationGroup:ReplicationGroup":
        "arn:aws:elasticache:{region}:{account}:replicationgroup:{name}",
    "aws:elasticache/subnetGroup:SubnetGroup": "arn:aws:elasticache:{region}:{account}:subnetgroup:{name}",
    "aws:ec2/vpc:Vpc": "arn:aws:ec2:{region}:{account}:vpc/vpc-{hex17}",
    "aws:ec2/subnet:Subnet": "arn:aws:ec2:{region}:{account}:subnet/subnet-{hex17}",
    "aws:ec2/securityGroup:SecurityGroup": "arn:aws:ec2:{region}:{account}:security-group/sg-{hex17}",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": "arn:aws:ec2:{region}:{account}:security-group/sg-{hex17}",
    "aws:ec2/eip:Eip": "arn:aws:ec2:{region}:{account}:elastic-ip/eipalloc-{hex17}",
    "aws:ec2/internetGateway:InternetGateway": "arn:aws:ec2:{region}:{account}:internet-gateway/igw-{hex17}",
    "aws:ec2/routeTable:RouteTable": "arn:aws:ec2:{region}:{account}:route-table/rtb-{hex17}",
    "aws:ec2/flowLog:FlowLog": "arn:aws:ec2:{region}:{account}:vpc-flow-log/fl-{hex17}",
    "aws:ec2/vpcEndpoint:VpcEndpoint": "arn:aws:ec2:{region}:{account}:vpc-endpoint/vpce-{hex17}",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule":
        "arn:aws:ec2:{region}:{account}:security-group-rule/sgr-{hex17}",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule":
        "arn:aws:ec2:{region}:{account}:security-group-rule/sgr-{hex17}",
    "aws:route53/healthCheck:HealthCheck": "arn:aws:route53:::healthcheck/{uid}",
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": "arn:aws:iam::{account}:oidc-provider/{name}",
}
# Roles AWS creates for a service-linked role request (IAM's documented names).
SERVICE_LINKED_ROLE_NAMES = {"opensearchservice.amazonaws.com": "AWSServiceRoleForAmazonOpenSearchService"}
# Other computed outputs the program reads (endpoints, URLs, ids).
COMPUTED_OUTPUTS: dict[str, dict[str, str]] = {
    "aws:s3/bucket:Bucket": {"bucket": "{name}", "bucketRegionalDomainName": "{name}.s3.{region}.amazonaws.com"},
    "aws:sqs/queue:Queue": {"url": "https://sqs.{region}.amazonaws.com/{account}/{name}"},
    "aws:iam/role:Role": {"uniqueId": "AROA{name}"},
    "aws:kms/key:Key": {"keyId": "{uid}"},
    "aws:lambda/function:Function": {
        "qualifiedArn": "{arn}:1", "version": "1",
        "invokeArn": "arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{arn}/invocations"},
    "aws:opensearch/domain:Domain": {"endpoint": "vpc-{name}.{region}.es.amazonaws.com"},
    "aws:rds/instance:Instance": {"address": "{name}.mock.{region}.rds.amazonaws.com", "identifier": "{name}",
                                  "endpoint": "{name}.mock.{region}.rds.amazonaws.com:5432",
                                  "resourceId": "db-{name}"},
    "aws:rds/proxy:Proxy": {"endpoint": "{name}.proxy-mock.{region}.rds.amazonaws.com"},
    "aws:elasticache/replicationGroup:ReplicationGroup": {
        "primaryEndpointAddress": "master.{name}.mock.use1.cache.amazonaws.com",
        "readerEndpointAddress": "replica.{name}.mock.use1.cache.amazonaws.com"},
}


class PlatformMocks(pulumi_mocks.Mocks):
    """Echo inputs and add the computed fields AWS would return (ARNs, URLs, endpoints, generated values), so checks
    inside ``apply`` and references between resources see real-looking values instead of ``None``."""

    def __init__(self, *, iam_roles: tuple[str, ...] = ()) -> None:
        self.iam_roles = iam_roles
        """Roles the mocked account already has (``aws.iam.get_roles`` finds them); a new account has none."""
        # Registrations run on a thread pool, so results are handed to the monitor by (type, name), never "last".
        self.created: dict[tuple[str, str], tuple[pulumi_mocks.MockResourceArgs, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        outputs = dict(args.inputs)
        physical = _physical_name(args)
        resource_id = physical
        typ = args.typ
        if "name" not in outputs and typ.startswith("aws:"):
            outputs["name"] = physical
        fields = _arn_fields(args, physical)
        arn = mock_arn(typ, fields)
        if arn is not None and "arn" not in args.inputs:
            outputs["arn"] = arn
        outputs.update({key: value.format(arn=outputs.get("arn"), **fields)
                        for key, value in COMPUTED_OUTPUTS.get(typ, {}).items()})
        if typ == "aws:kms/key:Key":
            resource_id = outputs["keyId"]
        elif typ == "aws:secretsmanager/secret:Secret":
            resource_id = outputs["arn"]  # the provider's id of a secret is its ARN
        elif typ == "aws:route53/healthCheck:HealthCheck":
            resource_id = f"hc-{physical}"
        elif typ.startswith("random:"):
            outputs.update(result=_mock_secret(args.name), id=f"{args.name}-id")
        outputs.setdefault("id", resource_id)  # as the provider returns it, so records can be joined on it
        with self._lock:
            self.created[(args.typ, args.name)] = (args, outputs)
        return resource_id, outputs

    def call(self, args: pulumi_mocks.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        token = args.token
        if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            names = [f"{REGION}{z}" for z in "abcdef"]
            return {"names": names, "zoneIds": [f"use1-az{i}" for i in range(1, 7)], "id": REGION}
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": ACCOUNT_ID, "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/mock", "userId": "MOCK",
                    "id": ACCOUNT_ID}
        if token == "aws:index/getRegion:getRegion":
            return {"name": REGION, "region": REGION, "id": REGION, "endpoint": f"ec2.{REGION}.amazonaws.com",
                    "description": "US East (N. Virginia)"}
        if token == "aws:iam/getRoles:getRoles":
            pattern = re.compile(args.args.get("nameRegex") or ".*")
            names = [n for n in self.iam_roles if pattern.search(n)]
            return {"names": names, "arns": [f"arn:aws:iam::{ACCOUNT_ID}:role/aws-service-role/{n}" for n in names],
                    "id": "roles"}
        if token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}
        raise NotImplementedError(f"the offline plan has no mock for the call {token}; add one to PlatformMocks.call")


def _arn_fields(args: pulumi_mocks.MockResourceArgs, physical: str) -> dict[str, str]:
    """The values ARN templates draw on; derived ones hash the type and logical name, so they never change between
    runs of the same program."""
    digest = hashlib.sha256(f"{args.typ}::{args.name}".encode()).hexdigest()
    alphabet = string.ascii_letters + string.digits
    service = str(args.inputs.get("awsServiceName") or "")
    return {
        "name": physical, "region": str(args.inputs.get("region") or REGION), "account": ACCOUNT_ID,
        "uid": str(uuid.UUID(digest[:32])), "hex17": digest[:17],
        "suffix": "".join(alphabet[int(digest[i:i + 2], 16) % len(alphabet)] for i in range(0, 12, 2)),
        "topic": str(args.inputs.get("topic") or "").rsplit(":", 1)[-1],
        "secret": str(args.inputs.get("secretId") or ""),
        "group": str(args.inputs.get("groupName") or "default"),
        "service": service,
        "role": SERVICE_LINKED_ROLE_NAMES.get(service, "AWSServiceRoleFor" + service.split(".")[0].title()),
    }


def mock_arn(typ: str, fields: dict[str, str]) -> str | None:
    """The ARN AWS would give a resource of this type, or None for types without one (policies, attachments, ...)."""
    template = ARN_TEMPLATES.get(typ)
    if template is not None:
        return template.format(**fields)
    if not has_arn(typ):
        return None
    service = typ.split(":")[1].split("/")[0]
    # A type the program newly records: a plausible ARN, until its real format is added above (a test asks for it).
    return f"arn:aws:{service}:{fields['region']}:{ACCOUNT_ID}:{typ.split(':')[-1].lower()}/{fields['name']}"


def _physical_name(args: pulumi_mocks.MockResourceArgs) -> str:
    if args.typ == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":  # named by its issuer's host
        return str(args.inputs.get("url", args.name)).removeprefix("https://")
    for key in ("name", "bucket", "domainName", "identifier", "replicationGroupId", "functionName", "clusterName"):
        value = args.inputs.get(key)
        if isinstance(value, str) and value:
            return value
    return args.name


def _mock_secret(name: str) -> str:
    """Deterministic, unmistakable, and valid for AWS's password rules (upper, lower, digit, special)."""
    return f"{MOCK_SECRET_MARKER}-{name}-Aa1!"


def _unwrap_secrets(value: Any, key: str = "", found: set[str] | None = None) -> Any:
    """Replace the engine's secret envelopes with their values, noting which top-level input held one."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            if found is not None:
                found.add(key)
            return _unwrap_secrets(value.get("value"), key, found)
        return {k: _unwrap_secrets(v, key, found) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap_secrets(v, key, found) for v in value]
    return value


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """The mock monitor, keeping every registration and the stack's outputs."""

    def __init__(self, mocks: PlatformMocks):
        super().__init__(mocks)
        self.platform_mocks = mocks
        self.records: list[ResourceRecord] = []
        self._records_lock = threading.Lock()
        self.stack_outputs: dict[str, Any] = {}
        self.lookups: set[str] = set()

    def Invoke(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        self.lookups.add(request.tok)
        return super().Invoke(request)

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        response = super().RegisterResource(request)
        with self.platform_mocks._lock:
            created = self.platform_mocks.created.pop((request.type, request.name), None)
        if request.type == "pulumi:pulumi:Stack" or created is None:
            return response
        args, outputs = created
        secret_keys: set[str] = set()
        inputs = {key: _unwrap_secrets(value, key, secret_keys) for key, value in args.inputs.items()}
        record = ResourceRecord(
            type=request.type, name=request.name, urn=response.urn, inputs=inputs, outputs=_unwrap_secrets(outputs),
            secret_inputs=tuple(sorted(secret_keys)),
            parent=request.parent or None, dependencies=tuple(request.dependencies), protect=bool(request.protect),
            retain_on_delete=bool(request.retainOnDelete), ignore_changes=tuple(request.ignoreChanges),
            delete_before_replace=bool(request.deleteBeforeReplace),
            custom=bool(request.custom),
            provider=request.provider or None)
        with self._records_lock:
            self.records.append(record)
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        if "::pulumi:pulumi:Stack::" in request.urn:
            self.stack_outputs.update(rpc.deserialize_properties(request.outputs))
        return super().RegisterResourceOutputs(request)


def evaluate_program(stack: str, config: dict[str, str], secret_keys: list[str], *, project: str = "macro-infra",
                     program: Path = ROOT / "__main__.py", mocks: PlatformMocks | None = None,
                     offline: bool = True) -> StackRecords:
    """Run the program once for ``stack`` with ``config`` (engine-style ``project:key`` strings) and record it.

    ``offline`` tells the program it runs as the offline plan (``infra.artifacts.offline_evaluation``), so it does not
    require what only a real run reads (the Lambda artifacts); ``offline=False`` runs it as ``pulumi preview``/``up``
    would, still under mocks."""
    settings.ROOT.set(None)
    pulumi.runtime.set_all_config(config, secret_keys)
    mocks = mocks or PlatformMocks()
    monitor = RecordingMonitor(mocks)
    pulumi_mocks.set_mocks(mocks, project=project, stack=stack, preview=False, monitor=monitor)
    settings.SETTINGS.rpc_manager.clear()
    sys.path.insert(0, str(program.parent)) if str(program.parent) not in sys.path else None
    cwd = os.getcwd()
    os.chdir(program.parent)
    gc_was_enabled = gc.isenabled()
    gc.disable()  # the evaluation allocates many small objects and frees few; collection only costs time here
    # Source positions for the engine's diagnostics cost a full stack extraction per resource; mocks never read them.
    stack_trace = getattr(pulumi_resource, "_get_stack_trace", None)
    if stack_trace is not None:
        pulumi_resource._get_stack_trace = source_pb2.StackTrace

    def run_program() -> None:
        runpy.run_path(str(program), run_name="__main__")

    try:
        with artifacts.offline_evaluation() if offline else nullcontext():
            _sync_await(run_pulumi_func(run_program))
        root = settings.get_root_resource()
        if root is not None:
            # The mock engine finishes the stack only on shutdown; collect exports explicitly.
            outputs = getattr(root, "outputs", {}) or {}
            for key, value in outputs.items():
                if key not in monitor.stack_outputs:
                    monitor.stack_outputs[key] = _sync_await(pulumi.Output.from_input(value).future())
    finally:
        if stack_trace is not None:
            pulumi_resource._get_stack_trace = stack_trace
        os.chdir(cwd)
        if gc_was_enabled:
            gc.enable()
    return StackRecords(stack=stack, records=tuple(monitor.records), outputs=dict(monitor.stack_outputs),
                        lookups=tuple(sorted(monitor.lookups)))


@cache
def evaluate_stack(stack: str) -> StackRecords:
    """Evaluate ``Pulumi.<stack>.yaml`` once per process."""
    project, config, secret_keys = read_stack_config(stack)
    return evaluate_program(stack, config, secret_keys, project=project)


def evaluate_project(directory: Path, stack: str, config: dict[str, Any] | None = None, *,
                     mocks: PlatformMocks | None = None) -> StackRecords:
    """Evaluate another Pulumi project of this repository (its ``Pulumi.yaml`` and ``__main__.py``, e.g.
    ``bootstrap/``) under the same mocks. ``config`` stands in for ``pulumi config set``: keys without a namespace
    belong to the project, values that are not strings are passed as JSON, as the engine does."""
    directory = directory.resolve()
    project = yaml.safe_load((directory / "Pulumi.yaml").read_text())["name"]
    engine_config = dict(_engine_entry(project, key, value) for key, value in (config or {}).items())
    return evaluate_program(stack, engine_config, [], project=project, program=directory / "__main__.py", mocks=mocks)
