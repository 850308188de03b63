"""NVIDIA XID codes: what the common ones mean and what to do, so a kernel line becomes an action.

The table (llm_upkeep/data/xid_codes.json) is paraphrased from NVIDIA's XID documentation
(docs.nvidia.com/deploy/xid-errors). Severity is ours:
"alert" when the GPU itself needs attention (reset, drain, service), "warn" when the usual cause
is the application or a one-off the driver recovered from.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Literal, NamedTuple


class XidInfo(NamedTuple):
    code: int
    name: str
    meaning: str
    action: str
    severity: Literal["warn", "alert"]


def _load_table() -> list[XidInfo]:
    """The codes we know, from llm_upkeep/data/xid_codes.json (one row per code: data, not code)."""
    doc = json.loads(resources.files("llm_upkeep").joinpath("data", "xid_codes.json").read_text(encoding="utf-8"))
    return [XidInfo(**row) for row in doc["codes"]]


_TABLE = _load_table()

XID_TABLE: dict[int, XidInfo] = {x.code: x for x in _TABLE}

# "NVRM: Xid (PCI:0000:3b:00): 79, pid=..." and the older "NVRM: Xid (0000:01:00): 13, ..."
XID_RE = re.compile(rb"NVRM: Xid \(([^)]*)\):\s*(\d+)", re.IGNORECASE)


def describe_xid(code: int) -> XidInfo:
    """Meaning and action; an unknown code is still reported, pointing at NVIDIA's catalog."""
    return XID_TABLE.get(code) or XidInfo(
        code, f"XID {code}", "Not in our table of common codes.",
        "Look it up in NVIDIA's XID catalog (docs.nvidia.com/deploy/xid-errors) and collect nvidia-bug-report.",
        "warn",
    )  # fmt: skip


def parse_xid(line: bytes) -> tuple[int, str] | None:
    """(code, device) of a kernel XID line."""
    m = XID_RE.search(line)
    if not m:
        return None
    return int(m.group(2)), m.group(1).decode("ascii", "replace").removeprefix("PCI:")
