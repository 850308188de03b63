"""A multipart upload cut half way is resumed on the rerun, not sent again.

Measured on the wire: every request passes through a proxy in front of moto that counts the
bytes the client sends and records each request line, so what was (not) re-sent is seen from
the server's side, not from the backup's own counters.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import pytest

from llm_upkeep.backup import localdb
from llm_upkeep.backup.errors import BackupError
from llm_upkeep.backup.restore import restore_snapshot
from llm_upkeep.backup.resume import _matches
from llm_upkeep.backup.snapshot import open_store, run_backup
from tests.backup_helpers import backup_config
from tests.hostile_http import CuttingProxy

MiB = 1024 * 1024
PART = 5 * MiB
SIZE = 6 * PART + MiB  # 7 parts, the last one short


@pytest.fixture(autouse=True)
def _trust_fresh_cache(monkeypatch):
    monkeypatch.setattr(localdb, "RACY_NS", 0)


def _cut_then_rerun(tmp_path: Path, moto_s3, s3_env, algorithm: str = "SHA256", between=None, **rerun_kw):
    src = tmp_path / "src"
    src.mkdir()
    data = os.urandom(SIZE)
    (src / "weights.gguf").write_bytes(data)
    (src / "config.json").write_text('{"a": 1}')
    bucket = moto_s3.new_bucket()
    proxy = CuttingProxy(moto_s3.port, cut_after=int(2.5 * PART))  # parts 1 and 2 arrive, 3 is cut
    kw = dict(multipart_threshold_mib=5, multipart_chunksize_mib=5, max_concurrency=1, max_attempts=1,
              connect_timeout_s=1, read_timeout_s=5, checksum_algorithm=algorithm)  # fmt: skip
    try:
        cfg = backup_config(proxy, bucket, s3_env, {"w": [str(src)]}, **kw)
        with pytest.raises(BackupError) as ei:
            run_backup(cfg, tmp_path / "state")
        assert ei.value.kind == "unreachable", ei.value
        s3 = moto_s3.client()
        ups = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        assert len(ups) == 1  # left open for the rerun
        stored = s3.list_parts(Bucket=bucket, Key=ups[0]["Key"], UploadId=ups[0]["UploadId"]).get("Parts", [])
        assert [p["PartNumber"] for p in stored] == [1, 2], stored
        if between is not None:
            between(s3, bucket, ups[0])
        proxy.heal()
        cfg = backup_config(proxy, bucket, s3_env, {"w": [str(src)]}, **{**kw, "max_attempts": 3, **rerun_kw})
        result = run_backup(cfg, tmp_path / "state")
        sent, parts, created = proxy.sent, proxy.part_numbers(), proxy.created_uploads()
    finally:
        proxy.close()
    assert result.files == 2 and not result.skipped
    store = open_store(backup_config(moto_s3, bucket, s3_env, {"w": [str(src)]}, **kw))
    restored = restore_snapshot(store, result.snapshot, tmp_path / "out")
    assert restored.ok, restored.problems
    assert (tmp_path / "out" / "w" / "src" / "weights.gguf").read_bytes() == data
    leftover = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    return sent, parts, created, leftover


@pytest.mark.parametrize("algorithm", ["SHA256", "CRC64NVME"])
def test_a_cut_multipart_upload_is_resumed_without_sending_its_completed_parts(
    tmp_path, moto_s3, s3_env, algorithm
):
    sent, parts, created, leftover = _cut_then_rerun(tmp_path, moto_s3, s3_env, algorithm)
    assert parts == [3, 4, 5, 6, 7]  # on the wire: parts 1 and 2 were not sent again
    assert created == 0  # the open upload was resumed, no new one started
    missing = SIZE - 2 * PART
    assert missing <= sent < missing + 256 * 1024, (sent, missing)  # the rest is headers and the manifest
    assert leftover == []


def test_a_stored_part_that_does_not_match_the_file_is_sent_again(tmp_path, moto_s3, s3_env):
    def tamper(s3, bucket, up):  # part 1 replaced by other bytes of the same size
        s3.upload_part(
            Bucket=bucket, Key=up["Key"], UploadId=up["UploadId"], PartNumber=1, Body=os.urandom(PART)
        )

    sent, parts, created, leftover = _cut_then_rerun(tmp_path, moto_s3, s3_env, between=tamper)
    assert parts == [1, 3, 4, 5, 6, 7] and created == 0
    assert SIZE - PART <= sent < SIZE - PART + 256 * 1024
    assert leftover == []


def test_an_open_upload_with_another_part_size_is_aborted_and_the_object_sent_afresh(
    tmp_path, moto_s3, s3_env
):
    sent, parts, created, leftover = _cut_then_rerun(tmp_path, moto_s3, s3_env, multipart_chunksize_mib=6)
    assert created == 1 and parts == [1, 2, 3, 4, 5, 6]  # 6 MiB parts now, from the start
    assert sent >= SIZE and leftover == []


def test_of_two_open_uploads_the_one_holding_parts_is_resumed_and_the_other_aborted(
    tmp_path, moto_s3, s3_env
):
    def second_upload(s3, bucket, up):  # e.g. a run of the old code that was cut before its first part
        s3.create_multipart_upload(Bucket=bucket, Key=up["Key"], ChecksumAlgorithm="SHA256")

    sent, parts, created, leftover = _cut_then_rerun(tmp_path, moto_s3, s3_env, between=second_upload)
    assert parts == [3, 4, 5, 6, 7] and created == 0 and leftover == []


def test_a_part_listed_with_its_checksum_is_judged_by_it_before_its_etag():
    """AWS lists each part's checksum; moto (above) only its ETag, the MD5."""
    body = b"part bytes"
    sha = base64.b64encode(hashlib.sha256(body).digest()).decode()
    md5 = hashlib.md5(body).hexdigest()
    assert _matches({"ChecksumSHA256": sha, "ETag": '"0"'}, sha, md5, "SHA256")
    assert not _matches({"ChecksumSHA256": "other=", "ETag": f'"{md5}"'}, sha, md5, "SHA256")
    assert _matches({"ETag": f'"{md5}"'}, sha, md5, "SHA256")
    assert not _matches({"ETag": f'"{md5}-3"'}, sha, md5, "SHA256")  # not an MD5: send it again
