"""Secrets stay out of logs, tracebacks, child processes, env files and Slack mark-up.

Each test reproduces one review finding: exception text and tracebacks were logged as is,
a secret was masked only once its own process had read it, commands inherited the whole
environment, the env-file rewrite's temp file was briefly readable with the default umask,
and a server's error text could post <!channel> to Slack.
"""

from __future__ import annotations

import io
import json
import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from llm_upkeep.alerts import send_alert
from llm_upkeep.checks import CheckResult, Status
from llm_upkeep.config import AlertsConfig, RestartConfig, load_config
from llm_upkeep.models import active
from llm_upkeep.models.active import ActiveError, read_env_var, write_env_var
from llm_upkeep.redact import install_log_redaction, redact, register_secret
from llm_upkeep.restart import restart_server
from llm_upkeep.runbook.logs import tail_command
from llm_upkeep.sim.slack_sink import SlackSink

ROOT = Path(__file__).resolve().parent.parent
ENV_NAMES = [sys.executable, "-c", "import os, json; print(json.dumps(sorted(os.environ)))"]


def test_tracebacks_in_logs_are_redacted():
    secret = "tb-secret-4f7a9c2e81"
    register_secret(secret)
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    lg = logging.getLogger("llm_upkeep.test_traceback")
    lg.addHandler(handler)
    try:
        install_log_redaction()
        handler.addFilter(logging.getLogger("llm_upkeep").filters[-1])
        try:
            raise RuntimeError(f"upstream said: token={secret}")
        except RuntimeError:
            lg.exception("probe failed")
    finally:
        lg.removeHandler(handler)
    text = out.getvalue()
    assert "probe failed" in text and "RuntimeError" in text and "Traceback" in text
    assert secret not in text, text


def test_an_uncaught_exception_is_printed_redacted(tmp_path):
    """The CLI's last resort: sys.excepthook prints the traceback through redact() too."""
    code = (
        "from llm_upkeep.redact import install_log_redaction, register_secret\n"
        "install_log_redaction(); register_secret('hook-secret-93a1b7')\n"
        "raise SystemError('leaked hook-secret-93a1b7')\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=60)  # fmt: skip
    assert p.returncode == 1 and "SystemError" in p.stderr
    assert "hook-secret-93a1b7" not in p.stderr


def test_secrets_the_config_names_are_masked_before_anything_reads_them(tmp_path, monkeypatch):
    """A flow that never posts to Slack still logs a traceback holding the webhook URL: the
    value must be known to the redactor from load_config on, not from its first read."""
    value = "plainvalue-never-read-7d1e"  # no known shape: only registration can mask it
    monkeypatch.setenv("NEVER_READ_HOOK", value)
    monkeypatch.setenv("NEVER_READ_S3", "s3-plain-secret-55c0de")
    cfg_path = tmp_path / "llm-upkeep.toml"
    cfg_path.write_text(
        f'state_dir = "{tmp_path}"\n[alerts]\nslack_webhook_url_env = "NEVER_READ_HOOK"\n'
        '[backup]\nsecret_access_key_env = "NEVER_READ_S3"\naccess_key_id_env = "NEVER_READ_S3"\n'
    )
    load_config(cfg_path)
    assert value not in redact(f"POST failed: {value}")
    assert "s3-plain-secret-55c0de" not in redact("key s3-plain-secret-55c0de")


def test_commands_get_a_minimal_environment(tmp_path, monkeypatch):
    """Restart commands and log readers ran with every secret of llm-upkeep's environment."""
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret-in-env-1234")
    monkeypatch.setenv("LLM_UPKEEP_SLACK_WEBHOOK", "https://hooks.example/abc")
    monkeypatch.setenv("PREFECT_API_AUTH_STRING", "admin:pass")
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    out = restart_server(RestartConfig(command=ENV_NAMES, dry_run=False), tmp_path, target="t", reason="x")
    assert out.decision == "executed", out
    names = set(json.loads(out.output_tail))
    assert {"PATH", "LC_ALL"} <= names
    assert not names & {"AWS_SECRET_ACCESS_KEY", "LLM_UPKEEP_SLACK_WEBHOOK", "PREFECT_API_AUTH_STRING"}, names
    (line,) = tail_command(ENV_NAMES, 5, 30.0)  # the runbook's log reader
    assert "AWS_SECRET_ACCESS_KEY" not in json.loads(line)


def test_a_kept_variable_holding_a_secret_is_dropped_too(tmp_path, monkeypatch):
    register_secret("path-embedded-secret-0a9b")
    monkeypatch.setenv("PYTHONPATH", f"{ROOT}:/opt/path-embedded-secret-0a9b")
    out = restart_server(RestartConfig(command=ENV_NAMES, dry_run=False), tmp_path, target="t", reason="x")
    assert "PYTHONPATH" not in json.loads(out.output_tail)


def test_env_file_rewrite_never_has_a_readable_temp_file(tmp_path, monkeypatch):
    env_file = tmp_path / "llm.env"
    env_file.write_text('API_KEY="k-secret"\nLLM_MODEL_PATH="/m/a.gguf"\n')
    os.chmod(env_file, 0o600)
    modes: list[int] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode):
            modes.append(stat.S_IMODE(st.st_mode))  # the temp file, once its bytes are written
        real_fsync(fd)

    monkeypatch.setattr(active.os, "fsync", spy)
    old = os.umask(0o022)  # the usual umask: a file opened plainly is 0644
    try:
        write_env_var(env_file, "LLM_MODEL_PATH", str(tmp_path / "b.gguf"))
    finally:
        os.umask(old)
    assert modes and all(m == 0o600 for m in modes), [oct(m) for m in modes]
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert read_env_var(env_file, "API_KEY") == "k-secret"


@pytest.mark.parametrize(
    "value", ["/m/$(touch /tmp/pwned).gguf", "/m/`id`.gguf", "/m/${HOME}.gguf", "/m/a\\b"]
)
def test_env_file_refuses_shell_expansion_in_values(tmp_path, value):
    env_file = tmp_path / "llm.env"
    env_file.write_text('LLM_MODEL_PATH="/m/a.gguf"\n')
    with pytest.raises(ActiveError):
        write_env_var(env_file, "LLM_MODEL_PATH", value)
    assert env_file.read_text() == 'LLM_MODEL_PATH="/m/a.gguf"\n'


def test_server_text_cannot_post_mentions_or_disguised_links_to_slack(tmp_path, monkeypatch):
    with SlackSink() as sink:
        monkeypatch.setenv("HOOK", sink.webhook_url)
        evil = "HTTP 500: <!channel> wake up & see <https://evil.example|the dashboard>"
        check = CheckResult(check="endpoint_up", target="ep", status=Status.ALERT, value=None, detail=evil,
                            data={"error_kind": "http_5xx"})  # fmt: skip
        d = send_alert(
            AlertsConfig(slack_webhook_url_env="HOOK"), tmp_path, "LLM down", [check], context=evil
        )
        assert d.status == "sent", d
        (msg,) = sink.messages
    raw = json.dumps(msg)
    assert "<!channel>" not in raw and "<https://evil.example|" not in raw
    body = msg["blocks"][1]["text"]["text"]
    assert "&lt;!channel&gt; wake up &amp; see &lt;https://evil.example|the dashboard&gt;" in body
