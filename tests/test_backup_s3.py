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


def test_change_one_of_fifty_uploads_one_and_both_snapshots_restore_identical(
    tmp_path, moto_s3, bucket, s3_env
):
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


@pytest.mark.parametrize("algorithm", ["SHA256", "CRC64NVME"])
def test_multipart_uploads_carry_the_checksum_we_computed(tmp_path, moto_s3, bucket, s3_env, algorithm):
    src = tmp_path / "src" / "models"
    src.mkdir(parents=True)
    big = os.urandom(12 * 1024 * 1024 + 7)
    (src / "weights.gguf").write_bytes(big)
    (src / "small.json").write_text('{"a": 1}')
    cfg = backup_config(
        moto_s3, bucket, s3_env, {"w": [str(src)]},
        checksum_algorithm=algorithm, multipart_threshold_mib=5, multipart_chunksize_mib=5,
    )  # fmt: skip
    r = run_backup(cfg, tmp_path / "state")
    assert r.uploaded_objects == 2
    store = open_store(cfg)
    m = load_manifest(store, r.snapshot)
    rec = m.objects[hashlib.sha256(big).hexdigest()]
    head = moto_s3.client().head_object(
        Bucket=bucket, Key=f"llm-backup/{m.files[1].object}", ChecksumMode="ENABLED"
    )
    if algorithm == "SHA256":
        # Composite: sha256 over the three part digests (5 + 5 + 2 MiB), computed independently here.
        parts = [hashlib.sha256(big[i : i + 5 * 2**20]).digest() for i in range(0, len(big), 5 * 2**20)]
        expected = base64.b64encode(hashlib.sha256(b"".join(parts)).digest()).decode()
        assert (rec.type, rec.parts, rec.checksum) == ("COMPOSITE", 3, expected)
        assert head["ChecksumSHA256"].split("-")[0] == expected
    else:
        from awscrt import checksums

        expected = base64.b64encode(checksums.crc64nvme(big).to_bytes(8, "big")).decode()
        assert (rec.type, rec.checksum) == ("FULL_OBJECT", expected)
        assert head["ChecksumCRC64NVME"] == expected
    v = verify_snapshot(store, r.snapshot, deep=True)
    assert v.ok and v.objects == 2 and v.deep_checked == 2
    res = restore_snapshot(store, "latest", tmp_path / "out")
    assert res.ok and (tmp_path / "out" / "w" / "models" / "weights.gguf").read_bytes() == big


def test_verify_catches_an_object_overwritten_in_the_store(tmp_path, moto_s3, bucket, s3_env):
    src = _src(tmp_path, n=10)
    cfg = backup_config(moto_s3, bucket, s3_env, {"weights": [str(src)]})
    r = run_backup(cfg, tmp_path / "state")
    store = open_store(cfg)
    assert verify_snapshot(store, r.snapshot).ok
    m = load_manifest(store, r.snapshot)
    victim = next(f for f in m.files if f.size > 100)
    moto_s3.client().put_object(Bucket=bucket, Key=f"llm-backup/{victim.object}", Body=b"bit rot")
    v = verify_snapshot(store, r.snapshot)
    assert not v.ok
    assert [(p.problem, p.object) for p in v.problems] == [("size_mismatch", victim.object)]


def test_deep_verify_catches_content_that_lies_about_its_checksum(tmp_path, moto_s3, bucket, s3_env):
    """Same size, and the stored checksum header copied from the original: only rehashing sees it."""
    src = _src(tmp_path, n=10)
    cfg = backup_config(moto_s3, bucket, s3_env, {"weights": [str(src)]})
    r = run_backup(cfg, tmp_path / "state")
    store = open_store(cfg)
    m = load_manifest(store, r.snapshot)
    victim = next(f for f in m.files if f.size > 100)
    rec = m.objects[victim.sha256]
    moto_s3.client().put_object(
        Bucket=bucket,
        Key=f"llm-backup/{victim.object}",
        Body=b"x" * victim.size,
        ChecksumAlgorithm="SHA256",
        ChecksumSHA256=rec.checksum,  # moto stores a provided checksum without checking it
    )
    assert verify_snapshot(store, r.snapshot).ok  # headers alone are fooled
    deep = verify_snapshot(store, r.snapshot, deep=True)
    assert [(p.problem, p.path) for p in deep.problems] == [("content_mismatch", victim.path)]


