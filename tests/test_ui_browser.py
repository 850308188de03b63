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
