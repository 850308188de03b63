"""The remote prune marker is exclusive across hosts: S3's conditional write (If-None-Match: *)
lets one of two racing processes create it, never both."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from moto.s3.responses import S3Response

from llm_upkeep.backup.leases import HOST, begin_prune_marker
from llm_upkeep.backup.snapshot import open_store
from tests.backup_helpers import backup_config

ROOT = Path(__file__).resolve().parent.parent

RACE = """
import json, sys, time
from pathlib import Path
from llm_upkeep.backup.config import BackupConfig
from llm_upkeep.backup.leases import begin_prune_marker
from llm_upkeep.backup.snapshot import open_store
store = open_store(BackupConfig.model_validate_json(Path(sys.argv[1]).read_text()))
store.check_bucket()  # connection warm: both requests leave at once
go = Path(sys.argv[2])
print("ready", flush=True)
while not go.exists():
    time.sleep(0.0005)
marker, why, _ = begin_prune_marker(store, 3600)
print(json.dumps({"got": marker is not None, "why": why}), flush=True)
sys.stdin.readline()
if marker is not None:
    marker.release()
"""


@pytest.fixture
def atomic_moto_puts(monkeypatch):
    """S3 evaluates If-None-Match atomically; moto checks, then writes, in a threaded server.
    Serializing moto's PutObject handling gives the test the store's real guarantee."""
    lock = threading.Lock()
    real = S3Response.put_object

    def put_object(self, *a, **kw):
        with lock:
            return real(self, *a, **kw)

    monkeypatch.setattr(S3Response, "put_object", put_object)


def _cfg(tmp_path, moto_s3, s3_env):
    cfg = backup_config(moto_s3, moto_s3.new_bucket(), s3_env, {"w": [str(tmp_path)]})
    path = tmp_path / "cfg.json"
    path.write_text(cfg.model_dump_json())
    return cfg, path


def test_two_processes_racing_for_the_prune_marker_never_both_get_it(
    tmp_path, moto_s3, s3_env, atomic_moto_puts
):
    cfg, path = _cfg(tmp_path, moto_s3, s3_env)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for rnd in range(3):
        go = tmp_path / f"go-{rnd}"
        procs = [subprocess.Popen([sys.executable, "-c", RACE, str(path), str(go)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, env=env) for _ in range(2)]  # fmt: skip
        try:
            assert [p.stdout.readline().strip() for p in procs] == ["ready", "ready"]
            go.touch()
            results = [json.loads(p.stdout.readline()) for p in procs]
        finally:
            for p in procs:
                p.communicate("\n", timeout=60)
        assert sorted(r["got"] for r in results) == [False, True], results
        loser = next(r for r in results if not r["got"])
        assert "another prune" in loser["why"], loser
    keys = moto_s3.client().list_objects_v2(Bucket=cfg.bucket, Prefix="llm-backup/locks/").get("KeyCount", 0)
    assert keys == 0  # each winner released its marker


def test_a_finished_prunes_marker_is_taken_over_and_a_live_one_is_not(tmp_path, moto_s3, s3_env):
    cfg, _path = _cfg(tmp_path, moto_s3, s3_env)
    store = open_store(cfg)
    client = moto_s3.client()
    key = "llm-backup/locks/prune.json"  # leases.PRUNE_MARKER
    now = time.time()

    def leave(**kw):
        doc = {
            "kind": "prune",
            "id": "x",
            "host": "other-host",
            "pid": 1,
            "started": now - 60,
            "expires": now + 3600,
        }
        client.put_object(Bucket=cfg.bucket, Key=key, Body=json.dumps({**doc, **kw}).encode())

    leave()  # another host, live
    marker, why, _ = begin_prune_marker(store, 3600)
    assert marker is None and "another prune is running (other-host" in why
    leave(expires=now - 1)  # another host, expired
    marker, why, _ = begin_prune_marker(store, 3600)
    assert marker is not None and why is None
    marker.release()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    leave(host=HOST, pid=int(dead.stdout))  # this host, its process gone
    marker, why, _ = begin_prune_marker(store, 3600)
    assert marker is not None, why
    marker.release()
