"""Backup throughput and unchanged-rerun time, side by side with `aws s3 sync` and `s5cmd sync`.

All tools back up the same generated data (a few large "weights", medium files and many
small configs/prompts) to one local moto S3 server started by this script (its own process,
so the server and the clients do not share a GIL). Between tools the server is reset, so
each starts from an empty store. A plain threaded put_object loop gives the server's own
ceiling. The other tools come from a separate virtualenv (--tools-venv), never the project's.

    .venv/bin/python benchmarks/backup.py --size-mb 2048 --small-files 10000

Writes a JSON report (default benchmarks/out/backup.json) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MiB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def generate(root: Path, size_mb: int, small_files: int, seed: int = 7) -> dict:
    """Mixed data: 10,000 small files (1-16 KiB), 24 medium (2-8 MiB), the rest in large blobs."""
    rnd = random.Random(seed)
    small_dir = root / "prompts"
    small_total = 0
    for i in range(small_files):
        d = small_dir / f"group-{i // 500:02d}"
        d.mkdir(parents=True, exist_ok=True)
        n = rnd.randint(1024, 16 * 1024)
        (d / f"template-{i:05d}.txt").write_bytes(rnd.randbytes(n))
        small_total += n
    medium_total = 0
    (root / "configs").mkdir(parents=True, exist_ok=True)
    for i in range(24):
        n = rnd.randint(2 * MiB, 8 * MiB)
        (root / "configs" / f"adapter-{i:02d}.safetensors").write_bytes(rnd.randbytes(n))
        medium_total += n
    remaining = max(0, size_mb * MiB - small_total - medium_total)
    (root / "blobs").mkdir(parents=True, exist_ok=True)
    large_sizes: list[int] = []
    while remaining > 0:
        n = min(remaining, rnd.choice([96, 128, 160, 256]) * MiB)
        large_sizes.append(n)
        remaining -= n
    chunk = rnd.randbytes(8 * MiB)
    for i, n in enumerate(large_sizes):
        with open(root / "blobs" / f"sha256-{i:04d}", "wb") as f:
            left = n
            while left:
                # distinct per file (a counter in every block), cheap to make
                block = (i.to_bytes(4, "big") + left.to_bytes(8, "big")) + chunk[: min(left, 8 * MiB) - 12]
                f.write(block[: min(left, 8 * MiB)])
                left -= min(left, 8 * MiB)
    files = small_files + 24 + len(large_sizes)
    total = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    return {"files": files, "bytes": total, "small_files": small_files, "large_files": len(large_sizes)}


class Moto:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.url + "/moto-api/", timeout=1).read()
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("moto server did not start")

    def reset(self) -> None:
        req = urllib.request.Request(self.url + "/moto-api/reset", method="POST")
        urllib.request.urlopen(req, timeout=60).read()

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
            config=Config(
                retries={"max_attempts": 3, "mode": "standard"},
                max_pool_connections=20,
                connect_timeout=5,
                read_timeout=120,
                request_checksum_calculation="when_required",
            ),
        )

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


CPU: dict[str, float] = {}  # CPU seconds of the last timed() call: client (the tool) and server (moto)
SERVER_PID: list[int] = []


def _server_cpu() -> float:
    if not SERVER_PID:
        return 0.0
    import psutil

    t = psutil.Process(SERVER_PID[0]).cpu_times()
    return t.user + t.system


def timed(cmd: list[str], env: dict, timeout: float = 3600) -> tuple[float, subprocess.CompletedProcess]:
    """Wall time of one tool run; its CPU (client) and the server's CPU during it go into CPU."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    s0 = _server_cpu()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    dt = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU["client"] = round((r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime), 2)
    CPU["server"] = round(_server_cpu() - s0, 2)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return dt, proc


