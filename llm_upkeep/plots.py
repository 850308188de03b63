"""Plots a person sees in the Prefect UI: PNGs embedded in markdown artifacts as data: URIs.

Why data: URIs: the Prefect UI renders markdown artifacts in the browser, which cannot open a
file:// path on the host that ran the flow, and a worker has no web server of its own to serve
images from. An image inlined in the artifact travels with it: stored in Prefect's database,
shown wherever the UI is opened, kept as long as the artifact is. The UI's markdown renderer
draws data:image/png images (tests/test_ui_browser.py checks it in Chromium). The cost is size:
PNGs are kept small (under MAX_BYTES), and a larger one is linked by path instead.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_BYTES = 400_000  # per image; an artifact holds a few


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def markdown_image(source: str | Path | bytes | None, alt: str, *, max_bytes: int = MAX_BYTES) -> str | None:
    """`![alt](data:image/png;base64,...)` for a PNG (bytes or a file); None when it is missing,
    not a PNG, or too large to inline (the caller then links the path)."""
    if source is None:
        return None
    if isinstance(source, bytes):
        png = source
    else:
        try:
            p = Path(source)
            if p.stat().st_size > max_bytes:
                return None
            png = p.read_bytes()
        except OSError:
            return None
    if not png.startswith(PNG_MAGIC) or len(png) > max_bytes:
        return None
    return f"![{alt.replace(']', ')')}]({data_uri(png)})"


def figure_png(fig, dpi: int = 80) -> bytes:
    """A matplotlib figure as PNG bytes (closes the figure)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)
    return buf.getvalue()
