"""prefect.yaml as data, and `llm-upkeep deploy`.

prefect.yaml is the one registry of deployments: `serve`, `deploy`, the fleet and the demo all
read it through :func:`load_deployments`, so a schedule is written once. Registering with a
server goes through `prefect deploy --all` (Prefect's own templating and pull steps) on a
rendered copy of the file, because with several deployments that command ignores its --pool
option and the fleet adds per-host deployments that the checked-in file does not list.

Prefect is imported inside the functions that talk to a server, so reading and validating the
registry stays cheap and Prefect-free.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from llm_upkeep.configbase import ConfigError
from llm_upkeep.redact import redact

PROJECT_ENV = "LLM_UPKEEP_PROJECT_DIR"
PREFECT_FILE = "prefect.yaml"


class ScheduleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cron: str | None = Field(default=None, description="Cron expression (5 fields).")
    interval: float | None = Field(default=None, gt=0, description="Interval in seconds.")
    rrule: str | None = Field(default=None, description="iCal recurrence rule.")
    anchor_date: str | None = Field(default=None, description="Start of an interval schedule.")
    day_or: bool | None = Field(default=None, description="Cron day-of-month/day-of-week OR semantics.")
    timezone: str = Field(description="IANA timezone the schedule is read in (always explicit).")
    active: bool = Field(default=True, description="False: registered but paused until enabled.")
    parameters: dict[str, Any] = Field(
        default_factory=dict, description="Parameter overrides for runs of this schedule."
    )
    slug: str | None = Field(default=None, description="Stable identifier of the schedule.")

    @model_validator(mode="after")
    def _one_kind(self) -> ScheduleSpec:
        kinds = [k for k in ("cron", "interval", "rrule") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("exactly one of cron, interval or rrule is required")
        return self

    def describe(self) -> str:
        what = self.cron or self.rrule or f"every {self.interval:g} s"
        return f"{what} ({self.timezone}){'' if self.active else ' inactive'}"


class WorkPoolRef(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str = Field(description="Work pool the deployment's runs go to.")
    work_queue_name: str | None = Field(default=None, description="Queue within the pool (None: default).")
    job_variables: dict[str, Any] = Field(default_factory=dict, description="Job variable overrides.")


class DeploymentSpec(BaseModel):
    """One entry of prefect.yaml's `deployments:`; keys we do not use pass through unchanged."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1, description="Deployment name, unique within the file.")
    entrypoint: str = Field(description="path/to/file.py:flow_function, relative to the project dir.")
    description: str | None = Field(default=None, description="Shown in the UI.")
    tags: list[str] = Field(default_factory=list, description="Tags of the deployment and its runs.")
    parameters: dict[str, Any] = Field(default_factory=dict, description="Default parameters of runs.")
    work_pool: WorkPoolRef | None = Field(default=None, description="Where a worker picks runs up.")
    schedules: list[ScheduleSpec] = Field(default_factory=list, description="When runs are created.")

    @model_validator(mode="after")
    def _check_entrypoint(self) -> DeploymentSpec:
        path, sep, func = self.entrypoint.rpartition(":")
        if not sep or not path.endswith(".py") or not func.isidentifier():
            raise ValueError("entrypoint must look like path/to/file.py:flow_function")
        return self

    @property
    def module(self) -> str:
        return self.entrypoint.rpartition(":")[0].removesuffix(".py").replace("/", ".")

    @property
    def function(self) -> str:
        return self.entrypoint.rpartition(":")[2]

    def to_yaml(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


def project_dir(explicit: str | os.PathLike | None = None) -> Path:
    """--project-dir, else $LLM_UPKEEP_PROJECT_DIR, else the checkout this package runs from, else cwd."""
    candidates: list[tuple[Path, str]] = []
    if explicit:
        candidates.append((Path(explicit), "--project-dir"))
    elif os.environ.get(PROJECT_ENV):
        candidates.append((Path(os.environ[PROJECT_ENV]), f"${PROJECT_ENV}"))
    else:
        candidates.append((Path(__file__).resolve().parent.parent, "the installed checkout"))
        candidates.append((Path.cwd(), "the current directory"))
    for path, _ in candidates:
        if (path / PREFECT_FILE).is_file():
            return path.resolve()
    where = ", ".join(f"{p} ({why})" for p, why in candidates)
    raise ConfigError(f"no {PREFECT_FILE} found in {where}", key="project_dir")


def read_document(root: Path) -> dict[str, Any]:
    path = root / PREFECT_FILE
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", file=path) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file=path) from None
    if not isinstance(doc, dict):
        raise ConfigError("expected a mapping at the top level", file=path)
    return doc


def load_deployments(root: Path, doc: dict[str, Any] | None = None) -> list[DeploymentSpec]:
    """Validated deployments of prefect.yaml; a broken entry names its key."""
    path = root / PREFECT_FILE
    doc = read_document(root) if doc is None else doc
    raw = doc.get("deployments") or []
    if not isinstance(raw, list):
        raise ConfigError("must be a list", file=path, key="deployments")
    specs: list[DeploymentSpec] = []
    seen: set[str] = set()
    for i, d in enumerate(raw):
        try:
            spec = DeploymentSpec.model_validate(d)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(x) for x in err["loc"])
            key = f"deployments[{i}]" + (f".{loc}" if loc else "")
            raise ConfigError(err["msg"], file=path, key=key) from None
        if spec.name in seen:
            raise ConfigError(
                f"duplicate deployment name {spec.name!r}", file=path, key=f"deployments[{i}].name"
            )
        seen.add(spec.name)
        specs.append(spec)
    return specs


