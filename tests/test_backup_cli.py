"""The `backup` CLI contract: --json documents, exit codes, classified errors, unreadable files."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from llm_upkeep.backup import localdb
from llm_upkeep.backup.cli import main
from tests.backup_helpers import backup_config, make_tree, snapshot_tree, write_toml

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _trust_fresh_cache(monkeypatch):
    monkeypatch.setattr(localdb, "RACY_NS", 0)


def _run(capsys, *argv: str) -> tuple[int, object, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    lines = [ln for ln in out.splitlines() if ln.strip()]
    doc = json.loads(out) if "--json" in argv else out
    if "--json" in argv:
        assert len(lines) == 1, out  # exactly one JSON document
    return rc, doc, err


@pytest.fixture
def setup(tmp_path, moto_s3, s3_env):
    src = make_tree(tmp_path / "src" / "store", n=12)
    cfg = backup_config(moto_s3, moto_s3.new_bucket(), s3_env, {"weights": [str(src)]})
    conf = write_toml(tmp_path / "llm-upkeep.toml", cfg, tmp_path / "state")
    return src, cfg, str(conf)


def test_run_list_verify_restore_prune_json(tmp_path, capsys, setup):
    src, cfg, conf = setup
    rc, run, _ = _run(capsys, "backup", "run", "--json", "--config", conf)
    assert rc == 0
    for k in ("snapshot", "files", "bytes", "uploaded_objects", "uploaded_bytes"):
        assert k in run
    assert run["files"] == 12 and run["uploaded_objects"] >= 1

    rc, listing, _ = _run(capsys, "backup", "list", "--json", "--config", conf)
    assert rc == 0 and isinstance(listing, list)
    assert [(s["snapshot"], s["files"], s["bytes"]) for s in listing] == [(run["snapshot"], 12, run["bytes"])]
    assert listing[0]["created"].startswith(run["snapshot"][:4])

    rc, ver, _ = _run(capsys, "backup", "verify", run["snapshot"], "--json", "--config", conf)
    assert rc == 0 and ver["ok"] is True and ver["problems"] == []

    dest = tmp_path / "restored"
    rc, res, _ = _run(capsys, "backup", "restore", "latest", "--to", str(dest), "--json", "--config", conf)
    assert rc == 0 and res["ok"] and res["files"] == 12
    assert snapshot_tree(dest / "weights" / "store") == snapshot_tree(src)

    rc, pr, _ = _run(capsys, "backup", "prune", "--json", "--config", conf)
    assert rc == 0 and pr["kept"] == [run["snapshot"]] and pr["deleted_objects"] == 0


def test_verify_failure_exits_1_and_lists_problems(tmp_path, capsys, setup, moto_s3):
    _, cfg, conf = setup
    rc, run, _ = _run(capsys, "backup", "run", "--json", "--config", conf)
    keys = moto_s3.client().list_objects_v2(Bucket=cfg.bucket, Prefix="llm-backup/objects/")["Contents"]
    moto_s3.client().put_object(Bucket=cfg.bucket, Key=keys[0]["Key"], Body=b"corrupt")
    rc, ver, _ = _run(capsys, "backup", "verify", run["snapshot"], "--json", "--config", conf)
    assert rc == 1 and ver["ok"] is False
    assert ver["problems"][0]["object"] == keys[0]["Key"].removeprefix("llm-backup/")
    rc, text, _ = _run(capsys, "backup", "verify", "latest", "--config", conf)
    assert rc == 1 and "FAILED" in text


def test_restore_conflict_exits_1_and_force_replaces(tmp_path, capsys, setup):
    _, _, conf = setup
    _run(capsys, "backup", "run", "--json", "--config", conf)
    dest = tmp_path / "d"
    assert _run(capsys, "backup", "restore", "latest", "--to", str(dest), "--config", conf)[0] == 0
    victim = next(p for p in dest.rglob("*") if p.is_file() and p.stat().st_size)
    victim.write_bytes(b"mine")
    rc, res, _ = _run(capsys, "backup", "restore", "latest", "--to", str(dest), "--json", "--config", conf)
    assert rc == 1 and res["problems"][0]["problem"] == "conflict" and victim.read_bytes() == b"mine"
    rc, res, _ = _run(
        capsys, "backup", "restore", "latest", "--to", str(dest), "--force", "--json", "--config", conf
    )
    assert rc == 0 and res["files"] == 1 and victim.read_bytes() != b"mine"


def test_not_configured_and_bad_config_exit_2(tmp_path, capsys):
    empty = tmp_path / "empty.toml"
    empty.write_text('[backup]\nprefix = "x"\n')
    rc, doc, err = _run(capsys, "backup", "run", "--json", "--config", str(empty))
    assert rc == 2 and doc["error"] == "not_configured" and "bucket" in err
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[backup]\nbucket = "bkt-x"\n[[backup.sets]]\nname = "w"\npaths = ["/x"]\nexlude = ["*"]\n'
    )
    rc, doc, err = _run(capsys, "backup", "list", "--json", "--config", str(bad))
    assert rc == 2 and doc["error"] == "config" and doc["key"] == "backup.sets[0].exlude"
    assert "Traceback" not in err


def test_bad_snapshot_id_and_unreachable_store_are_classified(tmp_path, capsys, setup, s3_env):
    _, cfg, conf = setup
    rc, doc, _ = _run(capsys, "backup", "verify", "../../etc", "--json", "--config", conf)
    assert rc == 2 and doc["error"] == "bad_snapshot_id"
    dead = backup_config(
        type("S", (), {"endpoint_url": "http://127.0.0.1:9"})(), "bkt-dead", s3_env, {"w": [str(tmp_path)]},
        connect_timeout_s=0.5, max_attempts=1,
    )  # fmt: skip
    conf2 = write_toml(tmp_path / "dead.toml", dead, tmp_path / "state2")
    rc, doc, err = _run(capsys, "backup", "run", "--json", "--config", str(conf2))
    assert rc == 1 and doc["error"] == "unreachable" and "Traceback" not in err


def _without_read_override() -> list[str]:
    """A command prefix under which a chmod 000 file is really unreadable.

    Root reads any file through CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH, so as root the command
    keeps uid 0 (it can still run this checkout's Python wherever it lives) but loses those two
    capabilities; as any other user nothing is needed."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    assert setpriv is not None, "running as root needs setpriv (apt-get install util-linux; .ci/run does)"
    return [setpriv, "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search"]


def test_unreadable_file_is_reported_and_the_rest_backed_up(moto_s3, s3_env):
    prefix = _without_read_override()
    work = Path(tempfile.mkdtemp(prefix="llm-upkeep-unreadable-"))
    try:
        src = make_tree(work / "src", n=10)
        secret = src / "configs" / "locked.key"
        secret.write_bytes(b"cannot read me")
        os.chmod(secret, 0)
        state = work / "state"
        state.mkdir()
        cfg = backup_config(moto_s3, moto_s3.new_bucket(), s3_env, {"w": [str(src)]})
        conf = write_toml(work / "c.toml", cfg, state)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(work), "PYTHONDONTWRITEBYTECODE": "1"}
        probe = subprocess.run([*prefix, "cat", str(secret)], capture_output=True, timeout=30)
        assert probe.returncode != 0, "the chmod 000 file is still readable: the test would prove nothing"
        cmd = [
            *prefix,
            sys.executable,
            "-m",
            "llm_upkeep.backup.cli",
            "backup",
            "run",
            "--json",
            "--config",
            str(conf),
        ]
        proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        doc = json.loads(proc.stdout)
        assert doc["files"] == 10
        assert doc["skipped"] == [
            {"path": "w/src/configs/locked.key", "reason": "unreadable: Permission denied"}
        ]
        assert "locked.key" in proc.stderr  # reported on the log too
        assert stat.S_IMODE(secret.stat().st_mode) == 0
    finally:
        shutil.rmtree(work, ignore_errors=True)
