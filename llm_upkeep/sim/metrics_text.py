"""/metrics of the simulator from a recorded exposition (tests/fixtures/server_metrics/*.prom):
served as recorded, with the values of chosen samples rewritten, so one recording of vLLM, TGI,
SGLang or llama.cpp can show a full KV cache, a queue or a restart (counters back at 0).

A rewrite key is a sample name (every label set of it gets the value) or ``name{labels}`` exactly
as the recording writes the labels.
"""

from __future__ import annotations

import re

_LINE = re.compile(
    r"^(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)(?P<labels>\{[^}]*\})?(?P<sp>\s+)(?P<value>\S+)(?P<rest>.*)$"
)


def render_metrics_text(text: str, values: dict[str, float] | None = None) -> str:
    """The exposition with rewritten sample values; comments and other samples untouched."""
    if not values:
        return text
    out = []
    for line in text.splitlines():
        m = _LINE.match(line)
        if m and not line.startswith("#"):
            key = m["name"] + (m["labels"] or "")
            new = values.get(key, values.get(m["name"]))
            if new is not None:
                line = f"{key}{m['sp']}{float(new)!r}{m['rest']}"
        out.append(line)
    return "\n".join(out) + "\n"