def bench_put_loop(moto: Moto, data: Path, workers: int = 10) -> dict:
    """The server's ceiling: every file once, one put_object each, 10 threads, no checks."""
    c = moto.client()
    c.create_bucket(Bucket="ceiling")
    paths = [p for p in data.rglob("*") if p.is_file()]

    def put(p: Path) -> int:
        body = p.read_bytes()
        c.put_object(Bucket="ceiling", Key=str(p.relative_to(data)), Body=body)
        return len(body)

    s0, c0 = _server_cpu(), time.process_time()
    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        n = sum(pool.map(put, paths))
    dt = time.perf_counter() - t0
    cpu = {"client": round(time.process_time() - c0, 2), "server": round(_server_cpu() - s0, 2)}
    return {"tool": "put_object loop (10 threads)", "first_s": dt, "bytes": n, "first_cpu": cpu}


def bench_awscli(moto: Moto, data: Path, env: dict, venv: Path) -> dict:
    aws = venv / "bin" / "aws"
    c = moto.client()
    c.create_bucket(Bucket="awscli")
    cmd = [
        str(aws),
        "s3",
        "sync",
        str(data),
        "s3://awscli/backup",
        "--endpoint-url",
        moto.url,
        "--only-show-errors",
    ]
    first, _ = timed(cmd, env)
    first_cpu = dict(CPU)
    rerun, proc = timed(cmd, env)
    return {
        "first_cpu": first_cpu,
        "rerun_cpu": dict(CPU),
        "tool": "aws s3 sync",
        "first_s": first,
        "rerun_s": rerun,
        "rerun_output_lines": len(proc.stdout.splitlines()),
    }


def bench_s5cmd(moto: Moto, data: Path, env: dict, venv: Path) -> dict:
    s5 = venv / "bin" / "s5cmd"
    c = moto.client()
    c.create_bucket(Bucket="s5cmd")
    cmd = [str(s5), "--endpoint-url", moto.url, "sync", f"{data}/", "s3://s5cmd/backup/"]
    first, _ = timed(cmd, env)
    first_cpu = dict(CPU)
    rerun, proc = timed(cmd, env)
    return {
        "first_cpu": first_cpu,
        "rerun_cpu": dict(CPU),
        "tool": "s5cmd sync",
        "first_s": first,
        "rerun_s": rerun,
        "rerun_output_lines": len(proc.stdout.splitlines()),
    }


