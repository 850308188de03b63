"""Which endpoints have managed models, and where each one's store, versions and switch live."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from llm_upkeep.config import Config, EndpointConfig
from llm_upkeep.configbase import ConfigError
from llm_upkeep.models.config import ModelEndpoint

LOCK_NAME = "models.lock"


def _path(p: str | None) -> Path | None:
    return Path(os.path.expanduser(p)) if p else None


@dataclass
class Managed:
    """One endpoint whose models llm-upkeep pins, verifies and switches."""

    endpoint: EndpointConfig
    settings: ModelEndpoint
    store: str  # "ollama" | "files"
    models_dir: Path | None = None  # ollama
    versions_dir: Path | None = None  # files
    active_link: Path | None = None  # files, symlink selector
    env_file: Path | None = None  # files, env-file selector
    env_var: str = "LLM_MODEL_PATH"

    @property
    def name(self) -> str:
        return self.endpoint.name

    @property
    def selector(self) -> str:
        if self.store == "ollama":
            return "ollama-tag"
        if self.active_link:
            return "symlink"
        if self.env_file:
            return "env-file"
        return "none"

    @property
    def switch_target(self) -> str:
        """Ledger target of this endpoint's model-switch restarts (a budget of its own)."""
        return f"{self.name}:models"


def _resolve(cfg: Config, s: ModelEndpoint) -> Managed:
    where = f"models.endpoints[{s.endpoint}]"
    try:
        ep = cfg.endpoint(s.endpoint)
    except ConfigError:
        raise ConfigError(
            f"names endpoint {s.endpoint!r}, which is not in [[endpoints]]", file=cfg.source, key=where
        ) from None
    store = s.store or ("ollama" if ep.api == "ollama" else "files")
    m = Managed(endpoint=ep, settings=s, store=store, env_var=s.env_var)
    if store == "ollama":
        m.models_dir = _path(s.ollama_models_dir or cfg.models.ollama_models_dir)
        if s.active_link or s.env_file or s.versions_dir:
            raise ConfigError(
                "an Ollama store switches by tag: versions_dir, active_link and env_file do not apply",
                file=cfg.source, key=where,
            )  # fmt: skip
    else:
        m.versions_dir = _path(s.versions_dir)
        m.active_link = _path(s.active_link)
        m.env_file = _path(s.env_file)
        if m.versions_dir is None:
            raise ConfigError(
                "store 'files' needs versions_dir", file=cfg.source, key=where + ".versions_dir"
            )
    return m


def managed_endpoints(cfg: Config) -> list[Managed]:
    """Explicit [[models.endpoints]] tables, plus every local, non-staging Ollama endpoint."""
    out = [_resolve(cfg, s) for s in cfg.models.endpoints]
    listed = {m.name for m in out}
    for ep in cfg.endpoints:
        if ep.name not in listed and ep.api == "ollama" and ep.host == "local" and not ep.staging:
            out.append(_resolve(cfg, ModelEndpoint(endpoint=ep.name)))
    return out


def managed_endpoint(cfg: Config, name: str | None) -> Managed:
    """The named managed endpoint; without a name, the only non-staging one."""
    all_ = managed_endpoints(cfg)
    if name is None:
        prod = [m for m in all_ if not m.endpoint.staging]
        if len(prod) != 1:
            names = ", ".join(m.name for m in prod) or "none"
            raise ConfigError(
                f"name the endpoint (--endpoint): managed endpoints are {names}",
                file=cfg.source,
                key="models",
            )
        return prod[0]
    for m in all_:
        if m.name == name:
            return m
    cfg.endpoint(name)  # an unknown name raises the usual error
    raise ConfigError(
        f"endpoint {name!r} has no model store: add a [[models.endpoints]] table for it",
        file=cfg.source, key="models.endpoints",
    )  # fmt: skip


def staging_endpoint(cfg: Config, m: Managed) -> EndpointConfig | None:
    """The endpoint that evaluates candidates for m (None when none is configured)."""
    name = m.settings.staging_endpoint or cfg.models.staging_endpoint
    if name:
        return cfg.endpoint(name)
    for ep in cfg.endpoints:
        if ep.staging:
            return ep
    return None


def lock_path(cfg: Config) -> Path:
    """[models].lock_file (relative: to the config file), else state_dir/models.lock.

    Why state_dir: pins are written by every pin and promotion, and the service unit keeps the
    config directory read-only (ProtectSystem=strict). A models.lock left next to the config file by
    an older version is copied into state_dir the first time, so its pins are not lost.
    """
    if cfg.models.lock_file:
        p = Path(os.path.expanduser(cfg.models.lock_file))
        if not p.is_absolute() and cfg.source:
            p = Path(cfg.source).resolve().parent / p
        return p
    p = cfg.state_path / LOCK_NAME
    if cfg.source and not p.exists():
        legacy = Path(cfg.source).resolve().parent / LOCK_NAME
        if legacy.is_file():
            tmp = p.with_name(f".{LOCK_NAME}.{os.getpid()}.migrate")
            try:
                shutil.copyfile(legacy, tmp)
                os.link(tmp, p)  # never over a lock another process wrote meanwhile
            except FileExistsError:
                pass
            finally:
                tmp.unlink(missing_ok=True)
    return p


def models_state_dir(cfg: Config, endpoint: str) -> Path:
    p = cfg.state_path / "models" / endpoint
    p.mkdir(parents=True, exist_ok=True)
    return p