def import_flow(spec: DeploymentSpec, root: Path):
    """The Flow object behind an entrypoint, imported as a module of the project."""
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        module = importlib.import_module(spec.module)
    except ImportError as exc:
        raise ConfigError(f"cannot import {spec.module}: {exc}", file=root / PREFECT_FILE,
                          key=f"{spec.name}.entrypoint") from None  # fmt: skip
    obj = getattr(module, spec.function, None)
    if obj is None or not hasattr(obj, "fn"):
        raise ConfigError(f"{spec.entrypoint} is not a Prefect flow", file=root / PREFECT_FILE,
                          key=f"{spec.name}.entrypoint")  # fmt: skip
    return obj


def flow_parameters(flow) -> dict[str, inspect.Parameter]:
    return dict(inspect.signature(flow.fn).parameters)


def with_config_path(spec: DeploymentSpec, flow, config_path: str | None) -> dict[str, Any]:
    """The deployment's parameters, plus config_path when the flow takes one and none is set."""
    params = dict(spec.parameters)
    if config_path and "config_path" in flow_parameters(flow):
        params.setdefault("config_path", str(Path(config_path).resolve()))
    return params


def render_document(doc: dict[str, Any], specs: list[DeploymentSpec], pool: str | None = None) -> dict:
    """A prefect.yaml with these deployments (anchors resolved), every one sent to `pool` if given."""
    out = {k: copy.deepcopy(v) for k, v in doc.items() if k not in ("deployments", "definitions")}
    deployments = []
    for s in specs:
        d = s.to_yaml()
        if pool:
            d.setdefault("work_pool", {})["name"] = pool
        deployments.append(d)
    out["deployments"] = deployments
    return out


# ---------------------------------------------------------------- registering with a server


@dataclass
class DeployReport:
    api_url: str
    pools: list[str]
    created_pools: list[str]
    deployments: list[dict[str, Any]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    output: str = ""

    @property
    def ok(self) -> bool:
        return not self.missing

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "api_url": self.api_url,
            "pools": self.pools,
            "created_pools": self.created_pools,
            "deployments": self.deployments,
            "missing": self.missing,
            **({"error": self.error_line()} if not self.ok else {}),
        }

    def error_line(self) -> str:
        """prefect deploy's own last error line, so a JSON consumer learns why without the whole log."""
        lines = [ln.strip() for ln in self.output.splitlines() if ln.strip()]
        errs = [ln for ln in lines if "error" in ln.lower() or "exception" in ln.lower()]
        return (errs or lines or ["prefect deploy registered only part of the deployments"])[-1][:500]


class DeployError(Exception):
    """Registering failed in a way a person can act on (server down, prefect deploy refused)."""


