"""Shared pieces of the config schema, importable by feature modules without cycles."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Annotated, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from llm_upkeep.redact import register_secret


class ConfigError(Exception):
    """A config problem a person can fix: names the file and the key."""

    def __init__(self, message: str, *, file: str | os.PathLike | None = None, key: str | None = None):
        self.file = str(file) if file is not None else None
        self.key = key
        where = []
        if self.file:
            where.append(self.file)
        if key:
            where.append(f"key '{key}'")
        super().__init__(f"{': '.join(where)}: {message}" if where else message)


class Section(BaseModel):
    """Strict base: an unknown key is an error, so typos do not silently fall back to defaults."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


PositiveFloat = Annotated[float, Field(gt=0)]


def _check_http_url(v: str) -> str:
    if not (v.startswith("http://") or v.startswith("https://")):
        raise ValueError("must start with http:// or https://")
    return v.rstrip("/")


HttpUrl = Annotated[str, AfterValidator(_check_http_url)]
"""A base URL: http(s) only, trailing slash dropped so paths can be joined with '/'."""

T = TypeVar("T")


def require_unique(items: list[T], key: Callable[[T], str], what: str) -> list[T]:
    """Field-validator body for lists keyed by a name: the second use of a name is an error.

    Why: names are what checks, ledgers and history rows are keyed on; two entries with one
    name would silently share (and overwrite) each other's records.
    """
    seen: set[str] = set()
    for item in items:
        k = key(item)
        if k in seen:
            raise ValueError(f"{what} {k!r}")
        seen.add(k)
    return items


def resolve_secret(env_name: str | None, *, key: str, required: bool = True) -> str | None:
    """Read a secret from the environment; the error names the variable, never a value."""
    if not env_name:
        if required:
            raise ConfigError("no environment variable named for this secret", key=key)
        return None
    value = os.environ.get(env_name)
    if not value:
        if required:
            raise ConfigError(f"environment variable {env_name} is not set or empty", key=key)
        return None
    register_secret(value)
    return value


SECRET_ENV_VARS = ("PREFECT_API_KEY", "PREFECT_API_AUTH_STRING", "PREFECT_SERVER_API_AUTH_STRING")
"""Secrets llm-upkeep never reads itself but whose values must not reach a log either."""


def register_config_secrets(model: BaseModel) -> None:
    """Register every secret the config names (fields ending in ``_env``), before any is read.

    Why at load time: a value registered only when read is unknown to a process that never
    reads it (a flow that does not alert still logs a traceback holding the Slack URL).
    """
    names: list[str] = list(SECRET_ENV_VARS)
    stack: list[object] = [model]
    while stack:
        obj = stack.pop()
        if isinstance(obj, BaseModel):
            for field, value in obj:
                if field.endswith("_env") and isinstance(value, str):
                    names.append(value)
                elif field.endswith("_env") and isinstance(value, list):
                    names.extend(v for v in value if isinstance(v, str))
                else:
                    stack.append(value)
        elif isinstance(obj, list | tuple):
            stack.extend(obj)
        elif isinstance(obj, dict):
            stack.extend(obj.values())
    for n in names:
        register_secret(os.environ.get(n))
