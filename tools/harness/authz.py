"""Every AWS call a handler makes under the harness, authorised against the recorded policies before moto sees it.

A botocore hook on the handlers' boto3 session turns each call into the IAM actions and resource ARNs AWS authorises
(``GetObject`` with a ``VersionId`` is ``s3:GetObjectVersion``, ``SendMessageBatch`` is ``sqs:SendMessage`` on the
queue's ARN, a read of a KMS-encrypted secret also needs ``kms:Decrypt`` on its key through Secrets Manager, ...) and
evaluates them with moto's IAM policy evaluator (``moto.iam.access_control.IAMPolicy``) against the function role's
recorded inline policies and the recorded resource policies (bucket, queue, topic, key). A call nothing allows, or
that a statement denies, gets the 403 ``AccessDenied`` AWS would answer, as a ``ClientError`` raised in the handler.

What is ours: the operation -> (action, resource) table and which resource-policy statements name the function's
principal (``*``, its role, or the account, which delegates to IAM). Statement matching, wildcards and conditions are
moto's; moto evaluates ``StringEquals`` only and skips other operators, so the few operators the program's resource
policies use are registered with it below (otherwise a TLS-only ``Deny`` with a ``Bool`` condition would deny all).
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from botocore.awsrequest import AWSResponse
from moto.iam import policy_conditions
from moto.iam.access_control import IAMPolicy, IAMPolicyStatement, PermissionResult

ACCOUNT = "123456789012"


def _equals_ignoring_case(expected: list[str] | str, actual: str) -> bool:
    values = expected if isinstance(expected, list) else [expected]
    return any(str(v).lower() == str(actual).lower() for v in values)


def _arn_like(expected: list[str] | str, actual: str) -> bool:
    values = expected if isinstance(expected, list) else [expected]
    return any(fnmatch.fnmatchcase(actual, str(v)) for v in values)


_OPERATIONS: dict[str, Any] = policy_conditions.CONDITION_OPERATIONS
for _operator, _check in {"Bool": _equals_ignoring_case, "ArnEquals": _arn_like, "ArnLike": _arn_like,
                          "StringLike": _arn_like}.items():
    _OPERATIONS.setdefault(_operator, _check)


@dataclass(frozen=True)
class Need:
    """One authorisation AWS makes for a call: an action on a resource, with the request's condition values."""

    action: str
    resource: str
    context: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


@dataclass
class Identity:
    """The function's execution role as AWS sees it while the function runs."""

    function_name: str
    role_arn: str
    policies: list[dict[str, Any]]
    """The role's recorded policy documents (inline and customer-managed), mock values resolved."""

    @property
    def session_arn(self) -> str:
        role_name = self.role_arn.rsplit("/", 1)[-1]
        return f"arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/{self.function_name}"


@dataclass(frozen=True)
class Call:
    """One AWS call made by a function, with what was authorised and the outcome."""

    function: str
    operation: str
    needs: tuple[Need, ...]
    denied: Need | None


class AccessDenied(Exception):
    pass


