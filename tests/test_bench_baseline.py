"""Baselines in Parquet: round trip, keys, pinning rules (a new model digest is never pinned
silently), and files that are never left half-written."""

from __future__ import annotations

import asyncio

import pandas as pd
import pyarrow.parquet as pq
import pytest

from llm_upkeep.bench import baseline as bl
from llm_upkeep.bench.config import BenchmarkConfig
from llm_upkeep.bench.grading import grade_run
from llm_upkeep.bench.result import judge_run
from llm_upkeep.bench.runner import RunSettings, run_suite
from llm_upkeep.clients import make_http_client
from tests.bench_fixtures import tiny_suite
from tests.llm_fixtures import endpoint_for

CFG = BenchmarkConfig(repeats=2, warmup=1)


async def _run(ep, suite, settings=None):
    async with make_http_client() as http:
        run = await run_suite(ep, suite, settings or RunSettings.from_config(CFG), http)
        await grade_run(run, suite)
        return run


def test_run_round_trips_through_parquet(sim_factory, state_dir):
    sim = sim_factory(ttft_s=0.002, itl_s=0.001, tokens=4)
    run = asyncio.run(_run(endpoint_for(sim, api="openai"), tiny_suite(2)))
    path = bl.save_run(state_dir, run)
    back = bl.read_run_file(path)
    assert back.model_dump() == run.model_dump()
    df = pd.read_parquet(path)
    assert len(df) == len(run.requests) and set(df["model_digest"]) == {run.identity.model_digest}
    assert list(df["itl_s"].iloc[-1]) == run.requests[-1].itl_s
    # pandas reads every run of the folder at once, for trend analysis.
    bl.save_run(state_dir, asyncio.run(_run(endpoint_for(sim, api="openai"), tiny_suite(2))))
    assert len(pd.read_parquet(bl.bench_dir(state_dir) / "runs")) == 2 * len(run.requests)


def test_unreadable_files_are_classified(state_dir):
    bad = state_dir / "x.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(bl.BaselineError, match="cannot read"):
        bl.read_run_file(bad)
    pq.write_table(pd.DataFrame({"a": [1]}).pipe(__import__("pyarrow").Table.from_pandas), bad)
    with pytest.raises(bl.BaselineError, match="not a benchmark run file"):
        bl.read_run_file(bad)


def test_keys_exact_match_and_suite_or_settings_change(sim_factory, state_dir):
    sim = sim_factory(ttft_s=0.002, itl_s=0.001, tokens=4)
    ep = endpoint_for(sim)
    run = asyncio.run(_run(ep, tiny_suite(2)))
    assert bl.find_baseline(state_dir, run) is None
    bl.pin_baseline(state_dir, run)
    ref = bl.find_baseline(state_dir, run)
    assert ref.baseline_id == run.run_id and ref.match == "exact"
    assert bl.load_baseline(state_dir, ref).run_id == run.run_id
    other_suite = asyncio.run(_run(ep, tiny_suite(3)))
    assert bl.find_baseline(state_dir, other_suite) is None
    other_load = asyncio.run(
        _run(ep, tiny_suite(2), RunSettings(profile="concurrent", concurrency=2, repeats=1))
    )
    assert bl.find_baseline(state_dir, other_load) is None
    # Repeats and warm-up do not change what is comparable.
    more = asyncio.run(_run(ep, tiny_suite(2), RunSettings(repeats=3, warmup=0)))
    assert bl.find_baseline(state_dir, more).baseline_id == run.run_id
    # Latest pin of a key wins.
    bl.pin_baseline(state_dir, more)
    assert bl.find_baseline(state_dir, run).baseline_id == more.run_id
    idx = bl.read_index(state_dir)
    assert list(idx.columns) == bl.INDEX_COLUMNS and len(idx) == 2


