"""The daily cost and tokens plot (PNG, matplotlib's headless Agg backend), written atomically."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from llm_upkeep.cost.review import CostReview  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def plot_daily(review: CostReview, out_dir: str | Path) -> Path:
    """Bars: cost per day; line: tokens per day (input + output). Returns the PNG path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"cost-review-{review.period}.png"
    days = [d.day for d in review.daily]
    fig, ax = plt.subplots(figsize=(10, 4.5), dpi=100)
    try:
        ax.bar(days, [d.cost for d in review.daily], color="#4C72B0", label=f"cost ({review.currency})")
        ax.set_ylabel(f"cost per day ({review.currency})")
        ax2 = ax.twinx()
        ax2.plot(days, [(d.input_tokens + d.output_tokens) / 1e6 for d in review.daily], color="#DD8452",
                 marker="o", markersize=3, label="tokens (millions)")  # fmt: skip
        ax2.set_ylabel("tokens per day (millions)")
        ax2.set_ylim(bottom=0)
        ax.set_title(f"LLM self-hosting, {review.period}: {review.total_cost:,.2f} {review.currency}, "
                     f"{(review.input_tokens + review.output_tokens) / 1e6:,.2f} M tokens")  # fmt: skip
        fig.autofmt_xdate()
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, loc="upper left")
        fig.tight_layout()
        tmp = path.with_suffix(".png.tmp")
        with open(tmp, "wb") as f:
            fig.savefig(f, format="png")
            f.flush()
            os.fsync(f.fileno())
    finally:
        plt.close(fig)
    with open(tmp, "rb") as f:
        if f.read(8) != PNG_MAGIC:
            raise OSError(f"{tmp}: plot was not written as PNG")
    os.replace(tmp, path)
    return path