def test_missing_object_is_reported(tmp_path, moto_s3, bucket, s3_env):
    src = _src(tmp_path, n=10)
    cfg = backup_config(moto_s3, bucket, s3_env, {"weights": [str(src)]})
    r = run_backup(cfg, tmp_path / "state")
    store = open_store(cfg)
    victim = load_manifest(store, r.snapshot).files[3]
    moto_s3.client().delete_object(Bucket=bucket, Key=f"llm-backup/{victim.object}")
    v = verify_snapshot(store, r.snapshot)
    assert [p.problem for p in v.problems] == ["missing"]


@pytest.mark.parametrize("extra", [20, 130], ids=["head-each-candidate", "one-listing"])
def test_server_killed_mid_backup_then_rerun_sends_only_what_did_not_arrive(
    tmp_path, killable_s3, s3_env, extra, monkeypatch
):
    """Under 100 unknown objects the rerun checks each with HeadObject; above, one listing."""
    bucket = killable_s3.new_bucket()
    src = _src(tmp_path, n=50)
    for i in range(extra):  # distinct content so every file is its own object
        (src / "models" / "blobs" / f"unique-{i}.bin").write_bytes(os.urandom(3000 + i))
    cfg = backup_config(
        killable_s3, bucket, s3_env, {"weights": [str(src)]}, max_concurrency=2, connect_timeout_s=1
    )
    state = tmp_path / "state"
    uploaded_first: list[str] = []

    def kill_after_five(sha: str) -> None:
        uploaded_first.append(sha)
        if len(uploaded_first) == 5:
            killable_s3.kill()

    with pytest.raises(BackupError) as ei:
        run_backup(cfg, state, on_uploaded=kill_after_five)
    assert ei.value.kind == "unreachable" and ei.value.retryable
    killable_s3.restart()
    client = killable_s3.client()
    assert client.list_objects_v2(Bucket=bucket, Prefix="llm-backup/snapshots/").get("KeyCount", 0) == 0
    arrived = {
        o["Key"].rsplit("/", 1)[1]: o["LastModified"]
        for o in client.list_objects_v2(Bucket=bucket, Prefix="llm-backup/objects/")["Contents"]
    }
    assert set(uploaded_first) <= set(arrived)

    uploaded_second: list[str] = []
    from llm_upkeep.backup.store import S3Store

    listed: list[str] = []
    real_list = S3Store.list
    monkeypatch.setattr(S3Store, "list", lambda self, p: (listed.append(p), real_list(self, p))[1])
    r = run_backup(cfg, state, on_uploaded=uploaded_second.append)
    assert listed.count("objects/sha256/") == (1 if extra > 100 else 0)
    assert not set(uploaded_second) & set(arrived)  # nothing that arrived was sent again
    assert r.reused_objects == len(arrived)
    assert r.uploaded_objects + r.reused_objects == len({f for f in _distinct_contents(src)})
    after = {
        o["Key"].rsplit("/", 1)[1]: o["LastModified"]
        for o in client.list_objects_v2(Bucket=bucket, Prefix="llm-backup/objects/")["Contents"]
    }
    assert all(after[k] == t for k, t in arrived.items())
    store = open_store(cfg)
    assert verify_snapshot(store, r.snapshot).ok
    res = restore_snapshot(store, r.snapshot, tmp_path / "out")
    assert res.ok and snapshot_tree(tmp_path / "out" / "weights" / "ollama") == snapshot_tree(src)


