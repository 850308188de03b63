"""Malformed, hostile and oversized S3 documents: every case is a classified error or problem,
never a traceback, and nothing is written outside the restore root (docs/bad-input.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomli_w

from llm_upkeep.backup import localdb
from llm_upkeep.backup import store as store_mod
from llm_upkeep.backup.errors import BackupError
from llm_upkeep.backup.leases import list_leases
from llm_upkeep.backup.restore import restore_snapshot
from llm_upkeep.backup.retention import prune
from llm_upkeep.backup.snapshot import open_store, run_backup
from llm_upkeep.backup.verify import verify_snapshot
from tests.backup_helpers import backup_config, make_tree

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _trust_fresh_cache(monkeypatch):
    monkeypatch.setattr(localdb, "RACY_NS", 0)


@pytest.fixture
def snap(tmp_path, moto_s3, s3_env):
    """A real snapshot; plant(doc or bytes, suffix) writes a tampered copy and returns its id."""
    bucket = moto_s3.new_bucket()
    cfg = backup_config(
        moto_s3, bucket, s3_env, {"weights": [str(make_tree(tmp_path / "src" / "ollama", n=4))]}
    )
    r = run_backup(cfg, tmp_path / "state")
    client = moto_s3.client()
    doc = json.loads(
        client.get_object(Bucket=bucket, Key=f"llm-backup/snapshots/{r.snapshot}.json")["Body"].read()
    )

    def plant(body, suffix: str) -> str:
        sid = r.snapshot[:-6] + suffix
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        client.put_object(Bucket=bucket, Key=f"llm-backup/snapshots/{sid}.json", Body=data)
        return sid

    return cfg, doc, plant, client, bucket


def _f(doc: dict, **kw) -> dict:
    return {**doc, "files": [dict(doc["files"][0], **kw)]}


MALFORMED = {
    "not_json": lambda d: b"\x89PNG\r\n\x1a\n not a manifest",
    "invalid_utf8": lambda d: b'{"format": "llm-upkeep-backup/1", "host": "\xff\xfe"}',
    "json_array": lambda d: [1, 2, 3],
    "files_not_a_list": lambda d: {**d, "files": "everything"},
    "file_not_an_object": lambda d: {**d, "files": [42]},
    "size_is_text": lambda d: _f(d, size="big"),
    "size_negative": lambda d: _f(d, size=-1),
    "mode_is_list": lambda d: _f(d, mode=[7, 5, 5]),
    "sha_not_hex": lambda d: _f(d, sha256="zz" * 32),
    "object_elsewhere": lambda d: _f(d, object="../../other-bucket/key"),
    "absolute_path": lambda d: _f(d, path="/etc/cron.d/evil"),
    "dotdot_path": lambda d: _f(d, path="weights/../../../etc/passwd"),
    "nul_in_path": lambda d: _f(d, path="weights/a\x00b"),
    "link_to_absolute": lambda d: {
        **d,
        "files": [],
        "symlinks": [{"path": "weights/l", "target": "/etc/shadow"}],
    },
    "link_chain": lambda d: {
        **d,
        "symlinks": [{"path": "weights/x", "target": ".."}, {"path": "weights/x/y", "target": "../.."}],
    },  # fmt: skip
    "wrong_format": lambda d: {**d, "format": "llm-upkeep-backup/99"},
    "missing_stats": lambda d: {k: v for k, v in d.items() if k != "stats"},
    "deeply_nested": lambda d: ("[" * 100_000 + "]" * 100_000).encode(),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_manifest_is_refused_and_nothing_is_written(tmp_path, snap, case):
    cfg, doc, plant, _client, _bucket = snap
    sid = plant(MALFORMED[case](doc), f"{abs(hash(case)) % 0xFFFFFF:06x}")
    store = open_store(cfg)
    dest = tmp_path / "a" / "dest"
    try:
        res = restore_snapshot(store, sid, dest)
    except BackupError as exc:
        assert exc.kind in ("bad_manifest", "unsafe_manifest"), exc
    else:  # a link that would leave the root: the files come back, the link does not
        assert not res.ok and {p.problem for p in res.problems} <= {"symlink_outside"}, res
    outside = [p for p in (tmp_path / "a").rglob("*") if not str(p).startswith(str(dest))]
    assert outside == [], outside
    for p in dest.rglob("*") if dest.exists() else []:
        assert os.path.realpath(p).startswith(str(dest)), p
    try:
        v = verify_snapshot(store, sid)
    except BackupError as exc:
        assert exc.kind in ("bad_manifest", "unsafe_manifest"), exc
    else:  # an absolute link is a fact of the backed-up tree (recorded, never recreated)
        assert not v.ok or case == "link_to_absolute", v


def test_the_cli_reports_a_bad_manifest_in_one_line(tmp_path, snap, s3_env):
    cfg, doc, plant, _client, _bucket = snap
    sid = plant(MALFORMED["file_not_an_object"](doc), "abcdef")
    path = tmp_path / "llm-upkeep.toml"
    path.write_text(tomli_w.dumps({"state_dir": str(tmp_path / "state"),
                                   "backup": cfg.model_dump(mode="json", exclude_none=True)}))  # fmt: skip
    p = subprocess.run([sys.executable, "-m", "llm_upkeep.cli", "backup", "restore", sid, "--to", str(tmp_path / "d"),
                        "--config", str(path)], env=dict(os.environ, PYTHONPATH=str(ROOT)),
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert p.returncode != 0 and "Traceback" not in p.stderr, p.stderr
    assert "bad_manifest" in p.stderr and not (tmp_path / "d").exists()


def test_an_oversized_manifest_is_not_read(tmp_path, snap, monkeypatch):
    """Review finding: manifests were read whole, whatever their size."""
    cfg, doc, plant, _client, _bucket = snap
    monkeypatch.setattr(store_mod, "MAX_DOC_BYTES", 1024 * 1024)
    padded = {**doc, "skipped": [{"path": "p" * 1000, "reason": "x"}] * 3000}  # about 3 MB
    sid = plant(padded, "fffff0")
    with pytest.raises(BackupError) as ei:
        restore_snapshot(open_store(cfg), sid, tmp_path / "dest")
    assert ei.value.kind == "too_large" and "1048576" in str(ei.value)
    assert not (tmp_path / "dest").exists()


def test_an_oversized_or_garbage_lease_blocks_the_sweep_and_is_not_read(tmp_path, snap):
    """A lease marker is a few hundred bytes: a 2 MB one is unreadable (read no further), and an
    unreadable marker counts as live, so prune deletes no object under it."""
    cfg, _doc, _plant, client, bucket = snap
    client.put_object(Bucket=bucket, Key="llm-backup/locks/backup-huge.json", Body=b"{" + b" " * (2 << 20))
    client.put_object(Bucket=bucket, Key="llm-backup/locks/backup-list.json", Body=b"[1, 2]")
    leases = list_leases(open_store(cfg))
    assert sorted(x.kind for x in leases) == ["unknown", "unknown"] and all(x.live for x in leases)
    client.put_object(Bucket=bucket, Key="llm-backup/objects/sha256/" + "e" * 64, Body=b"orphan")
    t0 = time.monotonic()
    res = prune(cfg, tmp_path / "state")
    assert res.sweep_skipped and res.deleted_objects == 0, res
    assert client.head_object(Bucket=bucket, Key="llm-backup/objects/sha256/" + "e" * 64)
    assert time.monotonic() - t0 < 60
