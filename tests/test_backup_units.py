"""Backup pieces that need no S3: globs, the source walk, hashing, the hash cache, locks, config."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import subprocess
import sys
import time

import pytest

from llm_upkeep.backup import localdb
from llm_upkeep.backup.config import BackupConfig, BackupSet
from llm_upkeep.backup.errors import BackupError
from llm_upkeep.backup.globs import GlobSet
from llm_upkeep.backup.hashing import ChecksumPlan, hash_file, part_size_for, plan_for
from llm_upkeep.backup.leases import LocalLock
from llm_upkeep.backup.restore import unsafe_path_reason
from llm_upkeep.backup.snapshot import scan_sources
from llm_upkeep.backup.sources import walk_sets
from llm_upkeep.config import parse_config
from llm_upkeep.configbase import ConfigError


@pytest.mark.parametrize(
    ("patterns", "path", "hit"),
    [
        (["*.partial"], "blobs/sha256-1.partial", True),
        (["*.partial"], "blobs/sha256-1", False),
        (["manifests/**"], "manifests/registry/library/llama3/8b", True),
        (["manifests/**"], "blobs/manifests/x", False),
        (["**/prompts/*.txt"], "prompts/a.txt", True),
        (["**/prompts/*.txt"], "en/prompts/a.txt", True),
        (["**/prompts/*.txt"], "en/prompts/sub/a.txt", False),
        (["blobs/sha256-[0-9a-f]*"], "blobs/sha256-ab12", True),
        (["blobs/sha256-[!0-9]*"], "blobs/sha256-ab12", True),
        (["blobs/sha256-[!a-z]*"], "blobs/sha256-ab12", False),
        (["tmp/"], "tmp", True),
        (["config.?oml"], "deep/config.toml", True),
    ],
)
def test_globs(patterns, path, hit):
    assert GlobSet(patterns).match(path) is hit


def test_walk_applies_include_exclude_and_records_what_it_skips(tmp_path):
    root = tmp_path / "ollama"
    (root / "blobs").mkdir(parents=True)
    (root / "manifests" / "lib").mkdir(parents=True)
    (root / "tmp").mkdir()
    (root / "blobs" / "sha256-aa").write_bytes(b"a")
    (root / "blobs" / "sha256-bb.partial").write_bytes(b"b")
    (root / "manifests" / "lib" / "latest").write_text("{}")
    (root / "tmp" / "scratch").write_text("x")
    (root / "notes.md").write_text("n")
    os.mkfifo(root / "blobs" / "pipe")
    os.symlink("blobs/sha256-aa", root / "link")
    tree = walk_sets(
        [
            BackupSet(
                name="w",
                paths=[str(root)],
                exclude=["*.partial", "tmp/"],
                include=["blobs/**", "manifests/**", "link", "pipe"],
            ),
            BackupSet(name="missing", paths=[str(tmp_path / "nope")]),
        ]
    )
    assert [f.path for f in tree.files] == ["w/ollama/blobs/sha256-aa", "w/ollama/manifests/lib/latest"]
    assert [(s.path, s.target) for s in tree.symlinks] == [("w/ollama/link", "blobs/sha256-aa")]
    assert sorted((s.path, s.reason.split(" (")[0]) for s in tree.skipped) == [
        ("missing/nope", "path not found"),
        ("w/ollama/blobs/pipe", "not a regular file"),
    ]


def test_root_labels_are_unique_and_a_file_can_be_a_root(tmp_path):
    (tmp_path / "a" / "models").mkdir(parents=True)
    (tmp_path / "b" / "models").mkdir(parents=True)
    (tmp_path / "a" / "models" / "x").write_text("1")
    (tmp_path / "b" / "models" / "x").write_text("2")
    (tmp_path / "Modelfile").write_text("FROM llama3")
    tree = walk_sets(
        [
            BackupSet(
                name="s",
                paths=[str(tmp_path / "a/models"), str(tmp_path / "b/models"), str(tmp_path / "Modelfile")],
            )
        ]
    )
    assert [f.path for f in tree.files] == ["s/models/x", "s/models-2/x", "s/Modelfile"]
    assert [(r.label, r.source) for r in tree.roots][1] == ("models-2", str(tmp_path / "b/models"))


def test_follow_symlinks_backs_up_targets_and_stops_loops(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (real / "f").write_text("data")
    root = tmp_path / "root"
    root.mkdir()
    os.symlink(real, root / "via")
    os.symlink(root, root / "loop")
    tree = walk_sets([BackupSet(name="s", paths=[str(root)], follow_symlinks=True)])
    assert [f.path for f in tree.files] == ["s/root/via/f"]
    assert [s.reason for s in tree.skipped] == ["directory loop through a symlink"]


def test_composite_and_crc_checksums_match_independent_computation(tmp_path):
    data = os.urandom(11 * 1024 * 1024 + 5)
    p = tmp_path / "f"
    p.write_bytes(data)
    part = 5 * 1024 * 1024
    d = hash_file(str(p), ChecksumPlan(crc64nvme=True, part_size=part))
    assert d.sha256 == hashlib.sha256(data).hexdigest()
    digests = [hashlib.sha256(data[i : i + part]).digest() for i in range(0, len(data), part)]
    assert d.parts == 3
    assert d.composite == base64.b64encode(hashlib.sha256(b"".join(digests)).digest()).decode()
    from awscrt import checksums

    assert d.crc64nvme == base64.b64encode(checksums.crc64nvme(data).to_bytes(8, "big")).decode()


def test_part_size_grows_to_stay_within_ten_thousand_parts():
    cfg = BackupConfig(bucket="bkt-a", multipart_chunksize_mib=8)
    assert part_size_for(100 * 2**20, cfg) == 8 * 2**20
    huge = 200 * 2**30  # 200 GiB at 8 MiB would be 25,600 parts
    assert -(-huge // part_size_for(huge, cfg)) <= 10_000
    assert plan_for(10, cfg) == ChecksumPlan(False, None)
    assert plan_for(cfg.multipart_threshold, cfg).part_size == 8 * 2**20
    assert plan_for(10, cfg.model_copy(update={"checksum_algorithm": "CRC64NVME"})).crc64nvme


def _cfg(root) -> BackupConfig:
    return BackupConfig(bucket="bkt-a", sets=[BackupSet(name="s", paths=[str(root)])])


def test_hash_cache_hits_unchanged_files_and_misses_rewritten_ones(tmp_path, monkeypatch):
    monkeypatch.setattr(localdb, "RACY_NS", 0)
    root = tmp_path / "src"
    root.mkdir()
    for i in range(5):
        (root / f"f{i}").write_bytes(b"%d" % i * 100)
    state = tmp_path / "state"
    first = scan_sources(_cfg(root), state)
    assert (first.hashed_files, first.cache_hits) == (5, 0)
    second = scan_sources(_cfg(root), state)
    assert (second.hashed_files, second.cache_hits) == (0, 5)
    assert [h.digest.sha256 for h in second.files] == [h.digest.sha256 for h in first.files]

    # Same size, mtime put back: only ctime (and content) changed. The cache must not be fooled.
    victim = root / "f2"
    st = victim.stat()
    victim.write_bytes(b"X" * st.st_size)
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))
    third = scan_sources(_cfg(root), state)
    assert third.hashed_files == 1
    assert (
        next(h for h in third.files if h.src.path.endswith("f2")).digest.sha256
        == hashlib.sha256(b"X" * st.st_size).hexdigest()
    )


def test_hash_cache_does_not_trust_racily_clean_entries(tmp_path, monkeypatch):
    root = tmp_path / "src"
    root.mkdir()
    (root / "f").write_bytes(b"fresh")
    state = tmp_path / "state"
    monkeypatch.setattr(localdb, "RACY_NS", 60 * 10**9)  # hashed within a minute of its last change
    scan_sources(_cfg(root), state)
    assert scan_sources(_cfg(root), state).hashed_files == 1
    monkeypatch.setattr(localdb, "RACY_NS", 0)
    assert scan_sources(_cfg(root), state).hashed_files == 0


def test_hash_cache_forgets_deleted_files(tmp_path, monkeypatch):
    monkeypatch.setattr(localdb, "RACY_NS", 0)
    root = tmp_path / "src"
    root.mkdir()
    (root / "a").write_text("a")
    (root / "b").write_text("b")
    state = tmp_path / "state"
    scan_sources(_cfg(root), state)
    (root / "b").unlink()
    scan_sources(_cfg(root), state)
    cache = localdb.HashCache(localdb.hash_cache_path(state))
    assert list(cache.load()) == [str(root / "a")]
    cache.close()


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        ("weights/ollama/blobs/x", False),
        ("../x", True),
        ("weights/../../x", True),
        ("/etc/passwd", True),
        ("a//b", True),
        ("a/./b", True),
        ("a/b\x00", True),
        ("", True),
        ("a/..b/c", False),
    ],
)
def test_unsafe_paths(path, bad):
    assert (unsafe_path_reason(path) is not None) is bad


def test_local_lock_refuses_a_live_holder_and_takes_over_a_dead_one(tmp_path):
    path = tmp_path / "backup.lock"
    with LocalLock(path, "backup"):
        with pytest.raises(BackupError) as ei:
            LocalLock(path, "prune").acquire()
        assert ei.value.kind == "locked" and str(os.getpid()) in str(ei.value)
    assert not path.exists()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    path.write_text(
        json.dumps({"pid": int(dead.stdout), "host": socket.gethostname(), "started": time.time()})
    )
    with LocalLock(path, "backup"):
        assert json.loads(path.read_text())["pid"] == os.getpid()
    # What the file says is only a name for the refusal: a lock nobody holds (flock) is free,
    # whichever host wrote it (tests/test_backup_leases.py races two processes for it).


def test_config_section_validation():
    ok = parse_config(
        {
            "backup": {
                "bucket": "my-bkt",
                "prefix": "/llm/",
                "sets": [{"name": "weights", "paths": ["~/.ollama/models"]}],
            }
        }
    )
    assert ok.backup.configured and ok.backup.prefix == "llm" and ok.backup.checksum_algorithm == "SHA256"
    assert not parse_config({}).backup.configured
    cases = [
        ({"bucket": "Bad_Bucket"}, "backup.bucket"),
        ({"bucket": "bkt-a", "storage_class": "GLACIER"}, "backup.storage_class"),
        ({"bucket": "bkt-a", "checksum_algorithm": "MD5"}, "backup.checksum_algorithm"),
        ({"bucket": "bkt-a", "multipart_chunksize_mib": 1}, "backup.multipart_chunksize_mib"),
        ({"bucket": "bkt-a", "access_key_id_env": "K"}, "backup"),
        (
            {"bucket": "bkt-a", "sets": [{"name": "a", "paths": ["/x"]}, {"name": "a", "paths": ["/y"]}]},
            "backup.sets",
        ),
        ({"bucket": "bkt-a", "sets": [{"name": "../x", "paths": ["/x"]}]}, "backup.sets[0].name"),
        ({"bucket": "bkt-a", "sets": [{"name": "a", "paths": []}]}, "backup.sets[0].paths"),
        ({"bucket": "bkt-a", "prefix": "a/../b"}, "backup.prefix"),
        ({"bucket": "bkt-a", "endpoint_url": "minio:9000"}, "backup.endpoint_url"),
    ]
    for section, key in cases:
        with pytest.raises(ConfigError) as ei:
            parse_config({"backup": section})
        assert ei.value.key == key, (section, ei.value)


def test_every_config_field_is_described():
    from llm_upkeep.backup.config import BackupConfig, BackupSet

    for model in (BackupConfig, BackupSet):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name}"


def test_backup_errors_survive_pickling():
    import pickle

    from llm_upkeep.backup.errors import NotConfiguredError

    for err in (BackupError("unreachable", "S3 down", retryable=True), NotConfiguredError("/etc/x.toml")):
        back = pickle.loads(pickle.dumps(err))
        assert (type(back), back.kind, str(back), back.retryable) == (
            type(err),
            err.kind,
            str(err),
            err.retryable,
        )
