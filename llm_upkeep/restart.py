"""Guarded restart of a serving process (runbook: memory leak, crash).

Guarded means: a dry-run mode, a budget of restarts per rolling 24 hours (persisted, so
two flows cannot both spend it: the ledger is locked), a timeout on the command, and a
ledger line for every decision, executed or not, with the reason.
"""

from __future__ import annotations

import fcntl
import json
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field

from llm_upkeep.bounded_run import output_tail, run_bounded
from llm_upkeep.childenv import child_env
from llm_upkeep.config import RestartConfig
from llm_upkeep.redact import redact

LEDGER = "restarts.jsonl"
DAY_S = 86400.0


class RestartOutcome(BaseModel):
    """A record of what was done and why."""

    target: str = Field(description="Endpoint (or host) the restart concerns.")
    reason: str = Field(description="Why a restart was wanted.")
    decision: str = Field(description="executed | dry_run | over_budget | not_configured | failed")
    command: list[str] = Field(default_factory=list, description="The command, after placeholders.")
    returncode: int | None = Field(default=None, description="Exit status when it ran.")
    output_tail: str = Field(default="", description="Last lines of its output (redacted).")
    duration_s: float | None = Field(default=None, description="How long the command took.")
    restarts_in_window: int = Field(
        default=0, description="Executed restarts in the last 24 h before this one."
    )
    budget: int = Field(default=0, description="max_per_day at the time.")
    recovered: bool | None = Field(
        default=None, description="Re-probe passed after the restart (None: not probed)."
    )
    recovery_s: float | None = Field(default=None, description="Seconds until the re-probe passed.")
    at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(), description="When (UTC).")

    @property
    def executed(self) -> bool:
        return self.decision == "executed"


def _ledger(state_dir: Path) -> Path:
    return Path(state_dir) / LEDGER


def read_ledger(state_dir: Path) -> list[dict]:
    p = _ledger(state_dir)
    if not p.exists():
        return []
    out = []
    for line in p.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue  # a torn line from a crash must not block restarts forever
    return out


def restarts_in_window(state_dir: Path, target: str, now: float | None = None) -> int:
    now = time.time() if now is None else now
    n = 0
    for rec in read_ledger(state_dir):
        # A failed attempt spends budget too, so a broken command cannot loop; recovery notes do not.
        if (
            rec.get("target") == target
            and rec.get("decision") in ("executed", "failed")
            and not rec.get("event")
        ):
            at = datetime.fromisoformat(rec["at"]).timestamp()
            if now - at < DAY_S:
                n += 1
    return n


def render_command(cfg: RestartConfig, target: str, model: str = "") -> list[str]:
    return [a.replace("{target}", target).replace("{model}", model) for a in cfg.command]


def restart_server(
    cfg: RestartConfig,
    state_dir: Path,
    *,
    target: str,
    reason: str,
    model: str = "",
    dry_run: bool | None = None,
    now: float | None = None,
) -> RestartOutcome:
    """Run the restart command if the budget allows; always append a ledger record."""
    dry = cfg.dry_run if dry_run is None else dry_run
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    cmd = render_command(cfg, target, model)
    with open(state_dir / (LEDGER + ".lock"), "a+") as lockf:
        fcntl.flock(lockf, fcntl.LOCK_EX)
        used = restarts_in_window(state_dir, target, now)
        out = RestartOutcome(
            target=target, reason=reason, decision="dry_run", command=cmd,
            restarts_in_window=used, budget=cfg.max_per_day,
        )  # fmt: skip
        if now is not None:
            out.at = datetime.fromtimestamp(now, UTC).isoformat()
        if not cmd:
            out.decision = "not_configured"
        elif used >= cfg.max_per_day:
            out.decision = "over_budget"
        elif dry:
            out.decision = "dry_run"
        else:
            t0 = time.monotonic()
            try:
                # What it prints is drained as it runs, the last KEEP_BYTES of each stream kept.
                proc = run_bounded(cmd, timeout_s=cfg.timeout_s, env=child_env())
                out.returncode = proc.returncode
                out.output_tail = redact(output_tail(proc, 20))
                out.decision = "executed" if proc.returncode == 0 else "failed"
            except subprocess.TimeoutExpired:
                out.decision, out.output_tail = "failed", f"timed out after {cfg.timeout_s:g} s"
            except OSError as exc:
                out.decision, out.output_tail = "failed", redact(f"cannot run: {exc}")
            out.duration_s = round(time.monotonic() - t0, 3)
        with open(_ledger(state_dir), "a") as f:
            f.write(json.dumps(out.model_dump()) + "\n")
    return out


def record_recovery(state_dir: Path, outcome: RestartOutcome) -> None:
    """Append the re-probe result to the ledger, so the record says whether it helped."""
    with open(_ledger(Path(state_dir)), "a") as f:
        f.write(json.dumps({"event": "recovery", **outcome.model_dump()}) + "\n")
