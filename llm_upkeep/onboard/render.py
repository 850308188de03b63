"""The annotated config `llm-upkeep init` writes: every value found, with a comment saying where it
came from, in the same TOML the examples/llm-upkeep.toml documents key by key."""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime

import tomli_w

from llm_upkeep.onboard.discover import FoundServer
from llm_upkeep.onboard.host import HostFacts

LOG_FORMATS = {"ollama", "vllm", "llamacpp"}  # server kinds the weekly review has a log format for


def _v(value) -> str:
    """One TOML value, quoted and escaped by tomli_w."""
    return tomli_w.dumps({"v": value}).split("=", 1)[1].strip()


def _kv(key: str, value, comment: str = "") -> str:
    line = f"{key} = {_v(value)}"
    return f"{line:<40} # {comment}" if comment else line


def endpoint_names(servers: list[FoundServer]) -> list[str]:
    kinds = [s.kind for s in servers]
    return [s.kind if kinds.count(s.kind) == 1 else f"{s.kind}-{s.port}" for s in servers]


def render_config(servers: list[FoundServer], facts: HostFacts, state_dir: str) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    out = [
        f"# llm-upkeep.toml written by `llm-upkeep init` on {socket.gethostname()} at {now}.",
        "# What it found is below, each with where it came from. Every key is documented in",
        "# examples/llm-upkeep.toml; check this file with `llm-upkeep config check`.",
        "",
        _kv("state_dir", state_dir, "history, baselines, ledgers"),
        "",
    ]
    for name, s in zip(endpoint_names(servers), servers, strict=True):
        what = f"{s.kind}{' ' + s.version if s.version else ''} answering on port {s.port}"
        out += [f"# Found: {what}; models: {', '.join(s.models) or 'none listed'}"]
        out += [f"# {n}" for n in s.notes]
        out += [
            "[[endpoints]]",
            _kv("name", name),
            _kv("api", s.api, "dialect llm-upkeep speaks to it"),
            _kv("url", s.url),
            _kv("model", s.model or "CHANGE-ME", "the model probes and benchmarks request"),
        ]
        if s.kind == "ollama" and s.model in s.digests:
            out.append(f"# {s.model} digest {s.digests[s.model]}")
        out.append("")
    g = facts.gpus
    if g.status == "ok":
        names = ", ".join(f"{r.index}: {r.name}" for r in g.gpus) or "none"
        out += [
            "[gpu]",
            _kv("enabled", True, f"NVML: {len(g.gpus)} GPU(s) ({names}), driver {g.driver_version}"),
        ]
    else:
        out += [
            "[gpu]",
            _kv("enabled", False, f"NVML not available here ({g.reason}); set true on a GPU host"),
        ]
    out.append("")
    disks = [facts.ollama_store] if facts.ollama_store else []
    out += ["[health]", _kv("disk_paths", disks + [state_dir], "filesystems whose fullness is checked"), ""]
    if facts.ollama_store:
        out += ["[models]", _kv("ollama_models_dir", facts.ollama_store, "Ollama's model store (pinned in models.lock)"),
                ""]  # fmt: skip
    names = dict(zip([s.kind for s in servers], endpoint_names(servers), strict=True))
    for kind, unit in sorted(facts.units.items()):
        if kind in LOG_FORMATS:
            out += [
                f"# {kind} logs to the systemd journal of unit {unit}",
                "[[review.sources]]",
                _kv("name", f"{kind}-journal"),
                _kv("kind", "journal"),
                _kv("unit", unit),
                _kv("format", kind),
                _kv("cursor_file", os.path.join(state_dir, f"journal-{unit}.cursor"), "each entry read once"),
                "",
            ]
        out += ["[[runbook.logs]]", _kv("name", f"{kind}-journal"), _kv("kind", "server"), _kv("unit", unit),
                _kv("endpoints", [names[kind]] if kind in names else []), ""]  # fmt: skip
    for kind, globs in sorted(facts.log_files.items()):
        if kind in LOG_FORMATS and kind not in facts.units:
            out += [
                "[[review.sources]]",
                _kv("name", f"{kind}-log"),
                _kv("kind", kind),
                _kv("paths", globs),
                "",
            ]
    if facts.kernel_log:
        out += ["[[review.sources]]", _kv("name", "kernel"), _kv("kind", "kernel"), _kv("paths", [facts.kernel_log]),
                "", "[[runbook.logs]]", _kv("name", "kernel"), _kv("kind", "kernel"), _kv("path", facts.kernel_log),
                ""]  # fmt: skip
    return "\n".join(out).rstrip() + "\n"
