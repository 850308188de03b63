"""Shared pieces of the config schema, importable by feature modules without cycles."""

from __future__ import annotations

import os
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

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