def test_a_new_model_digest_never_silently_becomes_the_baseline(sim_factory, state_dir):
    sim = sim_factory(ttft_s=0.002, itl_s=0.001, tokens=4)
    ep, suite = endpoint_for(sim), tiny_suite(2)

    async def judged(save=False):
        async with make_http_client() as http:
            run = await run_suite(ep, suite, RunSettings.from_config(CFG), http)
            return await judge_run(run, suite, CFG, state_dir, endpoint=ep, http=http, save_baseline=save)

    first = asyncio.run(judged())
    assert first.baseline["reason"] == "first-run" and first.baseline["pinned_now"]

    sim.behavior.digest = "f" * 64  # the model was replaced under the same name
    changed = asyncio.run(judged())
    assert changed.comparison is not None and changed.comparison.match == "model_changed"
    assert changed.baseline["run_id"] == first.run_id and not changed.baseline["pinned_now"]
    assert any("model digest changed" in n for n in changed.notes)
    assert bl.find_baseline(state_dir, changed.run).baseline_id == first.run_id

    # Another suite on the new model: still not pinned automatically (its digest is new here).
    suite = tiny_suite(3)
    other = asyncio.run(judged())
    assert other.baseline is None and any("differs from every pinned baseline" in n for n in other.notes)

    pinned = asyncio.run(judged(save=True))  # --save-baseline: a person decided
    assert pinned.baseline is not None and pinned.baseline["pinned_now"]
    assert bl.find_baseline(state_dir, pinned.run).baseline_id == pinned.run_id


def test_server_version_change_is_reported(sim_factory, state_dir):
    sim = sim_factory(ttft_s=0.002, itl_s=0.001, tokens=4)
    run = asyncio.run(_run(endpoint_for(sim), tiny_suite(2)))
    bl.pin_baseline(state_dir, run)
    sim.behavior.version = "0.13.0"
    later = asyncio.run(_run(endpoint_for(sim), tiny_suite(2)))
    assert bl.find_baseline(state_dir, later).match == "server_changed"


def test_failed_write_leaves_the_old_index_intact(sim_factory, state_dir, monkeypatch):
    sim = sim_factory(ttft_s=0.002, itl_s=0.001, tokens=4)
    run = asyncio.run(_run(endpoint_for(sim), tiny_suite(2)))
    bl.pin_baseline(state_dir, run)
    index = bl.bench_dir(state_dir) / "baselines.parquet"
    before = index.read_bytes()

    real = pq.read_table

    def corrupt_read(path, *a, **kw):
        t = real(path, *a, **kw)
        return t.slice(0, 0) if ".tmp" in str(path) else t  # the read-back sees a short file

    monkeypatch.setattr(bl.pq, "read_table", corrupt_read)
    with pytest.raises(bl.BaselineError, match="does not read back the same"):
        bl.pin_baseline(state_dir, asyncio.run(_run(endpoint_for(sim), tiny_suite(2))))
    monkeypatch.undo()
    assert index.read_bytes() == before
    assert not list(bl.bench_dir(state_dir).rglob("*.tmp"))


def test_a_run_without_answers_cannot_be_pinned(sim_factory, state_dir):
    sim = sim_factory(ttft_s=0.002, itl_s=0.001, tokens=4)
    sim.set_fault("http_500")
    run = asyncio.run(_run(endpoint_for(sim), tiny_suite(2)))
    with pytest.raises(bl.BaselineError, match="no successful request"):
        bl.pin_baseline(state_dir, run)


def test_run_ids_never_become_paths(sim_factory, state_dir):
    sim = sim_factory(ttft_s=0.002, itl_s=0.001, tokens=4)
    run = asyncio.run(_run(endpoint_for(sim, name="../../etc/x y"), tiny_suite(1)))
    assert "/" not in run.run_id and " " not in run.run_id  # generated ids are sanitized
    with pytest.raises(bl.BaselineError, match="not a safe file name"):
        bl.save_run(state_dir, run.model_copy(update={"run_id": "../escape"}))
    assert not (state_dir.parent / "escape.parquet").exists()
