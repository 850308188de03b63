"""Backups of a fleet in one bucket (moto server on loopback): every host's snapshots live in their
own namespace with their own keep_snapshots, while the content-addressed objects are shared, so a
prune on one host must never remove another host's snapshot or an object one of them names."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import tomli_w

from llm_upkeep.backup import localdb
from llm_upkeep.backup.cli import main
from llm_upkeep.backup.restore import restore_snapshot, run_restore_drill
from llm_upkeep.backup.retention import list_snapshots, prune
from llm_upkeep.backup.snapshot import ALL_NAMESPACES, open_store, run_backup
from llm_upkeep.backup.verify import verify_snapshot
from tests.backup_helpers import backup_config, make_tree, snapshot_tree


@pytest.fixture(autouse=True)
def _trust_fresh_cache(monkeypatch):
    monkeypatch.setattr(localdb, "RACY_NS", 0)


ONLY = "host = '{host}'\n"
GONE = "only in B's first snapshot"


def _host_tree(tmp_path: Path, host: str) -> Path:
    """The same model store on every host (shared objects), plus a file only this host has."""
    src = make_tree(tmp_path / host / "src", n=8, seed=7)
    (src / "configs" / f"only-{host}.toml").write_text(ONLY.format(host=host))
    return src


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_a_hosts_prune_keeps_other_hosts_snapshots_and_every_object_they_name(tmp_path, moto_s3, s3_env):
    bucket = moto_s3.new_bucket()
    srcs = {h: _host_tree(tmp_path, h) for h in ("gpu-a", "gpu-b")}
    cfgs = {h: backup_config(moto_s3, bucket, s3_env, {"store": [str(srcs[h])]}, keep_snapshots=1) for h in srcs}
    state = {h: tmp_path / h / "state" for h in srcs}
    a = run_backup(cfgs["gpu-a"], state["gpu-a"], host="gpu-a")
    assert a.snapshot.startswith("gpu-a/")
    # B backs up three times; a file it had only in its first snapshot must go, A's must not.
    gone = srcs["gpu-b"] / "configs" / "b-once.txt"
    gone.write_text(GONE)
    b_snaps = [run_backup(cfgs["gpu-b"], state["gpu-b"], host="gpu-b").snapshot]
    gone.unlink()
    b_snaps += [run_backup(cfgs["gpu-b"], state["gpu-b"], host="gpu-b").snapshot for _ in range(2)]

    store = open_store(cfgs["gpu-b"])
    dry = prune(cfgs["gpu-b"], state["gpu-b"], dry_run=True, host="gpu-b")
    assert dry.kept == b_snaps[-1:] and dry.deleted_snapshots == b_snaps[:2] and dry.deleted_objects == 1

    res = prune(cfgs["gpu-b"], state["gpu-b"], host="gpu-b")
    assert res.kept == b_snaps[-1:] and res.deleted_snapshots == b_snaps[:2]
    assert res.deleted_objects == 1  # only B's vanished file; the shared ones are still named by A and B
    assert store.head(f"objects/sha256/{_sha(GONE)}") is None
    # A's only snapshot survives B's prune, and so does every object it names (its own file too).
    assert [s.snapshot for s in list_snapshots(store, "gpu-a")] == [a.snapshot]
    assert store.head(f"objects/sha256/{_sha(ONLY.format(host='gpu-a'))}") is not None
    assert verify_snapshot(store, a.snapshot).ok
    # A's own prune with keep 1 deletes nothing of B's either.
    assert prune(cfgs["gpu-a"], state["gpu-a"], host="gpu-a").deleted_snapshots == []
    assert [s.snapshot for s in list_snapshots(store, ALL_NAMESPACES)] == sorted(
        [a.snapshot, b_snaps[-1]], key=lambda r: r.rpartition("/")[2]
    )


def test_retention_counts_each_hosts_snapshots_apart(tmp_path, moto_s3, s3_env):
    """The old shared count: with N hosts each kept about keep/N; now every host keeps keep_snapshots."""
    bucket = moto_s3.new_bucket()
    hosts = ("h1", "h2", "h3")
    srcs = {h: _host_tree(tmp_path, h) for h in hosts}
    cfg = {h: backup_config(moto_s3, bucket, s3_env, {"store": [str(srcs[h])]}, keep_snapshots=2) for h in hosts}
    made = {h: [] for h in hosts}
    for _ in range(2):
        for h in hosts:
            made[h].append(run_backup(cfg[h], tmp_path / h / "state", host=h).snapshot)
    for h in hosts:
        assert prune(cfg[h], tmp_path / h / "state", host=h).deleted_snapshots == []
    store = open_store(cfg["h1"])
    for h in hosts:
        assert [s.snapshot for s in list_snapshots(store, h)] == made[h]


def test_latest_restore_and_drill_use_this_hosts_snapshots_even_when_another_backed_up_last(
    tmp_path, moto_s3, s3_env
):
    bucket = moto_s3.new_bucket()
    srcs = {h: _host_tree(tmp_path, h) for h in ("gpu-a", "gpu-b")}
    cfgs = {h: backup_config(moto_s3, bucket, s3_env, {"store": [str(srcs[h])]}) for h in srcs}
    a = run_backup(cfgs["gpu-a"], tmp_path / "gpu-a" / "state", host="gpu-a")
    run_backup(cfgs["gpu-b"], tmp_path / "gpu-b" / "state", host="gpu-b")  # the newest in the bucket
    store = open_store(cfgs["gpu-a"])
    got = restore_snapshot(store, "latest", tmp_path / "restored", host="gpu-a")
    assert got.snapshot == a.snapshot and got.ok
    restored = snapshot_tree(tmp_path / "restored" / "store")
    assert any(p.endswith("only-gpu-a.toml") for p in restored)
    assert not any(p.endswith("only-gpu-b.toml") for p in restored)
    drill = run_restore_drill(cfgs["gpu-a"], sample_files=50, host="gpu-a", seed=3)
    assert drill.snapshot == a.snapshot and drill.ok
    assert drill.matched_source == drill.restored > 0  # compared with A's own files
    with pytest.raises(Exception, match="no snapshots of host gpu-c"):
        restore_snapshot(store, "latest", tmp_path / "x", host="gpu-c")


def test_cli_takes_a_host_and_defaults_to_this_hosts_namespace(tmp_path, moto_s3, s3_env, capsys, monkeypatch):
    bucket = moto_s3.new_bucket()
    srcs = {h: _host_tree(tmp_path, h) for h in ("gpu-a", "gpu-b")}
    confs = {}
    for h, src in srcs.items():
        cfg = backup_config(moto_s3, bucket, s3_env, {"store": [str(src)]})
        data = {"state_dir": str(tmp_path / h / "state"), "backup": cfg.model_dump(mode="json", exclude_none=True),
                "fleet": {"hosts": [{"name": "gpu-a"}, {"name": "gpu-b"}]}}  # fmt: skip
        confs[h] = tmp_path / f"{h}.toml"
        confs[h].write_text(tomli_w.dumps(data))

    def run(*argv):
        rc = main(list(argv))
        out = capsys.readouterr().out
        return rc, json.loads(out)

    monkeypatch.setenv("LLM_UPKEEP_HOST", "gpu-a")  # what `llm-upkeep worker --host gpu-a` sets
    rc, a = run("backup", "run", "--json", "--config", str(confs["gpu-a"]))
    assert rc == 0 and a["snapshot"].startswith("gpu-a/")
    monkeypatch.delenv("LLM_UPKEEP_HOST")
    rc, b = run("backup", "run", "--json", "--config", str(confs["gpu-b"]), "--host", "gpu-b")
    assert rc == 0 and b["snapshot"].startswith("gpu-b/")

    rc, listing = run("backup", "list", "--json", "--config", str(confs["gpu-a"]), "--host", "gpu-a")
    assert [s["snapshot"] for s in listing] == [a["snapshot"]]
    rc, listing = run("backup", "list", "--json", "--config", str(confs["gpu-a"]), "--all-hosts")
    assert {s["snapshot"] for s in listing} == {a["snapshot"], b["snapshot"]}
    rc, ver = run("backup", "verify", "latest", "--json", "--config", str(confs["gpu-a"]), "--host", "gpu-a")
    assert rc == 0 and ver["snapshot"] == a["snapshot"]
    rc, res = run("backup", "restore", "latest", "--to", str(tmp_path / "r"), "--json", "--config",
                  str(confs["gpu-a"]), "--host", "gpu-a")  # fmt: skip
    assert rc == 0 and res["snapshot"] == a["snapshot"]
    assert (tmp_path / "r" / "store" / "src" / "configs" / "only-gpu-a.toml").is_file()
    assert main(["backup", "list", "--config", str(confs["gpu-a"]), "--host", "gpu-z"]) == 2
    assert "no fleet host named 'gpu-z'" in capsys.readouterr().err