def bench_ours(
    moto: Moto, data: Path, env: dict, work: Path, extra: dict | None = None, label: str = "llm-upkeep"
) -> dict:
    import tomli_w

    c = moto.client()
    bucket = "ours-" + str(abs(hash(label)) % 10**6)
    c.create_bucket(Bucket=bucket)
    state = work / f"state-{bucket}"
    shutil.rmtree(state, ignore_errors=True)
    backup = {
        "bucket": bucket,
        "endpoint_url": moto.url,
        "region": "us-east-1",
        "prefix": "backup",
        "access_key_id_env": "AWS_ACCESS_KEY_ID",
        "secret_access_key_env": "AWS_SECRET_ACCESS_KEY",
        "sets": [{"name": "data", "paths": [str(data)]}],
    }
    backup.update(extra or {})
    conf = work / f"{bucket}.toml"
    conf.write_text(tomli_w.dumps({"state_dir": str(state), "backup": backup}))
    cmd = [sys.executable, "-m", "llm_upkeep.backup.cli", "backup", "run", "--json", "--config", str(conf)]
    first, p1 = timed(cmd, env)
    first_cpu = dict(CPU)
    r1 = json.loads(p1.stdout)
    rerun, p2 = timed(cmd, env)
    rerun_cpu = dict(CPU)
    r2 = json.loads(p2.stdout)
    verify_s, _ = timed(
        [
            sys.executable,
            "-m",
            "llm_upkeep.backup.cli",
            "backup",
            "verify",
            "latest",
            "--json",
            "--config",
            str(conf),
        ],
        env,
    )
    assert r1["uploaded_bytes"] > 0 and r2["uploaded_objects"] == 0 and r2["hashed_files"] == 0, (r1, r2)
    return {
        "tool": label,
        "first_s": first,
        "first_cpu": first_cpu,
        "rerun_cpu": rerun_cpu,
        "first_engine_s": r1["duration_s"],
        "first_upload_s": r1["upload_duration_s"],
        "rerun_s": rerun,
        "rerun_engine_s": r2["duration_s"],
        "verify_s": verify_s,
        "uploaded_objects": r1["uploaded_objects"],
        "config": extra or {},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=2048, help="total data size (default 2048)")
    ap.add_argument("--small-files", type=int, default=10_000, help="number of small files (default 10000)")
    ap.add_argument("--tools-venv", default="/tmp/bench-tools-venv", help="venv with awscli and s5cmd")
    ap.add_argument("--only", nargs="*", default=["ceiling", "awscli", "s5cmd", "ours"], help="which to run")
    ap.add_argument("--ours-variants", default="", help="JSON list of extra [backup] settings to try as well")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "backup.json"))
    ap.add_argument("--workdir", default=None, help="where to generate data (default: a temp dir)")
    args = ap.parse_args(argv)

    work = Path(args.workdir or tempfile.mkdtemp(prefix="llm-upkeep-bench-"))
    data = work / "data"
    shutil.rmtree(data, ignore_errors=True)
    t0 = time.perf_counter()
    info = generate(data, args.size_mb, args.small_files)
    gen_done = time.time()
    print(
        f"generated {info['files']} files, {info['bytes'] / MiB:.0f} MiB in {time.perf_counter() - t0:.1f} s",
        file=sys.stderr,
    )

    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_EC2_METADATA_DISABLED": "true",
        "PYTHONPATH": str(ROOT),
    }
    venv = Path(args.tools_venv)
    results: list[dict] = []
    skipped: dict[str, str] = {}
    moto = Moto()
    SERVER_PID.append(moto.proc.pid)
    try:
        for name in args.only:
            moto.reset()
            try:
                if name == "ceiling":
                    results.append(bench_put_loop(moto, data))
                elif name == "awscli":
                    if not (venv / "bin" / "aws").exists():
                        skipped[name] = f"no aws in {venv}"
                        continue
                    results.append(bench_awscli(moto, data, env, venv))
                elif name == "s5cmd":
                    if not (venv / "bin" / "s5cmd").exists():
                        skipped[name] = f"no s5cmd in {venv}"
                        continue
                    results.append(bench_s5cmd(moto, data, env, venv))
                elif name == "ours":
                    # The hash cache does not trust files changed within 2 s of hashing ("racily
                    # clean"); real model stores are older than that, so wait it out once.
                    time.sleep(max(0.0, gen_done + 2.5 - time.time()))
                    results.append(bench_ours(moto, data, env, work))
                    for i, extra in enumerate(json.loads(args.ours_variants or "[]")):
                        moto.reset()
                        results.append(
                            bench_ours(moto, data, env, work, extra, label=f"llm-upkeep variant {i}")
                        )
            except RuntimeError as exc:
                skipped[name] = str(exc)[:500]
            print(f"{name}: {results[-1] if results else ''}", file=sys.stderr)
    finally:
        moto.stop()

    for r in results:
        r["first_mb_s"] = round(info["bytes"] / MiB / r["first_s"], 1)
    report = {"data": info, "results": results, "skipped": skipped, "cpu_count": os.cpu_count()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(
        f"\ndata: {info['files']} files, {info['bytes'] / MiB:.0f} MiB ({info['small_files']} small, {info['large_files']} large)"
    )
    print(f"{'tool':<30} {'first run':>10} {'MiB/s':>7} {'cpu client/server':>18} {'unchanged rerun':>30}")
    for r in results:
        rerun = f"{r['rerun_s']:.2f} s" if "rerun_s" in r else "-"
        if "rerun_engine_s" in r:
            rerun += f" ({r['rerun_engine_s']:.2f} s engine)"
        cpu = r.get("first_cpu", {})
        cpu_s = f"{cpu.get('client', 0):.1f}/{cpu.get('server', 0):.1f} s"
        print(f"{r['tool']:<30} {r['first_s']:>8.1f} s {r['first_mb_s']:>7.1f} {cpu_s:>18} {rerun:>30}")
    for k, v in skipped.items():
        print(f"skipped {k}: {v}")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