def _distinct_contents(root: Path) -> set[str]:
    return {hashlib.sha256(c).hexdigest() for c, _, _ in snapshot_tree(root).values()}


def test_restore_refuses_a_manifest_with_a_dotdot_path(tmp_path, moto_s3, bucket, s3_env):
    src = _src(tmp_path, n=5)
    cfg = backup_config(moto_s3, bucket, s3_env, {"weights": [str(src)]})
    r = run_backup(cfg, tmp_path / "state")
    client = moto_s3.client()
    key = f"llm-backup/snapshots/{r.snapshot}.json"
    doc = json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    planted = dict(doc["files"][0], path="weights/ollama/../../../escaped.txt")
    doc["files"].append(planted)
    evil_id = r.snapshot[:-6] + "eeeeee"
    client.put_object(
        Bucket=bucket, Key=f"llm-backup/snapshots/{evil_id}.json", Body=json.dumps(doc).encode()
    )
    dest = tmp_path / "deep" / "er" / "dest"
    store = open_store(cfg)
    with pytest.raises(BackupError) as ei:
        restore_snapshot(store, evil_id, dest)
    assert ei.value.kind == "unsafe_manifest" and "../" in str(ei.value)
    assert not (tmp_path / "deep" / "escaped.txt").exists()
    assert list(dest.rglob("*")) == []  # nothing at all was written
    v = verify_snapshot(store, evil_id)
    assert "unsafe_path" in [p.problem for p in v.problems] and not v.ok


def test_restore_never_overwrites_without_force(tmp_path, moto_s3, bucket, s3_env):
    src = _src(tmp_path, n=8)
    cfg = backup_config(moto_s3, bucket, s3_env, {"weights": [str(src)]})
    r = run_backup(cfg, tmp_path / "state")
    store = open_store(cfg)
    dest = tmp_path / "dest"
    assert restore_snapshot(store, r.snapshot, dest).files == 8
    target = next(p for p in (dest / "weights" / "ollama").rglob("*") if p.is_file() and p.stat().st_size > 0)
    original = target.read_bytes()
    target.write_bytes(b"local edit")

    again = restore_snapshot(store, r.snapshot, dest)
    assert not again.ok and again.files == 0 and again.identical == 7
    assert [p.problem for p in again.problems] == ["conflict"]
    assert target.read_bytes() == b"local edit"

    forced = restore_snapshot(store, r.snapshot, dest, force=True)
    assert forced.ok and forced.files == 1 and forced.identical == 7
    assert target.read_bytes() == original
    assert not [p for p in dest.rglob(".llm-upkeep-*")]  # no temp files left behind


def test_restore_refuses_a_destination_reached_through_a_symlink(tmp_path, moto_s3, bucket, s3_env):
    src = _src(tmp_path, n=5)
    cfg = backup_config(moto_s3, bucket, s3_env, {"weights": [str(src)]})
    r = run_backup(cfg, tmp_path / "state")
    dest = tmp_path / "dest"
    outside = tmp_path / "outside"
    outside.mkdir()
    (dest / "weights").mkdir(parents=True)
    os.symlink(outside, dest / "weights" / "ollama")
    res = restore_snapshot(open_store(cfg), r.snapshot, dest)
    assert not res.ok and res.files == 0
    assert {p.problem for p in res.problems} == {"unsafe_destination"}
    assert list(outside.iterdir()) == []


