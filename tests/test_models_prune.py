"""Pruning old versions of a files store (keep_versions) when history names versions outside it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from llm_upkeep.config import load_config
from llm_upkeep.models.active import SwitchRecord, append_history, swap_symlink
from llm_upkeep.models.endpoints import managed_endpoint, models_state_dir
from llm_upkeep.models.promote import prune_versions


def test_prune_skips_a_first_version_that_lives_outside_versions_dir(tmp_path: Path):
    """The server's original model sat outside versions_dir: three promotions later, pruning must
    remove the old version it owns and leave the outside file alone (it raised FileNotFoundError
    after the swap and restart, on every later promotion too)."""
    versions = tmp_path / "versions"
    versions.mkdir()
    outside = tmp_path / "data" / "first.gguf"
    outside.parent.mkdir()
    outside.write_bytes(b"GGUF first")
    for n in ("v1.gguf", "v2.gguf", "v3.gguf"):
        (versions / n).write_bytes(b"GGUF " + n.encode())
    link = tmp_path / "active.gguf"
    swap_symlink(link, versions / "v3.gguf")
    cfg_path = tmp_path / "llm-upkeep.toml"
    cfg_path.write_text(
        f'state_dir = "{tmp_path / "state"}"\n'
        '[[endpoints]]\nname = "llamacpp"\napi = "openai"\nurl = "http://127.0.0.1:9"\nmodel = "tiny"\n'
        "[models]\nkeep_versions = 2\n"
        f'[[models.endpoints]]\nendpoint = "llamacpp"\nversions_dir = "{versions}"\nactive_link = "{link}"\n'
    )
    cfg = load_config(cfg_path)
    m = managed_endpoint(cfg, "llamacpp")
    state = models_state_dir(cfg, m.name)
    chain = [str(outside), str(versions / "v1.gguf"), str(versions / "v2.gguf"), str(versions / "v3.gguf")]
    for a, b in zip(chain, chain[1:], strict=False):
        append_history(
            state, SwitchRecord(endpoint=m.name, action="promote", from_version=a, to_version=b, ok=True)
        )

    removed = asyncio.run(prune_versions(cfg, m, None))  # type: ignore[arg-type]

    assert removed == [str(versions / "v1.gguf")]
    assert outside.read_bytes() == b"GGUF first", (
        "a file outside versions_dir is never llm-upkeep's to delete"
    )
    assert sorted(p.name for p in versions.iterdir()) == ["v2.gguf", "v3.gguf"]
    # A second prune (the next promotion) finds nothing more to do and does not raise either.
    assert asyncio.run(prune_versions(cfg, m, None)) == []  # type: ignore[arg-type]
