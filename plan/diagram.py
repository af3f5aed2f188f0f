"""The architecture diagram, derived from a stack's records: ``python -m plan dev --diagram``.

Nodes are the resources a reader looks for (stores, queues, topics, functions, rules, NAT gateways), grouped by subnet
tier and by component. Everything else is plumbing and folds into the node that owns it: the nearest node it references
or is referenced by inside its component (a function's role, policy, log group and alarms; a bucket's policy and
versioning), else the component itself (a service role's component becomes one "service" node). Edges come from the
records alone: triggers (S3 notifications, EventBridge patterns and targets, event source mappings, SNS subscriptions,
rotation schedules), dead-letter routes (redrive policies, rule-target DLQs, on-failure destinations) and every data
grant of every IAM policy, its actions mapped to verbs and its resource ARNs resolved to the records that own them.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from infra.records import ResourceRecord, StackRecords
from policy.helpers import actions, allows, parse_doc, refs, resources, statements, strings_in

NODE_KINDS: dict[str, str] = {
    "aws:s3/bucket:Bucket": "store",
    "aws:dynamodb/table:Table": "store",
    "aws:opensearch/domain:Domain": "store",
    "aws:rds/instance:Instance": "store",
    "aws:rds/cluster:Cluster": "store",
    "aws:elasticache/replicationGroup:ReplicationGroup": "store",
    "aws:elasticache/cluster:Cluster": "store",
    "aws:sqs/queue:Queue": "queue",
    "aws:sns/topic:Topic": "topic",
    "aws:lambda/function:Function": "function",
    "aws:cloudwatch/eventRule:EventRule": "rule",
    "aws:scheduler/schedule:Schedule": "rule",
    "aws:ec2/natGateway:NatGateway": "gateway",
}
"""Type token -> node kind. Every other type is plumbing of the node that owns it."""

SUBNET = "aws:ec2/subnet:Subnet"
INTERNET_GATEWAY = "aws:ec2/internetGateway:InternetGateway"
BUCKET = "aws:s3/bucket:Bucket"
RULE = "aws:cloudwatch/eventRule:EventRule"
FUNCTION = "aws:lambda/function:Function"
ROLE = "aws:iam/role:Role"
TIERS = ("public subnets", "private subnets", "outside the VPC")

# Action pattern -> verb (first match wins). None: plumbing the diagram does not draw (keys, logs, tracing, metrics,
# network interfaces, queue attribute lookups): each accompanies a data grant that is drawn.
VERBS: tuple[tuple[str, str | None], ...] = (
    ("kms:*", None), ("logs:*", None), ("xray:*", None), ("cloudwatch:*", None), ("ec2:*", None),
    ("sqs:GetQueueAttributes", None), ("sqs:GetQueueUrl", None),
    ("sqs:SendMessage*", "sends"), ("sqs:ReceiveMessage", "consumes"), ("sqs:DeleteMessage*", "consumes"),
    ("sqs:ChangeMessageVisibility*", "consumes"), ("sns:Publish", "sends"), ("lambda:InvokeFunction", "invokes"),
    ("rds-db:connect", "connects"), ("elasticache:Connect", "connects"),
    ("es:ESHttpGet", "reads"), ("es:ESHttpHead", "reads"), ("es:ESHttpDelete", "deletes"), ("es:ESHttp*", "writes"),
    ("s3:Replicate*", "replicates"),
    ("*:Delete*", "deletes"), ("*:Put*", "writes"), ("*:BatchWrite*", "writes"), ("*:Update*", "writes"),
    ("*:Create*", "writes"), ("*:AbortMultipartUpload", "writes"), ("*:RotateSecret", "writes"),
    ("*:Get*", "reads"), ("*:List*", "reads"), ("*:Describe*", "reads"), ("*:Query", "reads"), ("*:Scan", "reads"),
    ("*:BatchGet*", "reads"), ("*:ConditionCheck*", "reads"), ("*:Head*", "reads"),
)

EDGE_ORDER = {"trigger": 0, "dlq": 1, "grant": 2}
ARROWS = {"trigger": "-->", "dlq": "==>", "grant": "-.->"}
SHAPES = {"store": ('[("', '")]'), "queue": ('[/"', '"/]'), "topic": ('{{"', '"}}'), "function": ('[["', '"]]'),
          "rule": ('(["', '"])'), "gateway": ('>"', '"]'), "component": ('["', '"]')}


@dataclass(frozen=True, order=True)
class Node:
    tier: str
    group: str
    """The component the node belongs to (``name (Type)``), or ``stack`` for top-level resources."""
    label: str
    id: str
    kind: str


@dataclass(frozen=True, order=True)
class Edge:
    kind: str
    """``trigger``, ``dlq`` or ``grant``."""
    source: str
    target: str
    label: str


@dataclass(frozen=True)
class Diagram:
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]

    def node(self, label: str) -> Node:
        found = [n for n in self.nodes if n.label.split("<br/>")[0] == label]
        if len(found) != 1:
            raise KeyError(f"{len(found)} nodes labelled {label!r}")
        return found[0]

    def edges_between(self, source: str, target: str) -> list[Edge]:
        s, t = self.node(source).id, self.node(target).id
        return [e for e in self.edges if e.source == s and e.target == t]


def verb(action: str) -> str | None:
    for pattern, name in VERBS:
        if fnmatch.fnmatchcase(action, pattern):
            return name
    return action


def _node_id(name: str) -> str:
    return "n_" + re.sub(r"[^A-Za-z0-9_]", "_", name)


def _component_label(rec: ResourceRecord) -> str:
    return f"{rec.name} ({rec.type.rsplit(':', 1)[-1]})"


@dataclass
class _Derivation:
    stack: StackRecords
    by_urn: dict[str, ResourceRecord] = field(init=False)
    by_ref: dict[str, list[ResourceRecord]] = field(init=False)
    links: dict[str, set[str]] = field(init=False)
    """URN -> URNs it references or is referenced by (undirected), within custom resources."""
    order: dict[str, int] = field(init=False)
    owners: dict[str, str | None] = field(default_factory=dict)
    nodes: dict[str, Node] = field(default_factory=dict)
    """URN of the owning record (or component) -> node."""
    edges: set[Edge] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.by_urn = {r.urn: r for r in self.stack}
        # Ties break by type and name, never by registration order (the engine registers on a thread pool).
        self.order = {r.urn: i for i, r in enumerate(sorted(self.stack, key=lambda r: (r.type, r.name, r.urn)))}
        self.by_ref = {}
        for r in self.stack:
            if r.custom:
                for ref in refs(r):
                    self.by_ref.setdefault(ref, []).append(r)
        # A value several records answer to (an EventTarget echoes its target's ARN) names the node record first.
        for found in self.by_ref.values():
            found.sort(key=lambda r: (r.type not in NODE_KINDS, self.order[r.urn]))
        self.links = {r.urn: set() for r in self.stack}
        for r in self.stack:
            if not r.custom:
                continue
            for value in strings_in(r.inputs):
                for target in self.by_ref.get(value, ()):
                    if target.urn != r.urn:
                        self.links[r.urn].add(target.urn)
                        self.links[target.urn].add(r.urn)

    # ---------------------------------------------------------------- ownership

    def component(self, rec: ResourceRecord) -> ResourceRecord | None:
        parent = self.by_urn.get(rec.parent or "")
        while parent is not None and parent.custom:
            parent = self.by_urn.get(parent.parent or "")
        return parent

    def resolve(self, value: Any, *types: str) -> ResourceRecord | None:
        """The record an ARN/name/id points at (of one of ``types`` when given: names repeat across types); ARN
        paths (``bucket/*``, ``table/x/index/*``, ``log-group:x:*``) are shortened until they name a record."""
        if not isinstance(value, str) or not value or value == "*":
            return None
        candidate = value.removesuffix(":*")
        while candidate:
            found = [r for r in self.by_ref.get(candidate, ()) if not types or r.type in types]
            if found:
                return found[0]
            if "/" not in candidate:
                return None
            candidate = candidate.rsplit("/", 1)[0]
        return None

    def owner(self, rec: ResourceRecord) -> str | None:
        """URN of the record (or component) whose node stands for ``rec``."""
        if rec.urn not in self.owners:
            self.owners[rec.urn] = self._owner(rec)
        return self.owners[rec.urn]

    def _owner(self, rec: ResourceRecord) -> str | None:
        if rec.type in NODE_KINDS:
            return rec.urn
        comp = self.component(rec)
        if comp is None:
            direct = {u for u in self.links[rec.urn] if self.by_urn[u].type in NODE_KINDS}
            return direct.pop() if len(direct) == 1 else None
        seen, frontier = {rec.urn}, deque([rec.urn])
        while frontier:
            level = sorted((u for urn in frontier for u in self.links[urn]
                            if u not in seen and self.component(self.by_urn[u]) == comp), key=self.order.__getitem__)
            frontier = deque()
            for urn in dict.fromkeys(level):
                seen.add(urn)
                frontier.append(urn)
            found = [u for u in frontier if self.by_urn[u].type in NODE_KINDS]
            if found:
                return found[0]
        members = [r for r in self.stack if r.type in NODE_KINDS and self.component(r) == comp]
        return members[0].urn if len(members) == 1 else comp.urn

    def node_for(self, rec: ResourceRecord | None) -> Node | None:
        if rec is None:
            return None
        urn = self.owner(rec)
        if urn is None:
            return None
        if urn not in self.nodes:
            owner = self.by_urn[urn]
            comp = owner if not owner.custom else self.component(owner)
            kind = NODE_KINDS.get(owner.type, "component")
            label = owner.name if owner.custom else _component_label(owner)
            schedule = owner.inputs.get("scheduleExpression")
            if isinstance(schedule, str):
                label += f"<br/>{schedule}"
            self.nodes[urn] = Node(tier=self.tier(owner), group=_component_label(comp) if comp else "stack",
                                   label=label, id=_node_id(f"{kind}_{owner.name}"),
                                   kind=kind)
        return self.nodes[urn]

    # ---------------------------------------------------------------- tiers

    def subnets_of(self, rec: ResourceRecord) -> list[ResourceRecord]:
        found: dict[str, ResourceRecord] = {}
        for value in strings_in(rec.inputs):
            for target in self.by_ref.get(value, ()):
                if target.type == SUBNET:
                    found[target.urn] = target
                elif "subnetIds" in target.inputs:  # a subnet group
                    for sub in strings_in(target.inputs["subnetIds"]):
                        subnet = self.resolve(sub, SUBNET)
                        if subnet is not None:
                            found[subnet.urn] = subnet
        return list(found.values())

    def is_public(self, subnet: ResourceRecord) -> bool:
        """A subnet is public when its route table sends traffic to an internet gateway."""
        for assoc in self.stack.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation"):
            if self.resolve(assoc.inputs.get("subnetId"), SUBNET) is not subnet:
                continue
            table = self.resolve(assoc.inputs.get("routeTableId"), "aws:ec2/routeTable:RouteTable")
            for route in (table.inputs.get("routes") or []) if table else []:
                if isinstance(route, dict) and self.resolve(route.get("gatewayId"), INTERNET_GATEWAY):
                    return True
        return False

    def tier(self, rec: ResourceRecord) -> str:
        members = [rec] if rec.custom else [r for r in self.stack if self.component(r) == rec]
        subnets = [s for r in members for s in self.subnets_of(r)]
        if not subnets:
            return TIERS[2]
        return TIERS[0] if any(self.is_public(s) for s in subnets) else TIERS[1]

    # ---------------------------------------------------------------- edges

    def edge(self, kind: str, source: ResourceRecord | None, target: ResourceRecord | None, label: str) -> None:
        if source is None or target is None or self.owner(source) is None or self.owner(target) is None:
            return
        s, t = self.node_for(source), self.node_for(target)
        if s is not None and t is not None and s.id != t.id:
            self.edges.add(Edge(kind=kind, source=s.id, target=t.id, label=label))

    def triggers(self) -> None:
        for n in self.stack.of_type("aws:s3/bucketNotification:BucketNotification"):
            bucket = self.resolve(n.inputs.get("bucket"), BUCKET)
            for key, arn_key in (("lambdaFunctions", "lambdaFunctionArn"), ("queues", "queueArn"),
                                 ("topics", "topicArn")):
                for item in n.inputs.get(key) or []:
                    self.edge("trigger", bucket, self.resolve(item.get(arn_key)), "S3 notification")
        for rule in self.stack.of_type("aws:cloudwatch/eventRule:EventRule"):
            pattern = parse_doc(rule.inputs.get("eventPattern"))
            for value in sorted(set(strings_in(pattern))) if pattern else []:
                source = self.resolve(value, *NODE_KINDS)
                if source is not None and source.urn != rule.urn:
                    self.edge("trigger", source, rule, "EventBridge event")
        for target in self.stack.of_type("aws:cloudwatch/eventTarget:EventTarget"):
            rule_rec = self.resolve(target.inputs.get("rule"), RULE)
            self.edge("trigger", rule_rec, self.resolve(target.inputs.get("arn")), "rule target")
            dead = target.inputs.get("deadLetterConfig") or {}
            self.edge("dlq", rule_rec, self.resolve(dead.get("arn")), "DLQ")
        for m in self.stack.of_type("aws:lambda/eventSourceMapping:EventSourceMapping"):
            source = self.resolve(m.inputs.get("eventSourceArn"))
            self.edge("trigger", source, self.resolve(m.inputs.get("functionName"), FUNCTION), "event source mapping")
        for sub in self.stack.of_type("aws:sns/topicSubscription:TopicSubscription"):
            self.edge("trigger", self.resolve(sub.inputs.get("topic")), self.resolve(sub.inputs.get("endpoint")),
                      f"{sub.inputs.get('protocol', 'SNS')} subscription")
        for rot in self.stack.of_type("aws:secretsmanager/secretRotation:SecretRotation"):
            self.edge("trigger", self.resolve(rot.inputs.get("secretId")),
                      self.resolve(rot.inputs.get("rotationLambdaArn")), "rotation schedule")

    def dead_letters(self) -> None:
        for q in self.stack.of_type("aws:sqs/queue:Queue"):
            redrive = parse_doc(q.inputs.get("redrivePolicy"))
            if redrive:
                self.edge("dlq", q, self.resolve(redrive.get("deadLetterTargetArn")), "DLQ")
        for fn in self.stack.of_type("aws:lambda/function:Function"):
            dead = fn.inputs.get("deadLetterConfig") or {}
            self.edge("dlq", fn, self.resolve(dead.get("targetArn")), "DLQ")
        for kind in ("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig",
                     "aws:lambda/eventSourceMapping:EventSourceMapping"):
            for cfg in self.stack.of_type(kind):
                failure = ((cfg.inputs.get("destinationConfig") or {}).get("onFailure") or {})
                destination = failure.get("destination") or failure.get("destinationArn")
                self.edge("dlq", self.resolve(cfg.inputs.get("functionName"), FUNCTION), self.resolve(destination),
                          "on failure")

    def policies(self) -> Iterable[tuple[ResourceRecord, Any]]:
        """(role, policy document) for inline role policies, attached customer policies and inline blocks."""
        for rp in self.stack.of_type("aws:iam/rolePolicy:RolePolicy"):
            role = self.resolve(rp.inputs.get("role"), ROLE)
            if role is not None:
                yield role, rp.inputs.get("policy")
        for att in self.stack.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment"):
            role = self.resolve(att.inputs.get("role"), ROLE)
            policy = self.resolve(att.inputs.get("policyArn"), "aws:iam/policy:Policy")
            if role is not None and policy is not None:
                yield role, policy.inputs.get("policy")
        for role in self.stack.of_type(ROLE):
            for inline in role.inputs.get("inlinePolicies") or []:
                yield role, inline.get("policy") if isinstance(inline, dict) else None

    def grants(self) -> None:
        verbs: dict[tuple[str, str], set[str]] = {}
        for role, document in self.policies():
            principal = self.node_for(role)
            if principal is None:
                continue
            for stmt in statements(parse_doc(document)):
                if not allows(stmt):
                    continue
                names = {v for v in (verb(a) for a in actions(stmt)) if v}
                for arn in resources(stmt) if names else ():
                    rec = self.resolve(arn)
                    target = self.node_for(rec)
                    if rec is None or target is None or target.id == principal.id:
                        continue
                    suffix = " secret" if rec.type == "aws:secretsmanager/secret:Secret" else ""
                    verbs.setdefault((principal.id, target.id), set()).update(n + suffix for n in names)
        # A grant that only enables an edge already drawn folds into it: a mapping's consumer consumes its queue,
        # a function sends to its on-failure queue.
        folded: dict[tuple[str, str], set[str]] = {}
        for e in self.edges:
            if e.kind == "trigger":
                folded.setdefault((e.target, e.source), set()).add("consumes")
            if e.kind == "dlq":
                folded.setdefault((e.source, e.target), set()).add("sends")
        for (source_id, target_id), names in verbs.items():
            left = names - folded.get((source_id, target_id), set())
            if left:
                self.edges.add(Edge(kind="grant", source=source_id, target=target_id, label=", ".join(sorted(left))))


def derive(stack: StackRecords) -> Diagram:
    """The stack's nodes and edges. A component stands as a node only when an edge needs it."""
    d = _Derivation(stack)
    for rec in stack:
        if rec.type in NODE_KINDS:
            d.node_for(rec)
    d.triggers()
    d.dead_letters()
    d.grants()
    linked = {e.source for e in d.edges} | {e.target for e in d.edges}
    nodes = [n for n in d.nodes.values() if n.kind != "component" or n.id in linked]
    return Diagram(nodes=tuple(sorted(nodes, key=lambda n: (TIERS.index(n.tier), n.group, n.label))),
                   edges=tuple(sorted(d.edges, key=lambda e: (EDGE_ORDER[e.kind], e.source, e.target, e.label))))


def render(diagram: Diagram, *, title: str | None = None) -> str:
    """Mermaid flowchart: tier subgraphs holding component subgraphs; triggers ``-->``, DLQ routes ``==>``,
    grants ``-.->``."""
    out = ["flowchart LR"]
    if title:
        out.insert(0, f"---\ntitle: {title}\n---")
    for t_index, tier in enumerate(TIERS):
        in_tier = [n for n in diagram.nodes if n.tier == tier]
        if not in_tier:
            continue
        out.append(f'  subgraph t{t_index}["{tier}"]')
        groups = sorted({n.group for n in in_tier})
        for g_index, group in enumerate(groups):
            out.append(f'    subgraph t{t_index}g{g_index}["{group}"]')
            for n in (n for n in in_tier if n.group == group):
                start, end = SHAPES[n.kind]
                out.append(f"      {n.id}{start}{n.label}{end}")
            out.append("    end")
        out.append("  end")
    for e in diagram.edges:
        out.append(f"  {e.source} {ARROWS[e.kind]}|{e.label}| {e.target}")
    return "\n".join(out)


def diff(a: Diagram, b: Diagram, a_name: str, b_name: str) -> list[str]:
    """Nodes and edges only in one stack's diagram (nodes by id, edges by kind, ends and label)."""
    lines: list[str] = []
    nodes_a, nodes_b = {n.id: n for n in a.nodes}, {n.id: n for n in b.nodes}
    labels = {n.id: n.label.split("<br/>")[0] for n in (*a.nodes, *b.nodes)}
    for ids, name in ((nodes_a.keys() - nodes_b.keys(), a_name), (nodes_b.keys() - nodes_a.keys(), b_name)):
        lines += [f"{'-' if name == a_name else '+'} node only in {name}: {labels[i]} ({(nodes_a | nodes_b)[i].kind})"
                  for i in sorted(ids)]
    for i in sorted(nodes_a.keys() & nodes_b.keys()):
        if nodes_a[i].tier != nodes_b[i].tier:
            lines.append(f"~ node {labels[i]}: {nodes_a[i].tier} -> {nodes_b[i].tier}")
    edges_a, edges_b = set(a.edges), set(b.edges)
    for edges, name in ((edges_a - edges_b, a_name), (edges_b - edges_a, b_name)):
        lines += [f"{'-' if name == a_name else '+'} {e.kind} only in {name}: {labels[e.source]} -> "
                  f"{labels[e.target]} ({e.label})" for e in sorted(edges)]
    return lines


def to_json(diagram: Diagram) -> dict[str, Any]:
    return json.loads(json.dumps({"nodes": [n.__dict__ for n in diagram.nodes],
                                  "edges": [e.__dict__ for e in diagram.edges]}))
