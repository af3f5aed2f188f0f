"""Rules about what happens after the first deploy: rotations, replacements and the database's connection budget.

None of these fail a first ``pulumi up``; each fails a later one, or a later day: a credential written back after a
rotation, a replacement that collides with its own name, a queue burst that exhausts the database's connections.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from infra import capacity
from infra.records import ResourceRecord, StackRecords
from policy import types as T
from policy.engine import stack_rule
from policy.helpers import MISSING, get, known_str, num, resolve
from policy.rules_compute import _sqs_mappings

Found = Iterator[tuple[ResourceRecord | None, str]]

DATABASE_ENV = "DATABASE_SECRET_ARN"
"""The environment variable through which a data-plane function reaches MacroDB (a URL secret's ARN)."""


# ---------------------------------------------------------------- rotation

def rotation_owned(stack: StackRecords) -> tuple[list[ResourceRecord], list[ResourceRecord]]:
    """(secrets, instances) whose values a rotation function owns: the rotated secret, the URL secrets the function
    rewrites (``URL_SECRETS``) and the instance whose master password it sets (``DB_INSTANCE_IDENTIFIER``)."""
    secrets: list[ResourceRecord] = []
    instances: list[ResourceRecord] = []
    for rotation in stack.of_type(T.SECRET_ROTATION):
        secret = resolve(stack, rotation.inputs.get("secretId"), [T.SECRET], via=rotation)
        secrets += [secret] if secret is not None else []
        fn = resolve(stack, rotation.inputs.get("rotationLambdaArn"), [T.FUNCTION])
        env = get(fn.inputs, "environment.variables") if fn is not None else None
        env = env if isinstance(env, dict) else {}
        try:
            urls = json.loads(known_str(env.get("URL_SECRETS")) or "{}")
        except ValueError:
            urls = {}
        for arn in urls if isinstance(urls, dict) else {}:
            url_secret = resolve(stack, arn, [T.SECRET])
            secrets += [url_secret] if url_secret is not None else []
        instance = resolve(stack, env.get("DB_INSTANCE_IDENTIFIER"), [T.RDS_INSTANCE])
        instances += [instance] if instance is not None else []
    return secrets, instances


@stack_rule("DEPLOY-ROTATION-ROLLBACK", "Nothing Pulumi manages writes a rotated credential back",
            types=[T.SECRET_VERSION, T.RDS_INSTANCE], source="deploy",
            fix="declare no SecretVersion for a secret its rotation writes (the rotation's first run seeds it) and "
                "ignore_changes=['password'] on the instance whose password it rotates")
def rotation_rollback(stack: StackRecords) -> Found:
    secrets, instances = rotation_owned(stack)
    owned = {s.urn: s for s in secrets}
    for v in stack.of_type(T.SECRET_VERSION):
        secret = resolve(stack, v.inputs.get("secretId"), [T.SECRET], via=v)
        if secret is not None and secret.urn in owned:
            yield v, (f"writes a value into {secret.name}, which a rotation rewrites: once rotations have moved its "
                      "stages away and Secrets Manager has dropped it, a refresh forgets it and the next up "
                      "re-creates it as AWSCURRENT with the first credential")
    for db in instances:
        if db.inputs.get("password") is not None and "password" not in db.ignore_changes:
            yield db, "sets a master password that a rotation changes, without ignore_changes=['password']"


# ---------------------------------------------------------------- replacement

PHYSICAL_NAME_INPUTS = ("name", "bucket", "domainName", "identifier", "replicationGroupId", "functionName",
                        "clusterName")
"""Inputs that fix a resource's physical name (the rest of a replaced resource's identity is AWS-generated)."""


def fixed_name(r: ResourceRecord) -> str | None:
    if not r.custom or not r.type.startswith("aws:"):
        return None
    return next((v for k in PHYSICAL_NAME_INPUTS if (v := known_str(r.inputs.get(k)))), None)


def replacement_needs_a_plan(stack: StackRecords) -> list[ResourceRecord]:
    """Protected (stateful, prod) resources with a fixed name: a change that replaces one must be planned (new name,
    migration), because deleting it first would lose its data and creating first collides with the name."""
    return [r for r in stack if fixed_name(r) and r.protect and not r.delete_before_replace]


@stack_rule("DEPLOY-REPLACE", "A resource with a fixed physical name is replaced by deleting it first",
            types=[v for v in vars(T).values() if isinstance(v, str) and v.startswith("aws:")], source="deploy",
            fix="set delete_before_replace=True (components: child()/stateful()), or leave the name to auto-naming; "
                "only a stateful resource protected in prod may keep create-first (the plan lists it)")
def replace_safely(stack: StackRecords) -> Found:
    for r in stack:
        name = fixed_name(r)
        if name is None or r.delete_before_replace:
            continue
        if stack.stack == "prod" and r.protect:
            continue  # listed by the plan under "replacing needs a plan"
        yield r, f"has the fixed name {name!r}: a replacing change creates the new one first and fails with " \
                 "'already exists'"


# ---------------------------------------------------------------- database connections

def _database_functions(stack: StackRecords) -> list[ResourceRecord]:
    out = []
    for fn in stack.of_type(T.FUNCTION):
        env = get(fn.inputs, "environment.variables")
        if isinstance(env, dict) and DATABASE_ENV in env:
            out.append(fn)
    return out


def _proxy_pools(stack: StackRecords) -> Iterator[tuple[ResourceRecord, ResourceRecord | None, int | None]]:
    """(proxy, its default target group, the data plane's connection budget through it when decidable)."""
    for proxy in stack.of_type(T.RDS_PROXY):
        name = known_str(proxy.inputs.get("name"))
        group = next((g for g in stack.of_type(T.RDS_PROXY_TARGET_GROUP)
                      if g.inputs.get("dbProxyName") in (name, proxy.outputs.get("name"))), None)
        target = next((t for t in stack.of_type(T.RDS_PROXY_TARGET)
                       if t.inputs.get("dbProxyName") in (name, proxy.outputs.get("name"))), None)
        db = resolve(stack, target.inputs.get("dbInstanceIdentifier"), [T.RDS_INSTANCE]) if target else None
        percent = num(get(group.inputs, "connectionPoolConfig.maxConnectionsPercent", 100)) if group else None
        instance_class = known_str(db.inputs.get("instanceClass")) if db is not None else None
        budget = None
        if percent is not None and instance_class is not None:
            try:
                budget = capacity.function_connection_budget(instance_class, int(percent))
            except ValueError:
                budget = None
        yield proxy, group, budget


@stack_rule("DEPLOY-ESM-CONCURRENCY", "SQS consumers of the database are capped within its connection budget",
            types=[T.ESM], source="deploy",
            fix="set scaling_config.maximum_concurrency (2-1000) on every SQS mapping, sized with "
                "infra.capacity.consumer_concurrency from the database's instance class")
def consumer_concurrency(stack: StackRecords) -> Found:
    database_functions = {fn.urn for fn in _database_functions(stack)}
    total, unknown = 0, False
    for m, _q, fn in _sqs_mappings(stack):
        cap = get(m.inputs, "scalingConfig.maximumConcurrency")
        if cap is None:  # unknown until the deploy: decide nothing
            unknown = True
            continue
        value = num(cap)
        if value is None or not capacity.MIN_CONSUMER_CONCURRENCY <= value <= capacity.MAX_CONSUMER_CONCURRENCY:
            yield m, f"has no concurrency cap between 2 and 1000 (got {'none' if cap is MISSING else cap})"
            unknown = True
        elif fn is not None and fn.urn in database_functions:
            total += int(value)
    budgets = [(p, b) for p, _g, b in _proxy_pools(stack) if b is not None]
    if budgets and not unknown:
        proxy, budget = min(budgets, key=lambda pb: pb[1])
        if total > budget:
            yield proxy, (f"its SQS consumers may open {total} connections together; the data plane's share of its "
                          f"pool is {budget}")


@stack_rule("DEPLOY-RDS-PROXY-BORROW", "The proxy's connection-borrow timeout is below its clients' timeouts",
            types=[T.RDS_PROXY_TARGET_GROUP], source="deploy",
            fix="set connection_pool_config.connection_borrow_timeout below the shortest timeout of the functions "
                "that connect through the proxy")
def borrow_timeout(stack: StackRecords) -> Found:
    timeouts = [num(fn.inputs.get("timeout", 3)) for fn in _database_functions(stack)]
    if not timeouts or any(t is None for t in timeouts):
        return
    shortest = min(t for t in timeouts if t is not None)
    for _proxy, group, _budget in _proxy_pools(stack):
        if group is None:
            continue
        borrow = num(get(group.inputs, "connectionPoolConfig.connectionBorrowTimeout", 120))
        if borrow is not None and borrow >= shortest:
            yield group, f"lets a client wait {borrow:g} s for a connection; the shortest client runs {shortest:g} s"