def test_restore_selects_paths_by_glob_and_keeps_symlinks_inside(tmp_path, moto_s3, bucket, s3_env):
    src = _src(tmp_path, n=12)
    os.symlink("configs", src / "current")  # relative, inside the root
    os.symlink("/etc/passwd", src / "evil-link")  # absolute: recorded, never recreated
    cfg = backup_config(moto_s3, bucket, s3_env, {"weights": [str(src)]})
    r = run_backup(cfg, tmp_path / "state")
    assert r.symlinks == 2
    store = open_store(cfg)
    part = restore_snapshot(store, r.snapshot, tmp_path / "part", patterns=["weights/ollama/configs"])
    restored = [p for p in (tmp_path / "part").rglob("*") if p.is_file()]
    assert part.ok and restored and all("/configs/" in str(p) for p in restored)
    full = restore_snapshot(store, r.snapshot, tmp_path / "full")
    assert os.readlink(tmp_path / "full" / "weights" / "ollama" / "current") == "configs"
    assert not os.path.lexists(tmp_path / "full" / "weights" / "ollama" / "evil-link")
    assert [p.problem for p in full.problems] == ["symlink_outside"]


def test_unchanged_rerun_lists_no_objects_and_heads_nothing(tmp_path, moto_s3, bucket, s3_env, monkeypatch):
    src = _src(tmp_path, n=200)
    cfg = backup_config(moto_s3, bucket, s3_env, {"weights": [str(src)]})
    state = tmp_path / "state"
    run_backup(cfg, state)
    from llm_upkeep.backup.store import S3Store

    calls: list[str] = []
    real_list, real_head = S3Store.list, S3Store.head
    monkeypatch.setattr(S3Store, "list", lambda self, p: (calls.append(f"list {p}"), real_list(self, p))[1])
    monkeypatch.setattr(S3Store, "head", lambda self, k: (calls.append(f"head {k}"), real_head(self, k))[1])
    r = run_backup(cfg, state)
    assert (r.hashed_files, r.uploaded_objects, r.files) == (0, 0, 200)
    assert not [c for c in calls if "objects/" in c]
    assert sorted(calls) == ["list locks/", "list snapshots/"]


def test_lost_state_dir_rebuilds_from_the_store(tmp_path, moto_s3, bucket, s3_env):
    src = _src(tmp_path, n=20)
    cfg = backup_config(moto_s3, bucket, s3_env, {"weights": [str(src)]})
    run_backup(cfg, tmp_path / "state-a")
    r = run_backup(cfg, tmp_path / "state-b")  # a new host / wiped state: rehash, but upload nothing
    assert r.uploaded_objects == 0 and r.hashed_files == 20


def test_prune_keeps_what_kept_snapshots_need(tmp_path, moto_s3, bucket, s3_env):
    src = _src(tmp_path, n=10)
    cfg = backup_config(moto_s3, bucket, s3_env, {"weights": [str(src)]}, keep_snapshots=2)
    state = tmp_path / "state"
    only_in_first = src / "configs" / "gone.txt"
    only_in_first.write_bytes(b"exists only in the first snapshot")
    r1 = run_backup(cfg, state)
    only_in_first.unlink()
    r2 = run_backup(cfg, state)
    (src / "configs" / "new.txt").write_bytes(b"new in the third")
    r3 = run_backup(cfg, state)
    store = open_store(cfg)

    dry = prune(cfg, state, dry_run=True)
    assert dry.deleted_snapshots == [r1.snapshot] and dry.deleted_objects == 1
    assert [s.snapshot for s in list_snapshots(store)] == [r1.snapshot, r2.snapshot, r3.snapshot]

    res = prune(cfg, state)
    assert (res.kept, res.deleted_snapshots, res.deleted_objects) == (
        [r2.snapshot, r3.snapshot],
        [r1.snapshot],
        1,
    )
    assert res.deleted_bytes == len(b"exists only in the first snapshot")
    gone = hashlib.sha256(b"exists only in the first snapshot").hexdigest()
    assert store.head(f"objects/sha256/{gone}") is None
    for snap in (r2.snapshot, r3.snapshot):
        assert verify_snapshot(store, snap).ok
    assert prune(cfg, state).deleted_objects == 0  # idempotent


