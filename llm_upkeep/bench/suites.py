"""Benchmark suites: YAML files of prompts, each with the checks its answer must pass.

Why data files: the prompts that matter are the user's own jobs; changing one must not need a
code change, and the suite's hash ties every baseline to the exact prompts and checks it ran.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from llm_upkeep.configbase import ConfigError, require_unique

SUITES_DIR = Path(__file__).resolve().parents[2] / "suites"
DEFAULT_SUITE = SUITES_DIR / "default.yaml"
MAX_SUITE_BYTES = 4 * 1024 * 1024


class SuiteError(ConfigError):
    """A suite file a person can fix: names the file and the key (exit code 2 like config errors)."""


class _Check(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str | None = Field(default=None, description="Name in reports (default: type and position).")


class ExactCheck(_Check):
    type: Literal["exact"]
    value: str | list[str] = Field(description="Expected answer (or accepted answers), compared normalized.")


class ContainsCheck(_Check):
    type: Literal["contains"]
    value: str | list[str] = Field(description="Substring(s) the answer must contain.")
    mode: Literal["all", "any"] = Field(default="all", description="All substrings, or at least one.")
    case_sensitive: bool = Field(default=False, description="Compare case-sensitively.")
    negate: bool = Field(default=False, description="Pass when the answer does NOT contain them.")


class RegexCheck(_Check):
    type: Literal["regex"]
    pattern: str = Field(description="Python regular expression searched in the answer.")
    flags: str = Field(default="", description="Any of i (ignore case), m (multiline), s (dot matches all).")
    negate: bool = Field(default=False, description="Pass when the pattern does NOT match.")

    @model_validator(mode="after")
    def _compiles(self) -> RegexCheck:
        if set(self.flags) - set("ims"):
            raise ValueError("flags may only contain i, m, s")
        compile_regex(self.pattern, self.flags)
        return self


class JsonCheck(_Check):
    type: Literal["json"]
    json_schema: dict | None = Field(
        default=None, alias="schema", description="JSON Schema (2020-12) the parsed answer must satisfy."
    )

    @field_validator("json_schema")
    @classmethod
    def _valid_schema(cls, v: dict | None) -> dict | None:
        if v is not None:
            from jsonschema import Draft202012Validator
            from jsonschema.exceptions import SchemaError

            try:
                Draft202012Validator.check_schema(v)
            except SchemaError as exc:
                raise ValueError(f"not a valid JSON Schema: {exc.message}") from None
        return v


class NumericCheck(_Check):
    type: Literal["numeric"]
    value: float = Field(description="Expected number.")
    tolerance: float = Field(default=0.0, ge=0, description="Accepted absolute difference.")
    rel_tolerance: float = Field(default=0.0, ge=0, description="Accepted difference relative to value.")
    pattern: str | None = Field(
        default=None, description="Regex whose first group is the number (default: the first number)."
    )

    @model_validator(mode="after")
    def _compiles(self) -> NumericCheck:
        if self.pattern is not None:
            rx = compile_regex(self.pattern, "")
            if rx.groups < 1:
                raise ValueError("pattern needs a capturing group around the number")
        return self


class SimilarityCheck(_Check):
    type: Literal["similarity"]
    min: float = Field(
        default=0.8, ge=-1, le=1, description="Least cosine similarity to the baseline answer (embeddings)."
    )
    min_lexical: float | None = Field(
        default=None, ge=0, le=1, description="Least lexical similarity when no embeddings (default: min)."
    )


Check = Annotated[
    ExactCheck | ContainsCheck | RegexCheck | JsonCheck | NumericCheck | SimilarityCheck,
    Field(discriminator="type"),
]
CHECK_TYPES = ("exact", "contains", "regex", "json", "numeric", "similarity")


class PromptSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=80, description="Unique id (slug).")
    job: str = Field(default="general", description="Which job this prompt stands for (groups reports).")
    prompt: str = Field(min_length=1, description="The user message / prompt text.")
    system: str | None = Field(default=None, description="System message (default: the suite's).")
    max_tokens: int | None = Field(default=None, gt=0, le=32768, description="Output cap for this prompt.")
    checks: list[Check] = Field(default_factory=list, description="Checks the answer must pass.")

    def check_names(self) -> list[str]:
        return [c.name or f"{c.type}#{i + 1}" for i, c in enumerate(self.checks)]


class Suite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, description="Suite name.")
    description: str = Field(default="", description="What the suite measures.")
    system: str | None = Field(default=None, description="Default system message of every prompt.")
    max_tokens: int | None = Field(default=None, gt=0, le=32768, description="Default output cap.")
    prompts: list[PromptSpec] = Field(min_length=1, description="The prompts.")
    source: str | None = Field(default=None, exclude=True, description="File it was read from.")

    @field_validator("prompts")
    @classmethod
    def _unique_ids(cls, v: list[PromptSpec]) -> list[PromptSpec]:
        return require_unique(v, lambda p: p.id, "duplicate prompt id")

    @property
    def hash(self) -> str:
        """Identity of everything that shapes the answers and their grading (not the description)."""
        data = self.model_dump(mode="json", by_alias=True, exclude={"description", "source"})
        blob = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def prompt(self, prompt_id: str) -> PromptSpec:
        for p in self.prompts:
            if p.id == prompt_id:
                return p
        raise KeyError(prompt_id)

    def system_for(self, p: PromptSpec) -> str | None:
        return p.system if p.system is not None else self.system

    def max_tokens_for(self, p: PromptSpec, default: int) -> int:
        return p.max_tokens or self.max_tokens or default


def compile_regex(pattern: str, flags: str) -> re.Pattern:
    f = 0
    for ch in flags:
        f |= {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL}[ch]
    try:
        return re.compile(pattern, f)
    except re.error as exc:
        raise ValueError(f"invalid regex {pattern!r}: {exc}") from None


def _key(loc: tuple, data: dict) -> str:
    parts: list[str] = []
    prompts = data.get("prompts") if isinstance(data, dict) else None
    for i, item in enumerate(loc):
        if isinstance(item, int):
            label = str(item)
            if parts == ["prompts"] and isinstance(prompts, list) and item < len(prompts):
                pid = prompts[item].get("id") if isinstance(prompts[item], dict) else None
                label = f"{item}:{pid}" if pid else label
            parts[-1:] = [f"{parts[-1]}[{label}]"] if parts else [f"[{label}]"]
        elif i > 0 and item in CHECK_TYPES and isinstance(loc[i - 1], int):
            continue  # the discriminated union's branch name adds nothing for a person
        else:
            parts.append(str(item))
    return ".".join(parts)


def parse_suite(data: object, source: str = "<suite>") -> Suite:
    if not isinstance(data, dict):
        raise SuiteError("a suite is a mapping with 'name' and 'prompts'", file=source)
    try:
        suite = Suite.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check its spelling; see suites/default.yaml)"
        elif err["type"] == "union_tag_invalid":
            msg = f"unknown check type; one of {', '.join(CHECK_TYPES)}"
        more = f" (and {len(exc.errors()) - 1} more problem(s))" if len(exc.errors()) > 1 else ""
        raise SuiteError(msg + more, file=source, key=_key(err["loc"], data)) from None
    suite.source = source
    return suite


def resolve_suite_path(path: str | Path | None, config_source: str | None = None) -> Path:
    """None -> the shipped suite; a relative path is tried next to the config file, then here."""
    if not path:
        return DEFAULT_SUITE
    p = Path(path).expanduser()
    if p.is_absolute():
        return p
    if config_source:
        near = Path(config_source).resolve().parent / p
        if near.exists():
            return near
    return Path.cwd() / p


def load_suite(path: str | Path | None = None, *, config_source: str | None = None) -> Suite:
    p = resolve_suite_path(path, config_source)
    try:
        if p.stat().st_size > MAX_SUITE_BYTES:
            raise SuiteError(f"suite file larger than {MAX_SUITE_BYTES} bytes", file=p)
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SuiteError("suite file not found", file=p, key="benchmark.suite") from None
    except OSError as exc:
        raise SuiteError(f"cannot read suite: {exc.strerror}", file=p) from None
    except UnicodeDecodeError:
        raise SuiteError("suite file is not UTF-8 text", file=p) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise SuiteError(f"not valid YAML{where}: {getattr(exc, 'problem', exc)}", file=p) from None
    return parse_suite(data, source=str(p))
