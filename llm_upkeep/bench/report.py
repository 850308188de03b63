"""Benchmark reports: the markdown comparison with its verdict, per-prompt table rows, the latency
plot (baseline against now, matplotlib Agg, PNG in state_dir) and the Slack message.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from llm_upkeep.bench.result import BenchmarkResult, EndpointBenchmark
from llm_upkeep.bench.runner import RunResult
from llm_upkeep.redact import redact

MAX_ANSWER_CHARS = 80


def _ms(v: float | None) -> str:
    return "–" if v is None else f"{v * 1000:.1f} ms"


def _num(v: float | None, unit: str = "") -> str:
    if v is None:
        return "–"
    return f"{v:,.1f}{unit}" if abs(v) >= 10 else f"{v:.3g}{unit}"


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v:.0%}"


def _fmt_metric(metric: str, v: float | None) -> str:
    if "per_s" in metric:
        return _num(v, " /s")
    if metric == "error_rate":
        return _pct(v)
    if metric.endswith("_s"):
        return _ms(v)
    return _num(v)


def _clip(s: str, n: int = MAX_ANSWER_CHARS) -> str:
    s = " ".join((s or "").split())
    return s if len(s) <= n else s[: n - 1] + "…"


def _cell(s: Any) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def quality_sentence(e: EndpointBenchmark) -> str:
    """Says plainly how the answers did, especially when they fail."""
    q = e.quality or {}
    n, ok, rate = q.get("answers", 0), q.get("answers_passed", 0), q.get("pass_rate")
    if rate is None:
        return "Quality: no answer could be graded (no successful request, or no checks)."
    if ok == 0:
        return (f"**Quality: FAILING. None of the {n} answers passed their checks (0 %).** The model does "
                "not do this suite's jobs: every prompt failed (expected for a model with random weights; "
                "for a production model, check the model file and its version).")  # fmt: skip
    if rate < 0.5:
        return f"**Quality: mostly failing. {ok} of {n} answers passed all their checks ({rate:.0%}).**"
    return f"Quality: {ok} of {n} answers passed all their checks ({rate:.0%})."


def verdict_line(e: EndpointBenchmark) -> str:
    if e.status == "error":
        return f"**ERROR**: {'; '.join(e.notes) or 'no successful request'}"
    if e.regressions:
        return "**REGRESSION**: " + "; ".join(r["detail"] for r in e.regressions)
    if e.comparison is None:
        return "No comparison: " + ("; ".join(e.notes) or "no baseline")
    return f"No regression against baseline `{e.comparison.baseline_run_id}`."


def render_endpoint(e: EndpointBenchmark) -> str:
    run = e.run
    lines = [f"## {e.target}: {e.status.upper()}", ""]
    ident = e.identity or {}
    if run is not None:
        s = run.settings
        lines.append(
            f"Model `{ident.get('model')}`, digest `{str(ident.get('model_digest'))[:19]}` "
            f"({ident.get('digest_source')}), server version `{ident.get('server_version')}`. "
            f"Profile {s.profile} (concurrency {s.effective_concurrency()}"
            + (f", rate {s.rate:g}/s" if s.profile in ("constant_rate", "poisson") else "")
            + f"), {s.repeats} repeats, {s.warmup} warm-up, {s.api} API, temperature {s.temperature:g}, "
            f"seed {s.seed}. Run `{e.run_id}`."
        )
        lines.append("")
    if e.baseline:
        b = e.baseline
        lines.append(
            f"Baseline `{b['run_id']}` ({b['reason']}, pinned {b['pinned_at'][:19]}, match: {b['match']})."
        )
        lines.append("")
    lines += [verdict_line(e), ""]
    for n in e.notes:
        lines.append(f"- {n}")
    if e.notes:
        lines.append("")

    lines += ["### Speed", ""]
    if e.comparison is not None:
        lines += ["| metric | baseline | now | change | p (one-sided MWU) | 95 % CI of change | verdict |",
                  "|---|---:|---:|---:|---:|---:|---|"]  # fmt: skip
        for d in e.comparison.metrics:
            ch = "–" if d.delta_pct is None else f"{d.delta_pct:+.1f} %"
            p = "–" if d.p_value is None else f"{d.p_value:.2g}"
            ci = "–" if d.ci_low_pct is None else f"{d.ci_low_pct:+.1f} … {d.ci_high_pct:+.1f} %"
            v = (
                "**REGRESSION**"
                if d.regression
                else ("within host lag" if d.within_client_lag else ("significant" if d.significant else ""))
            )
            lines.append(f"| {d.metric} | {_fmt_metric(d.metric, d.baseline)} | {_fmt_metric(d.metric, d.current)} "
                         f"| {ch} | {p} | {ci} | {v} |")  # fmt: skip
    else:
        dist = (e.detail or {}).get("dist", {})
        lines += ["| metric | p50 | p90 | p99 | mean | n |", "|---|---:|---:|---:|---:|---:|"]
        for k in ("ttft_s", "itl_s", "tpot_s", "e2e_s"):
            d = dist.get(k) or {}
            lines.append(f"| {k} | {_ms(d.get('p50'))} | {_ms(d.get('p90'))} | {_ms(d.get('p99'))} "
                         f"| {_ms(d.get('mean'))} | {d.get('n', 0)} |")  # fmt: skip
    m = e.detail or {}
    lines += ["", f"Output {_num(m.get('output_tokens_per_s'))} tokens/s, {_num(m.get('requests_per_s'))} "
              f"requests/s, error rate {_pct(m.get('error_rate'))} ({m.get('ok', 0)} of {m.get('requests', 0)} "
              f"requests ok; tokens counted from {m.get('tokens_source') or '–'}).", ""]  # fmt: skip
    lag = run.client_lag_s if run is not None else {}
    if lag and lag.get("p99") is not None:
        lines += [f"Benchmark host event-loop lag while measuring: p50 {_ms(lag.get('p50'))}, "
                  f"p99 {_ms(lag.get('p99'))} (time the benchmark itself may add to a request).", ""]  # fmt: skip
    if run is not None and run.client_wait_percent is not None:
        lines += [f"Benchmark client waiting for a CPU while measuring: {run.client_wait_percent:.1f} % of the time, "
                  f"{run.client_wait_per_wakeup_ms:.2f} ms per wake-up; host CPU idle "
                  f"{'–' if run.host_idle_percent is None else f'{run.host_idle_percent:.0f} %'}.", ""]  # fmt: skip
    if run is not None and run.client_bound:
        lines += [f"**Client-bound run**: the benchmark client, not the server, set the pace ({run.client_bound}; "
                  f"{run.client_processes} client process(es)). Its latencies include the client's own "
                  "queueing; no regression verdict is drawn from it.", ""]  # fmt: skip
    if e.plot_path:
        from llm_upkeep.plots import markdown_image  # inlined: the Prefect UI cannot open file://

        img = markdown_image(e.plot_path, "Latency distributions, baseline against now")
        uri = Path(e.plot_path).resolve().as_uri()
        lines += [f"Latency distributions, baseline against now: [{Path(e.plot_path).name}]({uri}) "
                  f"(`{e.plot_path}`)", ""]  # fmt: skip
        lines += [img, ""] if img else []

    lines += ["### Quality", "", quality_sentence(e), ""]
    q = e.quality or {}
    if q.get("by_type"):
        lines += ["| check type | passed | evaluated | pass rate |", "|---|---:|---:|---:|"]
        for t in q["by_type"]:
            lines.append(f"| {t['type']} | {t['passed']} | {t['evaluated']} | {_pct(t['pass_rate'])} |")
        lines.append("")
    rows = prompt_rows(e)
    if rows:
        lines += ["| prompt | job | pass rate | baseline | failing checks | answer (first) |",
                  "|---|---|---:|---:|---|---|"]  # fmt: skip
        for r in rows:
            lines.append(f"| {r['prompt']} | {r['job']} | {_pct(r['pass_rate'])} | {_pct(r['pass_rate_baseline'])} "
                         f"| {_cell(r['failing_checks'] or '–')} | {_cell(r['answer'])} |")  # fmt: skip
        lines.append("")
    if e.comparison is not None and e.comparison.drift:
        d = e.comparison.drift
        sim = "–" if d.get("similarity_mean") is None else f"{d['similarity_mean']:.3f}"
        lines += ["### Answer drift", "",
                  f"{d.get('answers_changed', 0)} of {d.get('prompts_compared', 0)} prompts answer differently "
                  f"from the baseline; mean similarity to the baseline answers {sim} "
                  f"({d.get('method') or 'not measured'}).", ""]  # fmt: skip
    return "\n".join(lines)


def render_markdown(result: BenchmarkResult) -> str:
    head = [
        f"# Weekly LLM benchmark: {result.status.upper()}",
        "",
        f"Suite `{result.suite.get('name')}` (hash `{result.suite.get('hash')}`, "
        f"{result.suite.get('prompts')} prompts), started {result.started_at.isoformat()[:19]} UTC, "
        f"{result.duration_s:.1f} s. Metric definitions: docs/metrics.md.",
        "",
    ]
    if not result.endpoints:
        head.append("No endpoint to benchmark (none configured, or all are staging).")
    return redact("\n".join(head) + "\n" + "\n\n".join(render_endpoint(e) for e in result.endpoints))


def prompt_rows(e: EndpointBenchmark) -> list[dict[str, Any]]:
    """One row per prompt: pass rates (now and baseline), failing checks, speed, first answer."""
    q = e.quality or {}
    checks_by_prompt: dict[str, list[dict]] = {}
    for c in q.get("checks", []):
        checks_by_prompt.setdefault(c["prompt"], []).append(c)
    cmp_rows = {r["prompt"]: r for r in (e.comparison.prompts if e.comparison else [])}
    run = e.run
    first_answer: dict[str, str] = {}
    speed: dict[str, dict[str, Any]] = {}
    if run is not None:
        for r in run.measured():
            s = speed.setdefault(r.prompt_id, {"ttft": [], "e2e": [], "tok": [], "errors": 0})
            if r.ok:
                first_answer.setdefault(r.prompt_id, r.answer)
                s["ttft"].append(r.ttft_s)
                s["e2e"].append(r.e2e_s)
                s["tok"].append(r.output_tokens)
            else:
                s["errors"] += 1
    rows = []
    for p in q.get("prompts", []) or [
        {"prompt": k, "job": "", "pass_rate": None, "answers": 0} for k in speed
    ]:
        pid = p["prompt"]
        failing = [f"{c['check']}: {c['detail']}" if c["detail"] else c["check"]
                   for c in checks_by_prompt.get(pid, []) if c["pass_rate"] is not None and c["pass_rate"] < 1]  # fmt: skip
        sp = speed.get(pid, {})
        cr = cmp_rows.get(pid, {})
        rows.append({
            "target": e.target, "prompt": pid, "job": p.get("job", ""), "answers": p.get("answers", 0),
            "pass_rate": p.get("pass_rate"), "pass_rate_baseline": cr.get("pass_rate_baseline"),
            "failing_checks": "; ".join(failing)[:300],
            "ttft_p50_s": _median(sp.get("ttft")), "ttft_p50_s_baseline": cr.get("ttft_p50_s_baseline"),
            "e2e_p50_s": _median(sp.get("e2e")), "e2e_p50_s_baseline": cr.get("e2e_p50_s_baseline"),
            "output_tokens_p50": _median(sp.get("tok")), "errors": sp.get("errors", 0),
            "answer_changed": cr.get("answer_changed"), "answer": _clip(first_answer.get(pid, "")),
        })  # fmt: skip
    return rows


def _median(xs: list | None) -> float | None:
    xs = sorted(x for x in (xs or []) if x is not None)
    if not xs:
        return None
    mid = len(xs) // 2
    return float(xs[mid]) if len(xs) % 2 else float((xs[mid - 1] + xs[mid]) / 2)


def plot_latency(current: RunResult, baseline: RunResult | None, path: str | Path) -> Path:
    """ECDFs of TTFT, TPOT and end-to-end latency, baseline (grey) against now (blue); PNG, atomic."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    import numpy as np

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    panels = (("ttft_s", "time to first token"), ("tpot_s", "time per output token"), ("e2e_s", "end-to-end"))
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), constrained_layout=True)
    for ax, (col, title) in zip(axes, panels, strict=True):
        for run, label, color in ((baseline, "baseline", "0.55"), (current, "now", "tab:blue")):
            if run is None:
                continue
            xs = np.sort(
                [getattr(r, col) * 1000 for r in run.measured() if r.ok and getattr(r, col) is not None]
            )
            if xs.size:
                ax.step(xs, np.arange(1, xs.size + 1) / xs.size, where="post", color=color,
                        label=f"{label} (p50 {np.median(xs):.1f} ms, n={xs.size})")  # fmt: skip
        ax.set_title(title)
        ax.set_xlabel("ms")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    axes[0].set_ylabel("fraction of requests")
    fig.suptitle(f"{current.label}: latency distributions ({current.run_id})", fontsize=10)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.png")
    try:
        fig.savefig(tmp, dpi=90)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        with open(tmp, "rb") as f:
            if f.read(8) != b"\x89PNG\r\n\x1a\n":
                raise OSError(f"{tmp}: not a PNG after writing")
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if tmp.exists():
            tmp.unlink()
    return path