def test_prune_sweeps_nothing_while_a_backup_holds_a_live_lease(tmp_path, moto_s3, bucket, s3_env):
    from llm_upkeep.backup.leases import RemoteLease

    src = _src(tmp_path, n=5)
    cfg = backup_config(moto_s3, bucket, s3_env, {"weights": [str(src)]}, keep_snapshots=1)
    state = tmp_path / "state"
    run_backup(cfg, state)
    store = open_store(cfg)
    # A backup elsewhere has uploaded an object its manifest will name, and is still running.
    pending = b"uploaded by a backup still running"
    sha = hashlib.sha256(pending).hexdigest()
    moto_s3.client().put_object(Bucket=bucket, Key=f"llm-backup/objects/sha256/{sha}", Body=pending)
    lease = RemoteLease(store, "backup", "20261128T030000.000Z-abcdef", ttl_s=3600)
    lease.write()
    res = prune(cfg, state)
    assert res.sweep_skipped and "live lease" in res.sweep_skipped
    assert store.head(f"objects/sha256/{sha}") is not None

    # The same lease, expired (its backup died): pruning goes ahead and removes it.
    lease.ttl_s = -1
    lease.write()
    res = prune(cfg, state)
    assert res.sweep_skipped is None and res.expired_leases == 1 and res.deleted_objects == 1
    assert store.head(f"objects/sha256/{sha}") is None
    assert list(store.list("locks/")) == []


def test_backup_waits_for_a_running_prune_then_gives_up(tmp_path, moto_s3, bucket, s3_env):
    from llm_upkeep.backup.leases import RemoteLease

    src = _src(tmp_path, n=3)
    cfg = backup_config(moto_s3, bucket, s3_env, {"weights": [str(src)]}, prune_wait_s=0.3)
    store = open_store(cfg)
    marker = RemoteLease(store, "prune", "elsewhere", ttl_s=3600)
    marker.host = "another-host"
    store.put_json(
        marker.rel,
        {"kind": "prune", "id": "x", "host": "another-host", "pid": 1, "started": 0, "expires": 4e9},
    )
    with pytest.raises(BackupError) as ei:
        run_backup(cfg, tmp_path / "state")
    assert ei.value.kind == "prune_in_progress"
    assert [o["rel"] for o in store.list("locks/")] == [marker.rel]  # our own lease was withdrawn
    store.delete_one(marker.rel)
    assert run_backup(cfg, tmp_path / "state").files == 3


def test_changing_the_checksum_algorithm_does_not_reupload_known_objects(tmp_path, moto_s3, bucket, s3_env):
    src = _src(tmp_path, n=12)
    state = tmp_path / "state"
    crc = backup_config(moto_s3, bucket, s3_env, {"weights": [str(src)]}, checksum_algorithm="CRC64NVME")
    r1 = run_backup(crc, state)
    # Leave its objects unreferenced (as after a crash before the manifest), then switch algorithm.
    moto_s3.client().delete_object(Bucket=bucket, Key=f"llm-backup/snapshots/{r1.snapshot}.json")
    sha = crc.model_copy(update={"checksum_algorithm": "SHA256"})
    r2 = run_backup(sha, state)
    assert r2.uploaded_objects == 0 and r2.reused_objects == r1.uploaded_objects
    store = open_store(sha)
    assert {r.algorithm for r in load_manifest(store, r2.snapshot).objects.values()} == {"CRC64NVME"}
    assert verify_snapshot(store, r2.snapshot).ok
    # New content under the new setting is stored with SHA256.
    (src / "configs" / "new.txt").write_text("new content")
    r3 = run_backup(sha, state)
    m3 = load_manifest(store, r3.snapshot)
    new = hashlib.sha256(b"new content").hexdigest()
    assert r3.uploaded_objects == 1 and m3.objects[new].algorithm == "SHA256"
    assert verify_snapshot(store, r3.snapshot).ok


