"""Bytes a rerun sends after a multipart upload was cut half way, counted on the wire.

One file of --size-mb random bytes is backed up to a moto S3 server (in this process) through
a proxy that counts the bytes the client sends and cuts every connection once --cut-mb went
up; the run fails (unreachable). Then the proxy lets everything through and the backup runs
again: the report gives the parts the store held after the cut and the bytes the rerun sent.

    .venv/bin/python benchmarks/backup_resume.py --size-mb 300 --cut-mb 150
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from llm_upkeep.backup import localdb  # noqa: E402
from llm_upkeep.backup.errors import BackupError  # noqa: E402
from llm_upkeep.backup.snapshot import run_backup  # noqa: E402
from tests.backup_helpers import backup_config  # noqa: E402
from tests.hostile_http import CuttingProxy  # noqa: E402
from tests.s3_fixtures import ACCESS_ENV, SECRET_ENV, MotoS3  # noqa: E402

MiB = 1024 * 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=300)
    ap.add_argument("--cut-mb", type=int, default=150)
    ap.add_argument("--part-mb", type=int, default=32, help="multipart_chunksize_mib (threshold: 64 or less)")
    ap.add_argument("--concurrency", type=int, default=4, help="max_concurrency")
    ap.add_argument("--algorithm", default="SHA256", choices=["SHA256", "CRC64NVME"])
    args = ap.parse_args()
    os.environ.update({ACCESS_ENV: "testing", SECRET_ENV: "testing", "AWS_CONFIG_FILE": "/dev/null",
                       "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_EC2_METADATA_DISABLED": "true"})  # fmt: skip
    localdb.RACY_NS = 0  # the file was just written; trust the hash cache on the rerun
    moto = MotoS3()
    moto.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "src"
            src.mkdir()
            with open(src / "weights.gguf", "wb") as f:
                for _ in range(args.size_mb):
                    f.write(os.urandom(MiB))
            bucket = moto.new_bucket()
            proxy = CuttingProxy(moto.port, cut_after=args.cut_mb * MiB)
            kw = dict(multipart_threshold_mib=min(64, args.part_mb), multipart_chunksize_mib=args.part_mb,
                      max_concurrency=args.concurrency, checksum_algorithm=args.algorithm,
                      connect_timeout_s=2, read_timeout_s=30)  # fmt: skip
            env = {"access_key_id_env": ACCESS_ENV, "secret_access_key_env": SECRET_ENV}
            cfg = backup_config(proxy, bucket, env, {"w": [str(src)]}, max_attempts=1, **kw)
            try:
                run_backup(cfg, Path(tmp) / "state")
                raise SystemExit("the first run was not cut: lower --cut-mb")
            except BackupError as exc:
                first_error = exc.kind
            first_sent = proxy.sent
            s3 = moto.client()
            ups = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
            stored = 0
            for up in ups:
                parts = s3.list_parts(Bucket=bucket, Key=up["Key"], UploadId=up["UploadId"]).get("Parts", [])
                stored += sum(p["Size"] for p in parts)
            proxy.heal()
            cfg = backup_config(proxy, bucket, env, {"w": [str(src)]}, max_attempts=3, **kw)
            t0 = time.monotonic()
            res = run_backup(cfg, Path(tmp) / "state")
            took = time.monotonic() - t0
            report = {
                "size_bytes": args.size_mb * MiB,
                "part_mb": args.part_mb,
                "concurrency": args.concurrency,
                "algorithm": args.algorithm,
                "first_run_error": first_error,
                "first_run_sent_bytes": first_sent,
                "open_uploads_after_cut": len(ups),
                "parts_bytes_in_store_after_cut": stored,
                "rerun_sent_bytes": proxy.sent,
                "rerun_part_requests": proxy.part_numbers(),
                "rerun_new_uploads": proxy.created_uploads(),
                "rerun_s": round(took, 2),
                "snapshot": res.snapshot,
            }
            proxy.close()
    finally:
        moto.kill()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
