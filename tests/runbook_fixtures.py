"""Pytest plugin for the runbook tests: real commands for restart and setting hooks whose effect
on the in-process simulator a callback plays, and a watcher that reacts to requests the way a
real server would (a pulled model replaces the damaged one, an unloaded model reloads on GPU).

Why real commands: the runbook runs restart.command and runbook.setting_hook as subprocesses
with timeouts; the tests must exercise exactly that path. The command writes its argv into a
spool directory and exits; a thread in the test reads the spool and calls the callback, so the
simulator changes after the command returned, as a systemd restart would.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from llm_upkeep.config import Config, parse_config
from llm_upkeep.sim.llm_server import SimBehavior, SimServer

_SPOOL = (
    "import json, os, sys, time\n"
    "d, code = sys.argv[1], int(sys.argv[2])\n"
    "tmp = os.path.join(d, f'.{time.time_ns()}.tmp')\n"
    "open(tmp, 'w').write(json.dumps(sys.argv[3:]))\n"
    "os.replace(tmp, tmp.replace('/.', '/').replace('.tmp', '.json'))\n"
    "sys.exit(code)\n"
)

CANARY_ANSWERS = {
    "capital of France": "Paris.",
    "test": "This is a short test answer: the server is up and the model replies normally.",
}


def healthy_behavior(**fields) -> SimBehavior:
    """A simulator answering the probe and the canary like a working model."""
    return SimBehavior(answers=dict(CANARY_ANSWERS), **fields)


class CommandHook:
    """A real command (python -c) that records its arguments; on_run sees them in the test process."""

    def __init__(self, spool: Path, on_run: Callable[[list[str]], None] | None = None, exit_code: int = 0):
        self.spool = spool
        self.spool.mkdir(parents=True, exist_ok=True)
        self.on_run = on_run
        self.exit_code = exit_code
        self.calls: list[list[str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True, name=f"hook-{spool.name}")
        self._thread.start()

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-c", _SPOOL, str(self.spool), str(self.exit_code), *args]

    def _watch(self) -> None:
        while not self._stop.is_set():
            for f in sorted(self.spool.glob("*.json")):
                argv = json.loads(f.read_text())
                f.unlink()
                self.calls.append(argv)
                if self.on_run is not None:
                    self.on_run(argv)
            time.sleep(0.01)

    def wait_calls(self, n: int, timeout_s: float = 5.0) -> list[list[str]]:
        deadline = time.monotonic() + timeout_s
        while len(self.calls) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.calls

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)


class RequestWatcher:
    """Calls action(request) for each new simulator request that matches predicate."""

    def __init__(self, sim: SimServer, predicate: Callable[[dict], bool], action: Callable[[dict], None]):
        self.sim, self.predicate, self.action = sim, predicate, action
        self.seen = len(sim.requests)
        self.hits: list[dict] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True, name="sim-watcher")
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.is_set():
            reqs = self.sim.requests
            while self.seen < len(reqs):
                r = reqs[self.seen]
                self.seen += 1
                if self.predicate(r):
                    self.hits.append(r)
                    self.action(r)
            time.sleep(0.002)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)


def restart_sim(sim: SimServer, **fresh) -> None:
    """What a restart does to the simulated server: down, then up with a fresh process's behavior."""
    sim.set_fault("refused")
    time.sleep(0.05)
    for k, v in fresh.items():
        setattr(sim.behavior, k, v)
    sim.set_fault(None)


def runbook_config(tmp_path: Path, endpoints: list[dict], **sections) -> Config:
    """A config for the runbook tests: fast verification, no real GPU, a restart budget of 2."""
    data: dict = {
        "state_dir": str(tmp_path / "state"),
        "endpoints": endpoints,
        "gpu": {"enabled": False},
        "health": {"disk_paths": [], "probe_retries": 0},
        "restart": {"dry_run": False, "max_per_day": 2, "timeout_s": 10, "command": []},
        "runbook": {"verify_timeout_s": 5.0, "verify_interval_s": 0.1, "approval_timeout_s": 30,
                    "approval_poll_s": 1},
    }  # fmt: skip
    for k, v in sections.items():
        if isinstance(v, dict):
            data.setdefault(k, {}).update(v)
        else:
            data[k] = v
    return parse_config(data, str(tmp_path / "runbook-test.toml"))


def sim_endpoint(sim: SimServer, name: str = "sim", api: str = "ollama", **kw) -> dict:
    return {"name": name, "api": api, "url": sim.url, "model": sim.behavior.model,
            "timeout_s": 3.0, "read_timeout_s": 2.0, "connect_timeout_s": 1.0, **kw}  # fmt: skip


@pytest.fixture
def hooks(tmp_path) -> Iterator[Callable[..., CommandHook]]:
    """make(name, on_run=None, exit_code=0) -> CommandHook; all closed at teardown."""
    made: list[CommandHook] = []

    def make(name: str, on_run=None, exit_code: int = 0) -> CommandHook:
        h = CommandHook(tmp_path / "spool" / name, on_run, exit_code)
        made.append(h)
        return h

    try:
        yield make
    finally:
        for h in made:
            h.close()


@pytest.fixture
def watchers() -> Iterator[Callable[..., RequestWatcher]]:
    """make(sim, predicate, action) -> RequestWatcher; all stopped at teardown."""
    made: list[RequestWatcher] = []

    def make(sim, predicate, action) -> RequestWatcher:
        w = RequestWatcher(sim, predicate, action)
        made.append(w)
        return w

    try:
        yield make
    finally:
        for w in made:
            w.close()
