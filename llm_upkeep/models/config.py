"""The ``[models]`` config section: where models live, how the active one is chosen, who approves.

Why a per-endpoint table: a llama.cpp or vLLM server loads a *path*, chosen by a symlink (or by
a variable in an env file its unit reads); an Ollama server serves a *name*, chosen by copying
a tag onto the endpoint's model name. Both are "the active version" and both switch atomically.
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field, field_validator, model_validator

from llm_upkeep.configbase import PositiveFloat, Section, require_unique


def default_ollama_models_dir() -> str:
    """Ollama's own default: $OLLAMA_MODELS, else ~/.ollama/models (the Linux service uses
    /usr/share/ollama/.ollama/models; set it explicitly there)."""
    return os.environ.get("OLLAMA_MODELS") or os.path.join(os.path.expanduser("~"), ".ollama", "models")


class ModelEndpoint(Section):
    endpoint: str = Field(
        min_length=1, description="Name of the endpoint in [[endpoints]] this table manages."
    )
    store: Literal["ollama", "files"] | None = Field(
        default=None,
        description="'ollama' (Ollama's manifests/blobs store, versions are tags) or 'files' (GGUF or "
        "safetensors files loaded by path: llama.cpp, vLLM). Default: 'ollama' for api='ollama' endpoints, "
        "else 'files'.",
    )
    ollama_models_dir: str | None = Field(
        default=None, description="This server's Ollama store, when it is not [models].ollama_models_dir."
    )
    versions_dir: str | None = Field(
        default=None,
        description="files: directory holding one entry (a file, or a directory of files) per model version. "
        "Candidates given by a path outside it are copied in (verified) before they are used.",
    )
    active_link: str | None = Field(
        default=None,
        description="files: the symlink the server loads (e.g. llama.cpp --model /srv/models/active.gguf); "
        "a switch replaces it atomically.",
    )
    env_file: str | None = Field(
        default=None,
        description="files: instead of a symlink, an env file the server's unit reads "
        "(systemd EnvironmentFile); a switch rewrites env_var in it atomically.",
    )
    env_var: str = Field(
        default="LLM_MODEL_PATH", description="Variable of env_file that holds the active model's path."
    )
    restart_command: list[str] = Field(
        default_factory=list,
        description="Command (argument list, no shell) that restarts or reloads this server after a switch; "
        "placeholders {target} and {model}. Empty: [restart].command. Ollama needs none (it loads "
        "the model by name on the next request).",
    )
    staging_endpoint: str | None = Field(
        default=None,
        description="Endpoint that evaluates candidates for this one (default: [models].staging_endpoint).",
    )
    candidate_dirs: list[str] = Field(
        default_factory=list,
        description="files: directories an evaluate-model run may take a candidate from (e.g. where downloads "
        "land), besides versions_dir. A candidate path elsewhere is refused; files from here are pinned on "
        "import.",
    )

    @model_validator(mode="after")
    def _one_selector(self) -> ModelEndpoint:
        if self.active_link and self.env_file:
            raise ValueError("set active_link or env_file, not both")
        return self


class ModelsConfig(Section):
    ollama_models_dir: str = Field(
        default_factory=default_ollama_models_dir,
        description="Ollama's model store (manifests/ and blobs/). Default: Ollama's own default, "
        "$OLLAMA_MODELS else ~/.ollama/models.",
    )
    lock_file: str | None = Field(
        default=None,
        description="The pins (models.lock, TOML), written by pins and promotions. Default: "
        "state_dir/models.lock (the config directory stays read-only under the service unit; a models.lock "
        "found next to the config file is copied there once). A relative path is relative to the config file.",
    )
    candidate_registries: list[str] = Field(
        default_factory=lambda: ["registry.ollama.ai"],
        description="Ollama: registries an evaluate-model run may pull a candidate from (the host part of "
        "the model name; a plain name like llama3:8b is registry.ollama.ai). Others are refused.",
    )
    keep_versions: int = Field(
        default=3,
        ge=2,
        le=100,
        description="Versions kept on disk per endpoint, the active one included (at least 2: the previous "
        "version always stays for a rollback). Older versions that llm-upkeep switched away from are removed.",
    )
    hash_workers: int = Field(
        default=0,
        ge=0,
        le=64,
        description="Threads hashing files in parallel (0: one per CPU core, at least 2).",
    )
    endpoints: list[ModelEndpoint] = Field(
        default_factory=list,
        description="Endpoints whose models are pinned, verified and switched. Local Ollama endpoints are "
        "included without a table (store: ollama_models_dir).",
    )
    staging_endpoint: str | None = Field(
        default=None,
        description="Endpoint that benchmarks candidates (default: the first endpoint with staging = true).",
    )
    approval: Literal["manual", "auto"] = Field(
        default="manual",
        description="manual: the evaluate-model flow pauses for a person to approve or reject in the Prefect "
        "UI; auto: it promotes only when the benchmark shows no regression and the thresholds below hold.",
    )
    approval_timeout_s: PositiveFloat = Field(
        default=86400.0, description="How long a manual approval may wait; no answer in time = rejected."
    )
    approval_poll_s: PositiveFloat = Field(
        default=10.0, description="How often the paused flow checks for an answer, in seconds."
    )
    auto_max_error_rate: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="auto: the candidate's benchmark error rate must not exceed this.",
    )
    auto_require_baseline: bool = Field(
        default=True,
        description="auto: refuse to promote when there was nothing to compare with (no baseline, "
        "no reference run).",
    )
    probe_timeout_s: PositiveFloat = Field(
        default=120.0,
        description="After a switch, how long to health-probe until the server answers before rolling back.",
    )
    probe_interval_s: PositiveFloat = Field(
        default=0.25, description="Pause between two health probes while waiting after a switch."
    )
    max_switches_per_day: int = Field(
        default=6,
        ge=1,
        description="Restarts for model switches per endpoint in 24 h (restart ledger target "
        "'<endpoint>:models'); an automatic rollback may always use one more.",
    )

    @field_validator("endpoints")
    @classmethod
    def _unique(cls, v: list[ModelEndpoint]) -> list[ModelEndpoint]:
        return require_unique(v, lambda e: e.endpoint, "duplicate endpoint")
