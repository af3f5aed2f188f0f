"""The installed pulumi-aws SDK as the source of truth about resource types: which class a type token names, and
the camelCase ↔ snake_case names and shapes of its inputs (the SDK's own ``pulumi.getter`` names and type hints).

The mocks ask it whether a type has an ARN at all; the audit renders records as Terraform plans from it.
"""

from __future__ import annotations

import importlib
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import pulumi_aws

Kind = Literal["value", "map", "block", "blocks"]


@cache
def _resource_modules() -> dict[str, tuple[str, str]]:
    """Type token -> (python module, class name), from the registration the SDK itself hands to the Pulumi runtime."""
    source = Path(pulumi_aws.__file__).read_text(encoding="utf-8")
    match = re.search(r'resource_modules="""(.*?)"""', source, re.S)
    if match is None:
        raise RuntimeError("pulumi_aws no longer registers its resource modules where this reads them")
    return {token: (entry["fqn"], cls) for entry in json.loads(match.group(1))
            for token, cls in entry["classes"].items()}


def sdk_class(token: str) -> type | None:
    """The SDK's resource class for an ``aws:`` type token, or None for other packages and unknown tokens."""
    found = _resource_modules().get(token)
    if found is None:
        return None
    return getattr(importlib.import_module(found[0]), found[1])  # type: ignore[no-any-return]


@cache
def has_arn(token: str) -> bool:
    """Whether AWS gives resources of this type an ARN (the SDK class has an ``arn`` output)."""
    cls = sdk_class(token)
    return cls is not None and hasattr(cls, "arn")


@dataclass(frozen=True)
class Field:
    name: str
    """snake_case name in the SDK (the provider's Terraform attribute name before block renames)."""
    kind: Kind
    nested: type | None = None
    """The ``*Args`` class of a block's fields."""


@cache
def fields(args_class: type) -> dict[str, Field]:
    """camelCase input name -> its SDK field, for a resource's or a block's ``*Args`` class."""
    module = importlib.import_module(args_class.__module__)
    out: dict[str, Field] = {}
    for attr, prop in vars(args_class).items():
        getter = getattr(prop, "fget", None)
        camel = getattr(getter, "_pulumi_name", None)
        if camel is None:
            continue
        kind, nested = _shape(getter.__annotations__.get("return"), module)
        out[camel] = Field(name=attr.rstrip("_"), kind=kind, nested=nested)
    return out


def args_class(token: str) -> type | None:
    """The class describing every property of a resource type: its ``_<Name>State`` (inputs and outputs; the name
    the SDK gives it never collides with a block's ``*Args`` class, unlike ``<Name>Args``)."""
    cls = sdk_class(token)
    if cls is None:
        return None
    return getattr(importlib.import_module(cls.__module__), f"_{cls.__name__}State", None)


def _shape(hint: Any, module: Any) -> tuple[Kind, type | None]:
    """Read a getter's type hint: a nested ``*Args`` class is a block, a sequence of them blocks, a Mapping a map."""
    text = str(hint)
    ref = re.search(r"ForwardRef\('(\w+Args)'\)", text)
    if ref is not None:
        nested = getattr(module, ref.group(1), None)
        sequence = text.index("Sequence") < text.index(ref.group(0)) if "Sequence" in text else False
        return ("blocks" if sequence else "block"), nested
    if "Mapping" in text:
        return "map", None
    return "value", None

