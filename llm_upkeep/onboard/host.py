"""The rest of what init finds on this host: GPUs (NVML), the Ollama model store, log sources
(systemd units whose journal holds a server's log, known log files, the kernel log)."""

from __future__ import annotations

import glob
import os
import shutil
from dataclasses import dataclass, field

from llm_upkeep.telemetry import GpuSnapshot, collect_gpus

UNIT_DIRS = ("/etc/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system")
# server kind -> (systemd unit names, log file globs) of common installs
KNOWN_LOGS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "ollama": (("ollama",), ("/var/log/ollama/*.log*", "~/.ollama/logs/server*.log")),
    "vllm": (("vllm",), ("/var/log/vllm/*.log*",)),
    "llamacpp": (("llama-server", "llama-cpp", "llamacpp"), ("/var/log/llama*/*.log*",)),
    "tgi": (("text-generation-inference", "tgi"), ()),
    "sglang": (("sglang",), ()),
}
KERNEL_LOGS = ("/var/log/kern.log",)
OLLAMA_STORES = ("$OLLAMA_MODELS", "~/.ollama/models", "/usr/share/ollama/.ollama/models")


@dataclass
class HostFacts:
    gpus: GpuSnapshot
    units: dict[str, str] = field(default_factory=dict)  # server kind -> systemd unit with a journal
    log_files: dict[str, list[str]] = field(default_factory=dict)  # server kind -> globs that match
    kernel_log: str | None = None
    ollama_store: str | None = None


def find_unit(names: tuple[str, ...], unit_dirs: tuple[str, ...]) -> str | None:
    if shutil.which("journalctl") is None:
        return None
    for n in names:
        if any(os.path.exists(os.path.join(d, f"{n}.service")) for d in unit_dirs):
            return n
    return None


def find_ollama_store(candidates: tuple[str, ...] = OLLAMA_STORES) -> str | None:
    for c in candidates:
        p = os.path.expanduser(os.path.expandvars(c))
        if "$" not in p and os.path.isdir(os.path.join(p, "manifests")):
            return p
    return None


def probe_host(
    kinds: set[str], *, unit_dirs: tuple[str, ...] = UNIT_DIRS, ollama_stores: tuple[str, ...] = OLLAMA_STORES,
    kernel_logs: tuple[str, ...] = KERNEL_LOGS, nvml_module=None,
) -> HostFacts:  # fmt: skip
    facts = HostFacts(gpus=collect_gpus(nvml_module))
    for kind in kinds:
        names, globs = KNOWN_LOGS.get(kind, ((), ()))
        unit = find_unit(names, unit_dirs)
        if unit:
            facts.units[kind] = unit
        hits = [g for g in globs if glob.glob(os.path.expanduser(g))]
        if hits:
            facts.log_files[kind] = hits
    facts.kernel_log = next((k for k in kernel_logs if os.path.isfile(k)), None)
    if "ollama" in kinds:
        facts.ollama_store = find_ollama_store(ollama_stores)
    return facts
