"""Render a stack's records as a Terraform plan (JSON, format 1.2), so scanners written for Terraform judge them.

What a Pulumi type token and its camelCase inputs are called in Terraform comes from the installed pulumi-aws SDK
(``infra.sdk``: each input's snake_case name and whether it is a value, a map, a block or a list of blocks), plus two
small tables written once and tested: the type names that do not follow ``aws_<module>_<snake name>`` and the blocks
Pulumi pluralised. References between resources (a bucket's public-access block, policy, encryption ...) become
unknown values with ``configuration`` expressions naming the resource, exactly as a first ``terraform plan`` shows them,
so checkov's graph connects the resources.
"""

from __future__ import annotations

import re
from typing import Any

from infra.records import ResourceRecord, StackRecords
from infra.sdk import Field, args_class, fields

# Modules whose Terraform types carry another prefix than the module's name.
MODULE_PREFIX = {"ec2": "", "rds": "db"}
# Types whose Terraform name is not the default derivation (aws_<prefix>_<snake name>).
TYPE_OVERRIDES = {
    "aws:s3/bucketReplicationConfig:BucketReplicationConfig": "aws_s3_bucket_replication_configuration",
}
# Repeated blocks Pulumi pluralised (Terraform names them in the singular): (type token, dotted input path) -> name.
BLOCK_RENAMES: dict[tuple[str, str], str] = {
    ("aws:dynamodb/table:Table", "attributes"): "attribute",
    ("aws:dynamodb/table:Table", "globalSecondaryIndexes"): "global_secondary_index",
    ("aws:dynamodb/table:Table", "globalSecondaryIndexes.keySchemas"): "key_schema",
    ("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "rules"): "rule",
    ("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "rules"): "rule",
    ("aws:s3/bucketReplicationConfig:BucketReplicationConfig", "rules"): "rule",
    ("aws:s3/bucketCorsConfiguration:BucketCorsConfiguration", "corsRules"): "cors_rule",
    ("aws:s3/bucketNotification:BucketNotification", "lambdaFunctions"): "lambda_function",
    ("aws:s3/bucketNotification:BucketNotification", "queues"): "queue",
    ("aws:s3/bucketNotification:BucketNotification", "topics"): "topic",
    ("aws:rds/parameterGroup:ParameterGroup", "parameters"): "parameter",
    ("aws:rds/proxy:Proxy", "auths"): "auth",
    ("aws:elasticache/replicationGroup:ReplicationGroup", "logDeliveryConfigurations"): "log_delivery_configuration",
    ("aws:ec2/routeTable:RouteTable", "routes"): "route",
    ("aws:cloudwatch/metricAlarm:MetricAlarm", "metricQueries"): "metric_query",
    ("aws:lambda/eventSourceMapping:EventSourceMapping", "filterCriteria.filters"): "filter",
    ("aws:ecs/cluster:Cluster", "settings"): "setting",
}
# Repeated blocks whose Terraform name is already plural (checked by the same test, so none is forgotten).
PLURAL_IN_TERRAFORM: frozenset[tuple[str, str]] = frozenset({
    ("aws:opensearch/domain:Domain", "logPublishingOptions"),
    ("aws:ec2/securityGroup:SecurityGroup", "ingress"),
    ("aws:ec2/securityGroup:SecurityGroup", "egress"),
    ("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup", "ingress"),
    ("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup", "egress"),
})
# Outputs another resource may point at, and the Terraform attribute a reference to each names (in this order).
REFERABLE = {"id": "id", "arn": "arn", "name": "name", "bucket": "bucket", "url": "url", "keyId": "key_id"}
# A resource's own name is a literal in the configuration, even when another resource happens to share it.
OWN_NAMES = frozenset({"name", "namePrefix", "identifier", "domainName", "replicationGroupId", "clusterName"})
PROVIDER = "registry.terraform.io/hashicorp/aws"
_SNAKE = re.compile(r"(?<!^)(?=[A-Z])")


def tf_type(token: str) -> str:
    """``aws:s3/bucketPolicy:BucketPolicy`` -> ``aws_s3_bucket_policy``."""
    if token in TYPE_OVERRIDES:
        return TYPE_OVERRIDES[token]
    if not token.startswith("aws:"):
        raise ValueError(f"{token} is not an AWS resource type")
    module, name = token.split(":")[1].split("/")[0], token.split(":")[2]
    prefix = MODULE_PREFIX.get(module, module)
    return "_".join(p for p in ("aws", prefix, _SNAKE.sub("_", name).lower()) if p)


def tf_name(logical: str) -> str:
    """A Terraform resource name (letters, digits, '_' and '-', not starting with a digit) for a logical name."""
    name = re.sub(r"[^A-Za-z0-9_-]", "_", logical)
    return name if re.match(r"[A-Za-z_]", name) else f"_{name}"


def address(rec: ResourceRecord) -> str:
    return f"{tf_type(rec.type)}.{tf_name(rec.name)}"


def renderable(rec: ResourceRecord) -> bool:
    """AWS resources only: components, providers and pulumi-random values have no Terraform resource."""
    return rec.custom and rec.type.startswith("aws:")


def attribute_name(token: str, path: str, field: Field) -> str:
    return BLOCK_RENAMES.get((token, path), field.name)


class _Renderer:
    def __init__(self, records: StackRecords) -> None:
        self.records = records
        self.by_urn = {r.urn: r for r in records if renderable(r)}

    def referable(self, rec: ResourceRecord) -> dict[str, str]:
        """Value -> the reference expression naming it, for every dependency of ``rec`` (ids and ARNs first)."""
        candidates: dict[str, list[tuple[ResourceRecord, str]]] = {}
        for urn in rec.dependencies:
            dep = self.by_urn.get(urn)
            if dep is None:
                continue
            for key, attr in REFERABLE.items():
                value = dep.outputs.get(key)
                if isinstance(value, str) and value:
                    candidates.setdefault(value, []).append((dep, attr))
        found: dict[str, str] = {}
        for value, producers in candidates.items():
            # Several dependencies may carry the value (a bucket's ownership controls echo its name): it comes from
            # the one that depends on none of the others.
            urns = {dep.urn for dep, _ in producers}
            roots = [(dep, attr) for dep, attr in producers if not urns & (set(dep.dependencies) - {dep.urn})]
            dep, attr = (roots or producers)[0]
            found[value] = f"{address(dep)}.{attr}"
        return found

    def convert(self, token: str, inputs: dict[str, Any], schema: dict[str, Field], path: str,
                refs: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
        """(values, expressions) of one resource or block."""
        values: dict[str, Any] = {}
        expressions: dict[str, Any] = {}
        for key, value in inputs.items():
            if key.startswith("__") or value is None:
                continue
            field = schema.get(key)
            if field is None:
                raise KeyError(f"{token}: input {path + key!r} is not in the pulumi-aws SDK")
            name = attribute_name(token, path + key, field)
            if field.kind in ("block", "blocks") and field.nested is not None:
                items = value if isinstance(value, list) else [value]
                converted = [self.convert(token, item, fields(field.nested), f"{path}{key}.", refs)
                             for item in items if isinstance(item, dict)]
                values[name] = [v for v, _ in converted]
                if any(e for _, e in converted):
                    expressions[name] = [e for _, e in converted]
            elif field.kind == "map":
                values[name] = value
            elif not path and key in OWN_NAMES:
                values[name] = _plain(value)
            else:
                values[name], reference = _reference(_plain(value), refs)
                if reference:
                    expressions[name] = {"references": reference}
        return values, expressions

    def resource(self, rec: ResourceRecord) -> tuple[dict[str, Any], dict[str, Any]]:
        args = args_class(rec.type)
        if args is None:
            raise KeyError(f"{rec.type} is not a pulumi-aws resource type")
        values, expressions = self.convert(rec.type, rec.inputs, fields(args), "", self.referable(rec))
        common = {"address": address(rec), "mode": "managed", "type": tf_type(rec.type), "name": tf_name(rec.name)}
        planned = {**common, "provider_name": PROVIDER, "schema_version": 0, "values": values,
                   "sensitive_values": {}}
        configured = {**common, "provider_config_key": "aws", "expressions": expressions, "schema_version": 0}
        return planned, configured


def _plain(value: Any) -> Any:
    """Numbers arrive from the engine as floats (Terraform writes whole numbers as integers); an asset or archive
    (a function's code) becomes its path, as Terraform's ``filename``."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if value is not None and not isinstance(value, (str, int, float, bool, dict)):
        return str(getattr(value, "path", value))
    return value


def _reference(value: Any, refs: dict[str, str]) -> tuple[Any, list[str]]:
    """A value that is another resource's id/ARN/name is unknown until that resource exists: ``None`` in the plan,
    with the reference in the configuration (a list keeps its known elements)."""
    if isinstance(value, str) and value in refs:
        ref = refs[value]
        return None, [ref, ref.rsplit(".", 1)[0]]
    if isinstance(value, list) and any(isinstance(v, str) and v in refs for v in value):
        found = [refs[v] for v in value if isinstance(v, str) and v in refs]
        return [None if isinstance(v, str) and v in refs else v for v in value], \
            [x for ref in found for x in (ref, ref.rsplit(".", 1)[0])]
    return value, []


def render_plan(records: StackRecords, region: str) -> dict[str, Any]:
    """The stack as the JSON ``terraform show -json`` prints for a plan that creates every resource."""
    renderer = _Renderer(records)
    planned, configured = [], []
    for rec in records:
        if renderable(rec):
            p, c = renderer.resource(rec)
            planned.append(p)
            configured.append(c)
    return {
        "format_version": "1.2", "terraform_version": "1.9.8",
        "planned_values": {"root_module": {"resources": planned}},
        "configuration": {
            "provider_config": {"aws": {"name": "aws", "full_name": PROVIDER,
                                        "expressions": {"region": {"constant_value": region}}}},
            "root_module": {"resources": configured}},
    }
