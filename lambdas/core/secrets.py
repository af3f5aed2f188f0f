"""Secrets fetched by ARN from Secrets Manager once per cold start.

The environment holds only ARNs, never values; caching keeps warm invocations off the Secrets Manager API.
A rotated secret is picked up by the next cold start (RDS Proxy keeps accepting the old credentials meanwhile).
"""

from __future__ import annotations

from core import aws

_cache: dict[str, str] = {}


class SecretError(RuntimeError):
    """A secret could not be read; the message names the ARN (never the value)."""


def get_secret_string(arn: str) -> str:
    """The secret's ``SecretString``, cached per ARN for the life of the execution environment."""
    if arn in _cache:
        return _cache[arn]
    try:
        response = aws.client("secretsmanager").get_secret_value(SecretId=arn)
    except Exception as exc:  # botocore raises many types; all mean the same to the caller
        raise SecretError(f"cannot read secret {arn}: {exc}") from exc
    value = response.get("SecretString")
    if not value:
        raise SecretError(f"secret {arn} has no SecretString (binary secrets are not supported)")
    _cache[arn] = value
    return value


def clear_cache() -> None:
    """Forget cached values (tests; a forced refresh after an authentication failure)."""
    _cache.clear()
