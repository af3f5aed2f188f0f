"""Environment configuration with defaults in code, so a missing variable never stops a function.

A present but invalid value is an error that names the variable, so a bad deploy fails loudly at the first invocation
instead of running with a silently different limit.
"""

from __future__ import annotations

import os


class ConfigError(ValueError):
    """A configuration variable is missing or invalid; the message names it."""


def env_str(name: str, default: str | None = None) -> str:
    """The variable's value; ``default`` when absent or empty; ConfigError when both are missing."""
    value = os.environ.get(name, "").strip()
    if value:
        return value
    if default is None:
        raise ConfigError(f"environment variable {name} is required but not set")
    return default


def env_int(name: str, default: int, *, minimum: int | None = 0) -> int:
    """An integer variable (``default`` when absent or empty); values below ``minimum`` are rejected."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name} must be an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ConfigError(f"environment variable {name} must be >= {minimum}, got {value}")
    return value
