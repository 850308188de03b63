"""Timing windows for tests that check *what* is measured, not how fast this machine is.

A loaded machine (CI has 2 cores, shared with a Prefect server and the simulators) can only make
a stream later than the simulator's schedule, never earlier. So the window is lopsided: tight on
the early side, where an error means the wrong thing was measured (a role chunk counted as the
first token, total time called TTFT), and generous on the late side, where it means a busy CPU.
Each call site picks a ``late`` that still tells the right measurement from the wrong one.
"""

from __future__ import annotations

EARLY_S = 0.02


def on_schedule(measured: float | None, expected: float, *, late: float, early: float = EARLY_S) -> bool:
    return measured is not None and expected - early <= measured <= expected + late
