"""The Prefect UI of the demo, in a real browser: Debian's Chromium driven by playwright-core.

Needs `apt-get install -y chromium` and `npm ci --prefix tests/ui`; skips with the reason when
either is missing. Screenshots go to tests/ui/out/ (ignored by git); the ones committed in
tests/ui/screenshots/ are a reference run's, for reading without running anything.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from llm_upkeep.deploy import load_deployments, project_dir
from tests.test_cost_review import month  # noqa: F401  (fixture: a planted month of cost data)

pytestmark = pytest.mark.demo
UI_DIR = Path(__file__).resolve().parent / "ui"
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = UI_DIR / "out"


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return "no /usr/bin/chromium (apt-get install -y chromium)"
    if shutil.which("node") is None:
        return "no node on PATH (apt-get install -y nodejs npm)"
    if not (UI_DIR / "node_modules" / "playwright-core").is_dir():
        return "playwright-core not installed (npm ci --prefix tests/ui)"
    return None


def latest_artifact(ui_url: str, key: str) -> dict | None:
    r = httpx.post(f"{ui_url}/api/artifacts/filter", json={"artifacts": {"key": {"any_": [key]}},
                   "sort": "CREATED_DESC", "limit": 1}, timeout=30)  # fmt: skip
    r.raise_for_status()
    found = r.json()
    return found[0] if found else None


def make_spec(pages: list[dict], tmp_path: Path) -> dict:
    SHOTS.mkdir(parents=True, exist_ok=True)
    spec = {
        "chromium": str(CHROMIUM),
        "userDataDir": str(tmp_path / "chromium-profile"),  # new and empty every run
        "screenshotDir": str(SHOTS),
        "timeoutMs": 45000,
        "pages": pages,
    }
    return spec


def run_browser(spec: dict, tmp_path: Path) -> dict:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    p = subprocess.run(["node", str(UI_DIR / "ui_check.mjs"), str(path)], cwd=UI_DIR, capture_output=True,
                       text=True, timeout=600)  # fmt: skip
    assert p.returncode == 0, p.stderr[-3000:]
    result = json.loads(p.stdout.strip().splitlines()[-1])
    # The UI must render without a script error or a failed request it logs as an error. Chromium's
    # own request for /favicon.ico is not the UI's (Prefect serves its icons elsewhere; it 404s).
    errors = [e for e in result["console_errors"] if not e.endswith("/favicon.ico)")]
    assert errors == [], errors
    assert result["page_errors"] == [], result["page_errors"]
    return {page["name"]: page for page in result["pages"]}


def test_ui_lists_deployments_with_schedules_and_renders_artifact_tables(demo_stack, tmp_path):
    reason = _missing()
    if reason:
        pytest.skip(reason)
    names = [s.name for s in load_deployments(project_dir())]
    bench = latest_artifact(demo_stack.ui_url, "benchmark-comparison")
    checks = latest_artifact(demo_stack.ui_url, "daily-health-checks")
    assert checks is not None
    # The list shows 10 a page, A to Z: the first page by the list, the rest by their own pages.
    names = sorted(names)
    deps = {
        d["name"]: d
        for d in httpx.post(f"{demo_stack.ui_url}/api/deployments/filter", json={}, timeout=30).json()
    }
    pages = [
        {"name": "deployments", "path": "/deployments", "screenshot": True,
         "expect": [*names[:10]] + [text for n, text in (("daily-health", "At 06:00 AM every day"),
                    ("scheduled-restart", "At 03:30 AM every day")) if n in names[:10]]},
        {"name": "daily-health-checks", "path": f"/artifacts/artifact/{checks['id']}", "screenshot": True,
         "table": True, "expect": ["Every check of the daily health run", "vllm-slow", "alert"]},
    ]  # fmt: skip
    for n in names[10:]:
        pages.append({"name": f"deployment-{n}", "path": f"/deployments/deployment/{deps[n]['id']}",
                      "expect": [n, "Schedules"]})  # fmt: skip
    if "weekly-benchmark" in deps:
        pages.append({"name": "weekly-benchmark-deployment",
                      "path": f"/deployments/deployment/{deps['weekly-benchmark']['id']}",
                      "expect": ["weekly-benchmark", "At 05:00 AM, only on Sunday"]})  # fmt: skip
    if bench is not None:
        pages.append({"name": "benchmark-comparison", "path": f"/artifacts/artifact/{bench['id']}",
                      "screenshot": True, "table": True, "expect": ["Weekly LLM benchmark", "ttft"]})  # fmt: skip
    spec = make_spec(pages, tmp_path)
    spec["base"] = demo_stack.ui_url
    seen = run_browser(spec, tmp_path)

    for name, page in seen.items():
        assert not page.get("error"), (name, page["error"])
        assert all(page["found"].values()), (
            name,
            {k for k, v in page["found"].items() if not v},
            page["text"],
        )

    table = seen["daily-health-checks"]
    assert not table.get("error"), table
    assert all(table["found"].values()), table["found"]
    assert table["table_headers"][:3] == ["check", "target", "status"]
    rows = json.loads(checks["data"]) if isinstance(checks["data"], str) else checks["data"]
    assert table["table_rows"] == len(rows)

    if bench is not None:
        b = seen["benchmark-comparison"]
        assert not b.get("error"), b
        assert all(b["found"].values()), b["found"]
        assert b["table_rows"] and b["table_rows"] > 0
        assert "metric" in b["table_headers"]  # the speed table: percentiles, or baseline against now
    for page in seen.values():
        if page.get("screenshot"):
            assert Path(page["screenshot"]).stat().st_size > 10_000


# ---------------------------------------------------------------- plots in the Prefect UI


@pytest.fixture
def prefect_ui(tmp_path):
    """A real `prefect server start` (API and UI) on a free loopback port, on its own SQLite file."""
    import os
    import sys

    from tests.prom_fixtures import Proc, free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    home = tmp_path / "prefect-home"
    home.mkdir()
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
           "PREFECT_UI_API_URL": f"{url}/api", "PREFECT_API_URL": f"{url}/api"}  # fmt: skip
    server = Proc([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                  url, "/api/health", tmp_path / "prefect-server.log", timeout_s=180, env=env)  # fmt: skip
    try:
        yield url
    finally:
        server.stop()


def _report_markdowns(tmp_path: Path, sim_factory, cost_config, state_dir) -> dict[str, str]:
    """The markdown our reports publish, each with its plot inlined: trends (weekly review), the
    latency comparison (weekly benchmark, baseline against a slowed-down server) and the daily cost
    (cost review)."""
    import asyncio
    from datetime import date, timedelta

    from llm_upkeep import history
    from llm_upkeep.bench.config import BenchmarkConfig
    from llm_upkeep.bench.report import plot_latency, render_markdown
    from llm_upkeep.bench.result import BenchmarkResult, judge_run
    from llm_upkeep.bench.runner import RunSettings, run_suite
    from llm_upkeep.clients import make_http_client
    from llm_upkeep.cost.plot import plot_daily
    from llm_upkeep.cost.report import render_report as render_cost
    from llm_upkeep.cost.review import review_costs
    from llm_upkeep.trends.config import TrendsConfig
    from llm_upkeep.trends.review import render_trends_md, review_trends
    from tests.bench_fixtures import tiny_suite
    from tests.cost_helpers import END as COST_END
    from tests.cost_helpers import PERIOD, START
    from tests.llm_fixtures import endpoint_for
    from tests.trend_fixtures import END, write_history

    trends_state = tmp_path / "trends"
    trends_state.mkdir()
    write_history(trends_state, creep_per_day=0.02, ttft_drift=2.0)
    since = END - timedelta(weeks=4)
    tr = review_trends(history.read_checks(trends_state, since=since),
                       history.read_gpu_samples(trends_state, since=since), TrendsConfig())  # fmt: skip
    trends_md = "# Weekly review: trends\n\n" + "\n".join(render_trends_md(tr.model_dump(mode="json")))

    sim = sim_factory(ttft_s=0.05, itl_s=0.003, tokens=6)
    ep, suite = endpoint_for(sim, api="openai"), tiny_suite(3, max_tokens=6)
    bcfg = BenchmarkConfig(profile="concurrent", concurrency=3, repeats=3, warmup=1, ramp_up_s=0.05)
    bench_state = tmp_path / "bench"

    async def judged():
        async with make_http_client() as http:
            run = await run_suite(ep, suite, RunSettings.from_config(bcfg), http)
            return await judge_run(run, suite, bcfg, bench_state, endpoint=ep, http=http)

    asyncio.run(judged())
    sim.behavior.slowdown = 2.0
    e = asyncio.run(judged())
    e.plot_path = str(plot_latency(e.run, e.baseline_run, bench_state / "plot.png"))
    bench_md = render_markdown(BenchmarkResult(status=e.status, endpoints=[e],
                                               suite={"name": suite.name, "hash": suite.hash, "prompts": 3}))  # fmt: skip

    r = review_costs(cost_config, state_dir, START, COST_END, period=PERIOD, today=date(2026, 11, 1))
    r.plot_path = str(plot_daily(r, tmp_path / "reports"))
    return {"plot-trends": trends_md, "plot-benchmark": bench_md, "plot-cost": render_cost(r)}


def test_plots_render_in_the_prefect_ui(prefect_ui, sim_factory, state_dir, tmp_path, request):
    reason = _missing()
    if reason:
        pytest.skip(reason)
    pages = []
    cost_config = request.getfixturevalue("month")
    for key, md in _report_markdowns(tmp_path, sim_factory, cost_config, state_dir).items():
        assert "](data:image/png;base64," in md, key
        r = httpx.post(f"{prefect_ui}/api/artifacts/", json={"key": key, "type": "markdown", "data": md,
                       "description": f"plot test: {key}"}, timeout=30)  # fmt: skip
        r.raise_for_status()
        pages.append({"name": key, "path": f"/artifacts/artifact/{r.json()['id']}", "images": 1,
                      "screenshot": True, "expect": [f"plot test: {key}"]})  # fmt: skip
    spec = make_spec(pages, tmp_path)
    spec["base"] = prefect_ui
    seen = run_browser(spec, tmp_path)  # asserts no console error and no page error on any page
    for name, page in seen.items():
        assert not page.get("error"), (name, page["error"])
        imgs = [i for i in page["images"] if i["scheme"] == "data"]
        assert imgs, (name, page["images"], page["text"][:500])
        assert all(i["complete"] and i["natural_width"] > 0 for i in imgs), (name, imgs)