@dataclass
class Authorizer:
    """The recorded resource policies and encryption keys, and the decision for one identity and need."""

    resource_policies: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Resource ARN -> policies attached to it (a bucket's policy also covers ``<bucket ARN>/*``)."""
    key_policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    """KMS key ARN -> its key policy."""
    secret_keys: dict[str, str] = field(default_factory=dict)
    """Secret ARN -> ARN of the customer key that encrypts it."""
    bucket_keys: dict[str, str] = field(default_factory=dict)
    """Bucket name -> ARN of the SSE-KMS key of its objects."""
    secret_arns: dict[str, str] = field(default_factory=dict)
    """Secret name -> ARN, for calls that name a secret instead of giving its ARN."""

    def policies_on(self, resource: str) -> list[dict[str, Any]]:
        found = list(self.resource_policies.get(resource, []))
        if resource.startswith("arn:aws:s3:::") and "/" in resource:
            found += self.resource_policies.get(resource.split("/", 1)[0], [])
        return found

    def denial(self, identity: Identity, need: Need) -> str | None:
        """None when AWS would allow ``need`` for ``identity``; otherwise why not."""
        own = [_evaluate(doc, need) for doc in identity.policies]
        direct, account = [], []
        documents = self.policies_on(need.resource)
        key_policy = self.key_policies.get(need.resource) if need.action.startswith("kms:") else None
        if key_policy is not None:
            documents.append(key_policy)
        for doc in documents:
            to_principal, to_account = _statements_for(doc, identity)
            direct.append(_evaluate(to_principal, need))
            account.append(_evaluate(to_account, need))
        if PermissionResult.DENIED in own + direct + account:
            return "an explicit deny in a policy applies"
        if need.action.startswith("kms:"):
            # A key policy must allow the principal, or allow the account (which lets IAM policies grant it).
            delegated = key_policy is None or PermissionResult.PERMITTED in account
            if PermissionResult.PERMITTED in direct or (delegated and PermissionResult.PERMITTED in own):
                return None
            return "neither the key policy nor an identity-based policy the key policy admits allows it"
        if PermissionResult.PERMITTED in own + direct:
            return None
        return "no identity-based or resource-based policy allows it"


def _statements_for(document: dict[str, Any], identity: Identity) -> tuple[dict[str, Any], dict[str, Any]]:
    """(statements naming the principal or everyone, statements naming the account) of a resource policy."""
    statements = document.get("Statement", [])
    statements = statements if isinstance(statements, list) else [statements]
    principal_statements, account_statements = [], []
    account_ids = {ACCOUNT, f"arn:aws:iam::{ACCOUNT}:root"}
    for statement in statements:
        principal = statement.get("Principal")
        aws = principal if principal == "*" else (principal or {}).get("AWS") if isinstance(principal, dict) else None
        names = {aws} if isinstance(aws, str) else set(aws or [])
        stripped = {k: v for k, v in statement.items() if k != "Principal"}
        if "*" in names or identity.role_arn in names or identity.session_arn in names:
            principal_statements.append(stripped)
        elif names & account_ids:
            account_statements.append(stripped)
    return {"Statement": principal_statements}, {"Statement": account_statements}


def _evaluate(document: dict[str, Any], need: Need) -> PermissionResult:
    """moto's verdict for the statements whose conditions hold (moto, written for trust policies, answers DENIED for a
    statement whose condition fails; in an IAM policy such a statement simply does not apply)."""
    statements = document.get("Statement", [])
    applicable = []
    for statement in statements if isinstance(statements, list) else [statements]:
        if statement.get("Condition"):
            if not IAMPolicyStatement(statement)._check_conditions(need.context):
                continue
            statement = {k: v for k, v in statement.items() if k != "Condition"}
        applicable.append(statement)
    if not applicable:
        return PermissionResult.NEUTRAL
    return IAMPolicy(json.dumps({"Statement": applicable})).is_action_permitted(need.action, need.resource)


# --- calls -> needs -----------------------------------------------------------------------------------------------

_BATCH_ACTIONS = {
    "sqs": {"SendMessageBatch": "SendMessage", "DeleteMessageBatch": "DeleteMessage",
            "ChangeMessageVisibilityBatch": "ChangeMessageVisibility"},
    "s3": {"HeadObject": "GetObject", "CreateMultipartUpload": "PutObject", "UploadPart": "PutObject",
           "CompleteMultipartUpload": "PutObject", "ListObjectsV2": "ListBucket", "ListObjects": "ListBucket",
           "ListObjectVersions": "ListBucketVersions", "HeadBucket": "ListBucket",
           "ListMultipartUploads": "ListBucketMultipartUploads"},
}


def _queue_arn(url: str, region: str) -> str:
    parts = urlsplit(url).path.strip("/").split("/")
    account, name = (parts[0], parts[1]) if len(parts) >= 2 else (ACCOUNT, parts[-1])
    host_region = urlsplit(url).netloc.split(".")[1] if url.startswith("https://sqs.") else region
    return f"arn:aws:sqs:{host_region}:{account}:{name}"


def _table_arn(name: str, region: str) -> str:
    return name if name.startswith("arn:") else f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{name}"


def needs_of(service: str, operation: str, params: dict[str, Any], region: str, authorizer: Authorizer) -> list[Need]:
    """The authorisations AWS makes for one API call (including the KMS use implied by encrypted resources)."""
    action = _BATCH_ACTIONS.get(service, {}).get(operation, operation)
    if service == "s3":
        return _s3_needs(operation, action, params, authorizer)
    if service == "sqs":
        if "QueueUrl" in params:
            resource = _queue_arn(params["QueueUrl"], region)
        else:
            resource = f"arn:aws:sqs:{region}:{ACCOUNT}:{params.get('QueueName', '*')}"
        return [Need(f"sqs:{action}", resource)]
    if service == "dynamodb":
        return list(_dynamodb_needs(operation, params, region))
    if service == "secretsmanager":
        secret = params.get("SecretId")
        if secret is None:
            return [Need(f"secretsmanager:{action}", "*")]
        arn = secret if secret.startswith("arn:") else authorizer.secret_arns.get(secret, secret)
        needs = [Need(f"secretsmanager:{action}", arn)]
        key = authorizer.secret_keys.get(arn)
        via = {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}
        if key and operation == "GetSecretValue":
            needs.append(Need("kms:Decrypt", key, via))
        elif key and operation == "PutSecretValue":
            needs.append(Need("kms:GenerateDataKey", key, via))
        return needs
    if service == "sns":
        return [Need(f"sns:{action}", params.get("TopicArn") or params.get("TargetArn") or "*")]
    if service == "kms":
        key = params.get("KeyId", "*")
        return [Need(f"kms:{action}", key if key.startswith("arn:") else f"arn:aws:kms:{region}:{ACCOUNT}:key/{key}")]
    if service == "events" and operation == "PutEvents":
        buses = {e.get("EventBusName") or "default" for e in params.get("Entries", [])}
        return [Need("events:PutEvents", b if b.startswith("arn:") else
                     f"arn:aws:events:{region}:{ACCOUNT}:event-bus/{b}") for b in sorted(buses)]
    if service == "rds" and params.get("DBInstanceIdentifier"):
        instance = params["DBInstanceIdentifier"]
        return [Need(f"rds:{action}", instance if instance.startswith("arn:") else
                     f"arn:aws:rds:{region}:{ACCOUNT}:db:{instance}")]
    if service == "sts" and operation == "GetCallerIdentity":
        return []  # always allowed by AWS
    return [Need(f"{service}:{action}", "*")]


def _s3_needs(operation: str, action: str, params: dict[str, Any], authorizer: Authorizer) -> list[Need]:
    bucket = params.get("Bucket", "*")
    bucket_arn = f"arn:aws:s3:::{bucket}"
    versioned = bool(params.get("VersionId"))
    if operation in {"GetObject", "HeadObject"}:
        needs = [Need("s3:GetObjectVersion" if versioned else "s3:GetObject", f"{bucket_arn}/{params['Key']}")]
    elif operation == "DeleteObject":
        needs = [Need("s3:DeleteObjectVersion" if versioned else "s3:DeleteObject", f"{bucket_arn}/{params['Key']}")]
    elif operation == "DeleteObjects":
        needs = [Need("s3:DeleteObjectVersion" if o.get("VersionId") else "s3:DeleteObject", f"{bucket_arn}/{o['Key']}")
                 for o in params.get("Delete", {}).get("Objects", [])]
    elif operation == "CopyObject":
        source = params["CopySource"]
        if isinstance(source, dict):
            source_arn = f"arn:aws:s3:::{source['Bucket']}/{source['Key']}"
        else:
            source_arn = f"arn:aws:s3:::{unquote(source.split('?', 1)[0].lstrip('/'))}"
        needs = [Need("s3:GetObject", source_arn), Need("s3:PutObject", f"{bucket_arn}/{params['Key']}")]
    elif "Key" in params:
        needs = [Need(f"s3:{action}", f"{bucket_arn}/{params['Key']}")]
    else:
        needs = [Need(f"s3:{action}", bucket_arn)]
    key = authorizer.bucket_keys.get(bucket)
    via = {"kms:ViaService": "s3.us-east-1.amazonaws.com"}
    if key and operation in {"GetObject"}:
        needs.append(Need("kms:Decrypt", key, via))
    elif key and operation in {"PutObject", "CreateMultipartUpload", "CopyObject"}:
        needs.append(Need("kms:GenerateDataKey", key, via))
    return needs


def _dynamodb_needs(operation: str, params: dict[str, Any], region: str) -> Iterable[Need]:
    if operation in {"BatchGetItem", "BatchWriteItem"}:
        for table in params.get("RequestItems", {}):
            yield Need(f"dynamodb:{operation}", _table_arn(table, region))
        return
    if operation in {"TransactWriteItems", "TransactGetItems"}:
        names = {"ConditionCheck": "ConditionCheckItem", "Put": "PutItem", "Update": "UpdateItem",
                 "Delete": "DeleteItem", "Get": "GetItem"}
        for item in params.get("TransactItems", []):
            for kind, body in item.items():
                yield Need(f"dynamodb:{names[kind]}", _table_arn(body["TableName"], region))
        return
    table = _table_arn(params.get("TableName", "*"), region)
    if params.get("IndexName"):
        table = f"{table}/index/{params['IndexName']}"
    yield Need(f"dynamodb:{operation}", table)


# --- the botocore hook --------------------------------------------------------------------------------------------

class _EmptyBody:
    def stream(self, **_: Any) -> Iterable[bytes]:
        return iter([b""])


class Enforcer:
    """Registered once on a boto3 session; authorises calls while ``acting`` names a function, records every call."""

    def __init__(self, authorizer: Authorizer) -> None:
        self.authorizer = authorizer
        self.acting: Identity | None = None
        self.calls: list[Call] = []

    def install(self, events: Any) -> None:
        events.register("before-parameter-build", self._keep_params, unique_id="macro-harness-params")
        events.register("before-call", self._authorise, unique_id="macro-harness-authorise")

    def _keep_params(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        context["macro_harness_params"] = dict(params)

    def _authorise(self, model: Any, params: dict[str, Any], context: dict[str, Any], **_: Any) -> Any:
        identity = self.acting
        if identity is None:
            return None
        service = model.service_model.service_name
        api_params = context.get("macro_harness_params", {})
        region = context.get("client_region") or "us-east-1"
        secure = "true" if str(params.get("url", "")).startswith("https://") else "false"
        needs = needs_of(service, model.name, api_params, region, self.authorizer)
        needs = [Need(n.action, n.resource, {**n.context, "aws:SecureTransport": secure}) for n in needs]
        denied, reason = None, ""
        for need in needs:
            why = self.authorizer.denial(identity, need)
            if why is not None:
                denied, reason = need, why
                break
        self.calls.append(Call(identity.function_name, f"{service}:{model.name}", tuple(needs), denied))
        if denied is None:
            return None
        message = (f"User: {identity.session_arn} is not authorized to perform: {denied.action} on resource: "
                   f"{denied.resource} because {reason}")
        response = AWSResponse(str(params.get("url", "")), 403, {}, _EmptyBody())
        parsed = {"Error": {"Code": "AccessDenied", "Message": message},
                  "ResponseMetadata": {"HTTPStatusCode": 403, "HTTPHeaders": {}}}
        return response, parsed