def slack_message(result: BenchmarkResult) -> tuple[str, list[dict]]:
    """Text fallback and Block Kit blocks: what regressed, plus the metric table per endpoint."""
    bad = [e for e in result.endpoints if e.regressions or e.status == "error"]
    title = f"LLM benchmark {result.status}: " + ", ".join(e.target for e in bad)
    blocks: list[dict] = [{"type": "header", "text": {"type": "plain_text", "text": redact(title)[:150]}}]
    text_parts = [title]
    for e in bad:
        lines = [f"*{e.target}*: {verdict_line(e)}"]
        table = [f"{'metric':<24}{'baseline':>12}{'now':>12}{'change':>10}{'p':>9}"]
        for d in e.comparison.metrics if e.comparison else []:
            ch = "–" if d.delta_pct is None else f"{d.delta_pct:+.1f}%"
            p = "–" if d.p_value is None else f"{d.p_value:.1g}"
            flag = " <" if d.regression else ""
            table.append(f"{d.metric:<24}{_fmt_metric(d.metric, d.baseline):>12}{_fmt_metric(d.metric, d.current):>12}"
                         f"{ch:>10}{p:>9}{flag}")  # fmt: skip
        if e.comparison and e.comparison.quality:
            qq = e.comparison.quality
            table.append(
                f"{'pass_rate':<24}{_pct(qq.get('baseline_pass_rate')):>12}{_pct(qq.get('current_pass_rate')):>12}"
            )
        section = "\n".join(lines) + "\n```\n" + "\n".join(table) + "\n```"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": redact(section)[:2900]}})
        text_parts.append(f"{e.target}: " + "; ".join(r["detail"] for r in e.regressions))
    if result.report_path:
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": redact(f"Report: {result.report_path}")[:2000]}]})  # fmt: skip
    return redact(" | ".join(text_parts))[:3000], blocks
