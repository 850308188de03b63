"""Was the benchmark client starved of CPU while it measured? Read from the kernel, not guessed.

Why: a streamed chunk is stamped when the client's event loop runs, so any time the loop's
thread was ready to run but waited for a core is added to the latencies it records. The loop-lag
timer samples that only every 20 ms, and a client spread over several processes keeps each one's
CPU low even when the host is saturated (at concurrency 64 on two cores the simulator and the
client processes share both cores). Linux counts it exactly per thread in
``/proc/thread-self/schedstat``: time on a CPU, time runnable but waiting on a run queue, and
the number of times the thread got a CPU. Waiting time divided by the number of times the thread
got a CPU is the mean delay each wake-up paid before the loop could stamp what woke it.
``/proc/stat`` gives the host's idle share over the same span (every core busy: no room left for
the client's wake-ups). Where these files are missing (not Linux) the figures are None.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

SCHEDSTAT = "/proc/thread-self/schedstat"


def _read_schedstat() -> tuple[int, int, int] | None:
    try:
        with open(SCHEDSTAT) as f:
            on_cpu, waited, slices = (int(x) for x in f.read().split()[:3])
    except (OSError, ValueError):
        return None
    return on_cpu, waited, slices


def _read_host_cpu() -> tuple[int, int] | None:
    """(idle + iowait, total) jiffies of every core, from /proc/stat's first line."""
    try:
        with open("/proc/stat") as f:
            vals = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return vals[3] + (vals[4] if len(vals) > 4 else 0), sum(vals[:8])


@dataclass
class Starvation:
    """The calling thread's CPU starvation over a span (call ``start`` then ``stop`` in the same thread)."""

    wait_per_wakeup_ms: float | None = None  # mean run-queue wait before each time on a CPU
    wait_percent: float | None = None  # run-queue wait, % of the span's wall time
    host_idle_percent: float | None = None  # idle share of all cores over the span

    def start(self) -> Starvation:
        self._s0, self._h0, self._t0 = _read_schedstat(), _read_host_cpu(), time.perf_counter()
        return self

    def stop(self) -> Starvation:
        s1, h1, wall = _read_schedstat(), _read_host_cpu(), time.perf_counter() - self._t0
        if self._s0 and s1 and wall > 0:
            waited, slices = s1[1] - self._s0[1], s1[2] - self._s0[2]
            self.wait_percent = round(100.0 * waited / 1e9 / wall, 2)
            self.wait_per_wakeup_ms = round(waited / 1e6 / max(slices, 1), 3)
        if self._h0 and h1 and h1[1] > self._h0[1]:
            self.host_idle_percent = round(100.0 * (h1[0] - self._h0[0]) / (h1[1] - self._h0[1]), 1)
        return self
