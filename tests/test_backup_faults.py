"""Backup against a failing store: the fault campaign's findings, each reproduced.

- the endpoint drops mid multipart upload: one error line, no awscrt/s3transfer tracebacks;
- max_attempts = N sends N requests in all (botocore's own max_attempts counts retries);
- a store answering each request slowly but within read_timeout_s: the run stops with
  'too_slow' instead of stretching a small backup to many minutes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomli_w

from llm_upkeep.backup import localdb
from llm_upkeep.backup.errors import BackupError
from llm_upkeep.backup.snapshot import open_store, run_backup
from tests.backup_helpers import backup_config, make_tree
from tests.hostile_http import HostileServer, SlowProxy, head

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _trust_fresh_cache(monkeypatch):
    monkeypatch.setattr(localdb, "RACY_NS", 0)


def test_an_endpoint_dropping_mid_upload_gives_one_error_line_and_no_traceback(tmp_path, killable_s3, s3_env):
    bucket = killable_s3.new_bucket()
    src = tmp_path / "src"
    src.mkdir()
    for i in range(4):
        (src / f"weights-{i}.gguf").write_bytes(os.urandom(24 * 1024 * 1024))
    cfg = backup_config(killable_s3, bucket, s3_env, {"w": [str(src)]}, multipart_threshold_mib=8,
                        multipart_chunksize_mib=8, max_concurrency=4, connect_timeout_s=1, read_timeout_s=5)  # fmt: skip
    path = tmp_path / "llm-upkeep.toml"
    path.write_text(tomli_w.dumps({"state_dir": str(tmp_path / "state"),
                                   "backup": cfg.model_dump(mode="json", exclude_none=True)}))  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.Popen([sys.executable, "-m", "llm_upkeep.cli", "backup", "run", "--config", str(path)],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    client = killable_s3.client()
    deadline = time.monotonic() + 60
    while not client.list_multipart_uploads(Bucket=bucket).get("Uploads") and time.monotonic() < deadline:
        time.sleep(0.02)
    killable_s3.kill()  # parts are in flight now
    _out, err = p.communicate(timeout=120)
    assert p.returncode != 0
    assert "Traceback" not in err and "Treating Python exception" not in err, err[-4000:]
    errors = [ln for ln in err.splitlines() if ln.startswith("llm-upkeep backup:")]
    assert len(errors) == 1 and "unreachable" in errors[0], err[-2000:]


def test_max_attempts_is_requests_in_all_not_retries(tmp_path, s3_env):
    def respond(path, send):
        body = b"<Error><Code>ServiceUnavailable</Code><Message>busy</Message></Error>"
        send(head("503 Service Unavailable", ctype="application/xml", length=len(body)) + body)

    with HostileServer(respond) as srv:
        cfg = backup_config(srv, "bkt", s3_env, {"w": [str(tmp_path)]}, max_attempts=3)
        with pytest.raises(BackupError) as ei:
            open_store(cfg).check_bucket()
    assert ei.value.retryable
    assert len(srv.requests) == 3, srv.requests


def test_a_store_that_answers_just_in_time_stops_the_run_as_too_slow(tmp_path, moto_s3, s3_env):
    """Each answer held 0.15 s (read_timeout_s is 5): without a floor the run finishes,
    however long it takes; with min_throughput_kib_s it stops well before that."""
    proxy = SlowProxy(moto_s3.port, delay_s=0.15)
    try:
        src = make_tree(tmp_path / "src" / "ollama", n=30)
        slow = dict(read_timeout_s=5, max_concurrency=1)
        bare_cfg = backup_config(
            proxy, moto_s3.new_bucket(), s3_env, {"w": [str(src)]}, min_throughput_kib_s=0, **slow
        )
        t0 = time.monotonic()
        bare = run_backup(bare_cfg, tmp_path / "state-bare")
        bare_s = time.monotonic() - t0
        assert bare.files == 30

        bucket = moto_s3.new_bucket()
        cfg = backup_config(proxy, bucket, s3_env, {"w": [str(src)]}, min_throughput_kib_s=1024,
                            slow_grace_s=bare_s * 0.2, **slow)  # fmt: skip
        t0 = time.monotonic()
        with pytest.raises(BackupError) as ei:
            run_backup(cfg, tmp_path / "state")
        took = time.monotonic() - t0
    finally:
        proxy.close()
    assert ei.value.kind == "too_slow" and ei.value.retryable and "min_throughput_kib_s" in str(ei.value)
    assert took < 0.6 * bare_s, (took, bare_s)
    listed = moto_s3.client().list_objects_v2(Bucket=bucket, Prefix="llm-backup/snapshots/")
    assert listed.get("KeyCount", 0) == 0  # nothing committed
    locks = moto_s3.client().list_objects_v2(Bucket=bucket, Prefix="llm-backup/locks/")
    assert locks.get("KeyCount", 0) == 0  # its lease was released despite the deadline
