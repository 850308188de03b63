"""NVIDIA XID codes: what the common ones mean and what to do, so a kernel line becomes an action.

Paraphrased from NVIDIA's XID documentation (docs.nvidia.com/deploy/xid-errors). Severity is ours:
"alert" when the GPU itself needs attention (reset, drain, service), "warn" when the usual cause
is the application or a one-off the driver recovered from.
"""

from __future__ import annotations

import re
from typing import Literal, NamedTuple


class XidInfo(NamedTuple):
    code: int
    name: str
    meaning: str
    action: str
    severity: Literal["warn", "alert"]


_TABLE = [
    XidInfo(8, "GPU stopped processing", "A channel stopped making progress (idle timeout).",
            "Restart the application; if it repeats, check the driver version and the workload.", "warn"),
    XidInfo(13, "Graphics engine exception", "Usually the application (out-of-bounds access, bad instruction); "
            "rarely driver or hardware.", "Check the application (compute-sanitizer); if several applications "
            "hit it, run GPU diagnostics.", "warn"),
    XidInfo(31, "GPU memory page fault", "The application accessed memory it does not own (illegal address).",
            "Debug the application; if it happens across applications, suspect driver or hardware.", "warn"),
    XidInfo(32, "Invalid or corrupted push buffer stream", "Corrupted command stream, often PCIe trouble.",
            "Check PCIe seating and errors; contact support if it repeats.", "alert"),
    XidInfo(38, "Driver firmware error", "The driver and the GPU firmware disagree.",
            "Reinstall or update the driver; reset the GPU.", "alert"),
    XidInfo(43, "GPU stopped processing (user fault)", "A user application faulted and its channel was reset; "
            "the GPU stays healthy.", "Nothing on the GPU; fix the application if it recurs.", "warn"),
    XidInfo(45, "Preemptive cleanup", "Channels torn down after an earlier error or a killed process.",
            "Look at the XID logged just before; on its own it needs no action.", "warn"),
    XidInfo(48, "Double-bit ECC error", "An uncorrectable memory error: data on the GPU may be corrupt.",
            "Drain the GPU and reset it; if it repeats, replace the GPU.", "alert"),
    XidInfo(56, "Display engine error", "Display engine fault (not used by compute workloads).",
            "Usually none for LLM serving; update the driver if it repeats.", "warn"),
    XidInfo(57, "Error programming video memory interface", "Memory interface fault, possibly hardware.",
            "Reset the GPU; contact support if it repeats.", "alert"),
    XidInfo(61, "Internal micro-controller breakpoint/warning", "GPU firmware hit an internal breakpoint.",
            "Reset the GPU (or reboot); contact support if it repeats.", "alert"),
    XidInfo(62, "Internal micro-controller halt", "GPU firmware halted.",
            "Reset the GPU (or reboot); contact support if it repeats.", "alert"),
    XidInfo(63, "ECC page retirement / row remapping recorded", "A memory page was retired or a row marked for "
            "remapping.", "Reset the GPU when convenient so the remap takes effect; watch for repeats.", "warn"),
    XidInfo(64, "ECC page retirement / row remapping failure", "Retiring or remapping memory failed.",
            "Drain the GPU; it needs service (RMA) if it repeats.", "alert"),
    XidInfo(68, "Video decoder (NVDEC) exception", "Video decode engine fault.",
            "Restart the application; usually unrelated to LLM serving.", "warn"),
    XidInfo(69, "Graphics engine class error", "Invalid command to a graphics engine class.",
            "Restart the application; update the driver if it repeats.", "warn"),
    XidInfo(74, "NVLink error", "An NVLink link reported an error.",
            "Check the NVLink topology (nvidia-smi nvlink -s); reset the GPUs; service if it repeats.", "alert"),
    XidInfo(79, "GPU has fallen off the bus", "The GPU stopped answering on PCIe: power, thermal, PCIe or "
            "hardware fault.", "Drain the node, reboot, check power cabling, PCIe and cooling; service the GPU "
            "if it repeats.", "alert"),
    XidInfo(92, "High single-bit ECC error rate", "Correctable memory errors at a high rate.",
            "Watch the ECC counters; plan a reset and contact support if the rate stays high.", "warn"),
    XidInfo(94, "Contained ECC error", "An uncorrectable memory error was contained to one application.",
            "Restart the affected application; reset the GPU when convenient.", "alert"),
    XidInfo(95, "Uncontained ECC error", "An uncorrectable memory error affected every application on the GPU.",
            "Drain and reset the GPU now; service it if it repeats.", "alert"),
    XidInfo(109, "Context switch timeout", "A context switch did not finish in time.",
            "Restart the application; update the driver if it repeats.", "warn"),
    XidInfo(119, "GSP RPC timeout", "The GPU System Processor did not answer the driver in time.",
            "Reset the GPU or reboot; update the driver (known GSP fixes); contact support if it repeats.",
            "alert"),
    XidInfo(120, "GSP error", "The GPU System Processor reported an error.",
            "Reset the GPU or reboot; update the driver; contact support if it repeats.", "alert"),
    XidInfo(121, "C2C link corrected error", "Chip-to-chip link corrected an error.",
            "Watch for repeats; no action for a single event.", "warn"),
    XidInfo(140, "ECC unrecovered error", "Memory error the GPU could not recover from.",
            "Drain and reset the GPU; service it if it repeats.", "alert"),
    XidInfo(154, "GPU recovery action changed", "The driver says what recovery the GPU now needs.",
            "Do what the message says (reset the GPU, reboot, or drain and service).", "alert"),
]  # fmt: skip

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
