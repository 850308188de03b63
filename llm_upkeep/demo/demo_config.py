"""The demo's config file and the files it points at: old logs to rotate, a model store to back
up, a week of a server log to review; written, checked and pinned before anything runs.

Why its own file: when a config section changes shape, this is the one place the demo follows
it (a section that no longer parses is left out, and the demo says so).
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llm_upkeep.config import parse_config
from llm_upkeep.configbase import ConfigError
from llm_upkeep.demo.settings import (
    BUCKET,
    FAULTY,
    HEALTHY,
    S3_KEY_ENV,
    S3_SECRET_ENV,
    SLACK_ENV,
    STAGING,
    TTFT_ALERT_S,
    DemoError,
)


class DemoConfigMixin:
    """For Demo: reads ``state_dir``, ``config_path``, ``llm``, ``s3`` and ``say``."""

    def demo_files(self) -> dict[str, Path]:
        """Old logs to rotate and a small model store to back up, made fresh each run."""
        logs = self.state_dir / "served-logs"
        store = self.state_dir / "model-store"
        logs.mkdir(parents=True, exist_ok=True)
        store.mkdir(parents=True, exist_ok=True)
        old = time.time() - 45 * 86400
        for i in range(3):
            p = logs / f"requests-2026-10-{i + 1:02d}.jsonl"
            if not p.exists() and not (logs / (p.name + ".gz")).exists():
                p.write_text("".join(json.dumps({"i": j, "ttft_s": 0.2}) + "\n" for j in range(200)))
                os.utime(p, (old, old))
        server_log = logs / "ollama-server.log"
        if not server_log.exists():
            server_log.write_text(demo_server_log(time.time()))
        (store / "Modelfile").write_text("FROM llama3:8b\nPARAMETER temperature 0.2\n")
        (store / "pins.json").write_text(json.dumps({"llama3:8b": "sha256:" + "0" * 64}) + "\n")
        return {"logs": logs, "store": store, "server_log": server_log}

    def build_config(self) -> dict[str, Any]:
        files = self.demo_files()
        healthy, slow, staging = self.llm.sims
        data: dict[str, Any] = {
            "state_dir": str(self.state_dir / "data"),
            "endpoints": [
                {
                    "name": HEALTHY,
                    "api": "ollama",
                    "url": healthy.url,
                    "model": healthy.behavior.model,
                    "timeout_s": 20.0,
                },
                {
                    "name": STAGING,
                    "api": "ollama",
                    "url": staging.url,
                    "model": staging.behavior.model,
                    "timeout_s": 20.0,
                    "staging": True,
                },
                {
                    "name": FAULTY,
                    "api": "openai",
                    "url": slow.url,
                    "model": slow.behavior.model,
                    "timeout_s": 20.0,
                },
            ],  # fmt: skip
            "health": {
                "ttft_alert_s": TTFT_ALERT_S,
                "disk_paths": [str(self.state_dir)],
                "probe_retries": 1,
                "probe_retry_delay_s": 0.5,
                "probe_max_tokens": 16,
            },
            "logs": {"dirs": [str(files["logs"])], "compress_after_days": 30, "quiet_seconds": 0},
            "alerts": {"slack_webhook_url_env": SLACK_ENV, "min_status": "alert"},
            "restart": {"dry_run": True, "command": ["systemctl", "restart", "{target}"]},
        }
        optional = {
            "benchmark": {
                "profile": "concurrent",
                "concurrency": 4,
                "repeats": 1,
                "warmup": 1,
                "max_tokens": 24,
            },
            "models": {
                "ollama_models_dir": str(self.state_dir / "ollama-models"),
                "staging_endpoint": STAGING,
                "approval": "auto",
                "approval_poll_s": 2.0,
            },
            "review": {
                "sources": [{"name": "ollama", "kind": "ollama", "paths": [str(files["server_log"])]}],
                "ollama_registry_url": self.llm.registry_server.url,
            },
            "backup": {
                "bucket": BUCKET,
                "endpoint_url": self.s3.url,
                "region": "us-east-1",
                "addressing_style": "path",
                "access_key_id_env": S3_KEY_ENV,
                "secret_access_key_env": S3_SECRET_ENV,
                "sets": [{"name": "model-store", "paths": [str(files["store"])]}],
            },
        }
        from llm_upkeep.config import Config

        for key, section in optional.items():
            if key not in Config.model_fields:
                continue
            trial = dict(data, **{key: section})
            try:
                parse_config(trial, "demo")
            except ConfigError as exc:  # a section whose schema moved on: run without it, say so
                self.say(f"  (demo config: leaving [{key}] out: {exc})")
                continue
            data = trial
        parse_config(data, str(self.config_path))
        return data

    def write_config(self) -> None:
        import tomli_w

        data = self.build_config()
        tmp = self.config_path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            tomli_w.dump(data, f)
            f.flush()
            os.fsync(f.fileno())
        parse_config(__import__("tomllib").loads(tmp.read_text()), str(tmp))
        os.replace(tmp, self.config_path)
        self.say(f"  config                     {self.config_path}")

    def pin_models(self) -> None:
        """`llm-upkeep models pin`: the current version is the pinned production one at start."""
        from llm_upkeep.config import load_config
        from llm_upkeep.models.pins import pin_models

        report = pin_models(load_config(self.config_path), endpoint=HEALTHY)
        if not report.ok:
            raise DemoError(f"cannot pin the demo's models: {report.problems[0].public()}")
        pinned = ", ".join(report.pinned[HEALTHY])
        self.say(f"  models.lock                {report.lock_file}  ({HEALTHY}: {pinned})")



def demo_server_log(now: float) -> str:
    """A week of an Ollama server log with a few planted errors, for the weekly review."""
    lines = []
    for h in range(0, 6 * 24, 3):
        t = datetime.fromtimestamp(now - (6 * 24 - h) * 3600, UTC)
        stamp = t.strftime("%Y/%m/%d - %H:%M:%S")
        lines.append(f'[GIN] {stamp} | 200 |  1.204s |  127.0.0.1 | POST     "/api/chat"')
        if h % 24 == 9:
            iso = t.strftime("%Y-%m-%dT%H:%M:%S.000Z")
            lines.append(f'time={iso} level=ERROR source=server.go:812 msg="llama runner process has terminated" '
                         'error="CUDA error: out of memory"')  # fmt: skip
            lines.append(f'[GIN] {stamp} | 500 |  3.001s |  127.0.0.1 | POST     "/api/chat"')
    return "\n".join(lines) + "\n"
