"""Helpers shared by the backup tests (not fixtures: plain functions)."""

from __future__ import annotations

import os
from pathlib import Path

from llm_upkeep.backup.config import BackupConfig, BackupSet


def make_tree(root: Path, n: int = 50, seed: int = 1) -> Path:
    """A small model store: weights blobs, manifests, configs and prompt templates (n files)."""
    rnd = __import__("random").Random(seed)
    layout = [("models/blobs", 0.4), ("models/manifests/library", 0.2), ("configs", 0.2), ("prompts/en", 0.2)]
    i = 0
    for sub, share in layout:
        d = root / sub
        d.mkdir(parents=True, exist_ok=True)
        for _ in range(max(1, int(n * share))):
            if i >= n:
                break
            size = rnd.choice([0, 17, 1000, 4096, 70_000])
            (d / f"file-{i:03d}.bin").write_bytes(rnd.randbytes(size))
            i += 1
    while i < n:
        (root / "configs" / f"extra-{i:03d}.toml").write_text(f"key = {i}\n")
        i += 1
    os.chmod(root / "configs", 0o755)
    return root


def backup_config(s3, bucket: str, env: dict, roots: dict[str, list[str]], **kw) -> BackupConfig:
    base = dict(
        bucket=bucket,
        endpoint_url=s3.endpoint_url,
        region="us-east-1",
        prefix="llm-backup",
        connect_timeout_s=2,
        read_timeout_s=10,
        max_attempts=2,
        prune_wait_s=0,
        sets=[BackupSet(name=name, paths=paths) for name, paths in roots.items()],
    )
    base.update(env)
    base.update(kw)
    return BackupConfig(**base)


def snapshot_tree(root: Path) -> dict[str, tuple[bytes, int, int]]:
    """rel path -> (content, permission bits, mtime_ns) for every regular file under root."""
    out: dict[str, tuple[bytes, int, int]] = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            st = p.stat()
            out[str(p.relative_to(root))] = (p.read_bytes(), st.st_mode & 0o777, st.st_mtime_ns)
    return out


def write_toml(path: Path, cfg: BackupConfig, state_dir: Path, alerts: dict | None = None) -> Path:
    import tomli_w

    data = {"state_dir": str(state_dir), "backup": cfg.model_dump(mode="json", exclude_none=True)}
    if alerts:
        data["alerts"] = alerts
    path.write_text(tomli_w.dumps(data))
    return path
