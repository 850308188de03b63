"""Backup, restore, verify and prune against a real S3 API (moto server on loopback)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

import pytest

from llm_upkeep.backup import localdb
from llm_upkeep.backup.errors import BackupError
from llm_upkeep.backup.restore import restore_snapshot
from llm_upkeep.backup.retention import list_snapshots, prune
from llm_upkeep.backup.snapshot import load_manifest, open_store, run_backup
from llm_upkeep.backup.verify import verify_snapshot
from tests.backup_helpers import backup_config, make_tree, snapshot_tree


@pytest.fixture(autouse=True)
def _trust_fresh_cache(monkeypatch):
    """Files made by a test are seconds old; let the hash cache trust them (racy rule tested apart)."""
    monkeypatch.setattr(localdb, "RACY_NS", 0)


@pytest.fixture
def bucket(moto_s3):
    return moto_s3.new_bucket()


def _src(tmp_path: Path, n: int = 50) -> Path:
    return make_tree(tmp_path / "src" / "ollama", n=n)


def test_change_one_of_fifty_uploads_one_and_both_snapshots_restore_identical(tmp_path, moto_s3, bucket, s3_env):
    src = _src(tmp_path)
    cfg = backup_config(moto_s3, bucket, s3_env, {"weights": [str(src)]})
    state = tmp_path / "state"
    before = snapshot_tree(src)
    assert len(before) == 50

    r1 = run_backup(cfg, state)
    distinct = len({hashlib.sha256(c).hexdigest() for c, _, _ in before.values()})
    assert r1.files == 50
    assert r1.uploaded_objects == distinct  # identical files share one object
    assert r1.reused_objects == 0

    victim = src / "configs" / sorted(os.listdir(src / "configs"))[0]
    victim.write_bytes(b"changed content that no other file has")
    after = snapshot_tree(src)

    r2 = run_backup(cfg, state)
    assert r2.uploaded_objects == 1
    assert r2.uploaded_bytes == len(b"changed content that no other file has")
    assert r2.hashed_files == 1  # the other 49 came from the hash cache
    assert r2.files == 50

    store = open_store(cfg)
    for snap, expected in ((r1.snapshot, before), (r2.snapshot, after)):
        dest = tmp_path / f"restore-{snap}"
        res = restore_snapshot(store, snap, dest)
        assert res.ok and res.files == 50
        got = snapshot_tree(dest / "weights" / "ollama")
        assert got == expected  # bytes, permission bits and mtimes

    snaps = list_snapshots(store)
    assert [s.snapshot for s in snaps] == [r1.snapshot, r2.snapshot]
    assert snaps[0].files == 50 and snaps[0].bytes == sum(len(c) for c, _, _ in before.values())