def _backup_then_plant(tmp_path, moto_s3, bucket, s3_env, n: int):
    """A real snapshot, and a function planting a hand-edited copy of its manifest (returns the id)."""
    cfg = backup_config(moto_s3, bucket, s3_env, {"weights": [str(_src(tmp_path, n=n))]})
    r = run_backup(cfg, tmp_path / "state")
    client = moto_s3.client()
    key = f"llm-backup/snapshots/{r.snapshot}.json"
    doc = json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())

    def plant(symlinks: list[dict], files: list[dict], suffix: str) -> str:
        sid = r.snapshot[:-6] + suffix
        body = json.dumps({**doc, "symlinks": symlinks, "files": files}).encode()
        client.put_object(Bucket=bucket, Key=f"llm-backup/snapshots/{sid}.json", Body=body)
        return sid

    return open_store(cfg), doc, plant


def test_restore_refuses_chained_symlinks_that_climb_out_of_the_root(tmp_path, moto_s3, bucket, s3_env):
    """Review finding: links ``x/y -> ..`` then ``x/y/esc -> ../..`` then a file
    ``x/y/esc/victim.txt`` replaced a file two levels above the restore root. Each link looks
    inside the root on its own; only the chain leaves it."""
    store, doc, plant = _backup_then_plant(tmp_path, moto_s3, bucket, s3_env, n=3)
    base = "weights/ollama"
    chain = [{"path": f"{base}/x/y", "target": ".."}, {"path": f"{base}/x/y/esc", "target": "../.."}]
    evil_id = plant(chain, [dict(doc["files"][0], path=f"{base}/x/y/esc/victim.txt")], "cccccc")
    dest = tmp_path / "g" / "p" / "dest"
    dest.mkdir(parents=True)
    victims = [tmp_path / "g" / "victim.txt", tmp_path / "g" / "p" / "victim.txt"]
    for v in victims:
        v.write_bytes(b"precious")
    try:
        res = restore_snapshot(store, evil_id, dest, force=True)
    except BackupError as exc:
        assert exc.kind == "unsafe_manifest", exc
    else:
        assert not res.ok and res.problems, res
    assert [v.read_bytes() for v in victims] == [b"precious", b"precious"]
    assert not (dest / "weights" / "victim.txt").exists()
    leaked = [
        p for p in (tmp_path / "g").rglob("*") if not str(p).startswith(str(dest)) and p.name != "victim.txt"
    ]
    assert leaked == [tmp_path / "g" / "p"], leaked  # nothing created beside or above the root
    for p in dest.rglob("*"):  # whatever was created under the root resolves inside it
        assert os.path.realpath(p).startswith(str(dest)), p

    # The links alone: the second one was created through the first, as dest/esc -> ../..
    links_id = plant(chain, [], "cccccd")
    dest2 = tmp_path / "g" / "q" / "dest"
    try:
        restore_snapshot(store, links_id, dest2)
    except BackupError as exc:
        assert exc.kind == "unsafe_manifest", exc
    made = [*dest2.rglob("*"), *(tmp_path / "g" / "q").glob("*")]
    outside = [str(p) for p in made if not os.path.realpath(p).startswith(str(dest2))]
    assert outside == [], f"links resolving outside the restore root: {outside}"


def test_restore_never_creates_a_link_whose_target_climbs_through_another_link(
    tmp_path, moto_s3, bucket, s3_env
):
    """``z -> x/y/../../..`` stays inside the root on paper, but with ``x/y -> ..`` on disk it
    points above it: the target is resolved on disk when the link is made."""
    store, _doc, plant = _backup_then_plant(tmp_path, moto_s3, bucket, s3_env, n=1)
    base = "weights/ollama"
    links = [{"path": f"{base}/x/y", "target": ".."}, {"path": f"{base}/z", "target": "x/y/../../.."}]
    evil_id = plant(links, [], "dddddd")
    dest = tmp_path / "dest"
    res = restore_snapshot(store, evil_id, dest)
    assert not os.path.lexists(dest / base / "z")
    assert [p.problem for p in res.problems] == ["symlink_outside"] and not res.ok
