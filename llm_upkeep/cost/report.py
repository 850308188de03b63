"""The cost review as markdown (Prefect artifact) and table rows."""

from __future__ import annotations

from llm_upkeep.cost.review import CostReview
from llm_upkeep.fleet_parts import render_hosts


def _m(x: float | None, cur: str) -> str:
    return "n/a" if x is None else f"{x:,.2f} {cur}"


def comparison_table(r: CostReview) -> list[dict]:
    rows = []
    for c in sorted(r.comparisons, key=lambda c: c.cloud_cost):
        rows.append({
            "cloud model": f"{c.provider}/{c.model}",
            f"in / 1M ({r.currency})": round(c.input_per_1m, 4),
            f"out / 1M ({r.currency})": round(c.output_per_1m, 4),
            f"cloud cost ({r.currency})": round(c.cloud_cost, 2),
            f"saving ({r.currency})": round(c.saving, 2),
            "break-even traffic x": None if c.break_even_factor is None else round(c.break_even_factor, 2),
            "break-even utilization": None if c.break_even_utilization is None
            else f"{c.break_even_utilization:.0%}",
        })  # fmt: skip
    return rows


def render_report(r: CostReview) -> str:
    cur = r.currency
    lines = [
        f"# Cost review {r.period}: {r.status.upper()}",
        "",
        f"Window {r.start:%Y-%m-%d} to {r.end:%Y-%m-%d} (UTC).",
        "",
        "| item | amount |",
        "|---|---|",
        f"| GPU energy | {r.gpu_kwh:,.3f} kWh |",
        f"| other server energy | {r.other_kwh:,.3f} kWh |",
        f"| facility energy (x PUE) | {r.facility_kwh:,.3f} kWh |",
        f"| energy cost | {_m(r.energy_cost, cur)} |",
        f"| hosting | {_m(r.hosting_cost, cur)} |",
        f"| amortized hardware | {_m(r.hardware_cost, cur)} |",
        f"| **total** | **{_m(r.total_cost, cur)}** |",
        f"| input tokens | {r.input_tokens:,.0f} |",
        f"| output tokens | {r.output_tokens:,.0f} |",
        f"| cost per 1M input tokens | {_m(r.cost_per_1m_input, cur)} |",
        f"| cost per 1M output tokens | {_m(r.cost_per_1m_output, cur)} |",
        f"| cost per 1M tokens (blended) | {_m(r.cost_per_1m_blended, cur)} |",
        f"| utilization | {'n/a' if r.utilization is None else f'{r.utilization:.1%}'} |",
        "",
    ]
    if r.gpus:
        lines += ["## Energy per GPU", "", "| host | GPU | kWh | method | counter resets | coverage |",
                  "|---|---|---|---|---|---|"]  # fmt: skip
        lines += [f"| {g.host} | {g.gpu} | {g.kwh:,.3f} | {g.method} | {g.resets} | {g.coverage:.0%} |"
                  for g in r.gpus]  # fmt: skip
        lines.append("")
    if r.comparisons:
        rows = comparison_table(r)
        cols = list(rows[0])
        lines += ["## Against cloud APIs", "", f"Prices: {r.price_table}. Saving > 0: self-hosting is cheaper.", "",
                  "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]  # fmt: skip
        lines += ["| " + " | ".join("" if v is None else str(v) for v in row.values()) + " |" for row in rows]
        lines.append("")
    if r.plot_path:
        from llm_upkeep.plots import markdown_image  # inlined: the Prefect UI cannot open file://

        lines += [f"Daily cost and tokens: [{r.plot_path}](file://{r.plot_path})", ""]
        img = markdown_image(r.plot_path, "Daily cost and tokens")
        lines += [img, ""] if img else []
    if r.hosts:
        lines += [render_hosts(r.hosts, "Hosts (energy parts)")]
    if r.notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in r.notes]
    return "\n".join(lines) + "\n"