def api_url() -> str:
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        raise DeployError(
            "PREFECT_API_URL is not set: point it at your Prefect server, e.g. "
            "export PREFECT_API_URL=http://127.0.0.1:4200/api"
        )
    return url


async def ensure_process_pool(name: str) -> bool:
    """Create a process work pool unless it exists; True when it was created."""
    from prefect import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound
    from prefect.workers.process import ProcessWorker

    async with get_client() as client:
        try:
            pool = await client.read_work_pool(name)
        except ObjectNotFound:
            template = ProcessWorker.get_default_base_job_template()
            await client.create_work_pool(
                WorkPoolCreate(name=name, type="process", base_job_template=template)
            )
            return True
        if pool.type != "process":
            raise DeployError(f"work pool {name!r} exists with type {pool.type!r}, not 'process'")
        return False


async def read_registered(names: list[str]) -> dict[str, Any]:
    """Deployments on the server by name, with schedules and pool, as plain data."""
    from prefect import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    async with get_client() as client:
        found = await client.read_deployments(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=names))
        )
        flows = {f.id: f.name for f in await client.read_flows()}
    out: dict[str, Any] = {}
    for d in found:
        out[d.name] = {
            "name": d.name,
            "flow": flows.get(d.flow_id),
            "work_pool": d.work_pool_name,
            "work_queue": d.work_queue_name,
            "parameters": d.parameters,
            "pull_steps": d.pull_steps,
            "schedules": [
                {
                    "schedule": getattr(s.schedule, "cron", None)
                    or getattr(s.schedule, "rrule", None)
                    or str(getattr(s.schedule, "interval", "")),
                    "timezone": getattr(s.schedule, "timezone", None),
                    "active": s.active,
                }
                for s in d.schedules
            ],
        }
    return out


def deploy_project(
    root: Path,
    specs: list[DeploymentSpec],
    *,
    pool: str | None = None,
    timeout_s: float = 600.0,
) -> DeployReport:
    """Register `specs` with the server at PREFECT_API_URL via `prefect deploy --all`."""
    import asyncio

    url = api_url()
    if not specs:
        raise DeployError(f"{root / PREFECT_FILE} lists no deployments")
    doc = read_document(root)
    rendered = render_document(doc, specs, pool)
    pools = sorted({d["work_pool"]["name"] for d in rendered["deployments"] if d.get("work_pool")})
    if len(pools) < len(rendered["deployments"]) and not pools:
        raise DeployError("no work pool named: pass --pool NAME or set work_pool in prefect.yaml")
    created: list[str] = []
    try:
        for p in pools:
            if asyncio.run(ensure_process_pool(p)):
                created.append(p)
    except DeployError:
        raise
    except Exception as exc:  # httpx / Prefect errors: server down, bad URL, no or wrong credentials
        if "401" in str(exc):
            raise DeployError(f"the Prefect server at {redact(url)} refused the request (401 Unauthorized): set "
                              "PREFECT_API_AUTH_STRING to the server's PREFECT_SERVER_API_AUTH_STRING") from None  # fmt: skip
        raise DeployError(f"cannot reach the Prefect server at {redact(url)}: {redact(exc)}") from None

    env = dict(os.environ, **{PROJECT_ENV: str(root)})
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    with tempfile.TemporaryDirectory(prefix="llm-upkeep-deploy-") as tmp:
        path = Path(tmp) / PREFECT_FILE
        path.write_text(yaml.safe_dump(rendered, sort_keys=False), encoding="utf-8")
        cmd = [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all", "--prefect-file", str(path)]
        try:
            proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise DeployError(f"prefect deploy did not finish within {timeout_s:.0f} s") from None
    output = redact((proc.stdout or "") + (proc.stderr or ""))
    names = [d["name"] for d in rendered["deployments"]]
    for _ in range(3):  # the server may need a moment to make the last one readable
        registered = asyncio.run(read_registered(names))
        if len(registered) == len(names):
            break
        time.sleep(1)
    report = DeployReport(api_url=url, pools=pools, created_pools=created, output=output)
    report.deployments = [registered[n] for n in names if n in registered]
    report.missing = [n for n in names if n not in registered]
    if proc.returncode != 0 and not report.missing:
        report.missing = ["(prefect deploy failed)"]
    return report
