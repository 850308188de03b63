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


def as_true_as_bare(measured: float | None, expected: float, bare: float, *, slack: float = 0.01) -> bool:
    """No further from the truth than a bare probe of the same server in the same run, plus slack.

    Why a bare reading and not a late bound: a busy machine delays a bare probe too, and a
    generous absolute bound (say +0.3 s) lets a measurement that waited for the flow's
    orchestration, or total time, pass for TTFT. The bare probe carries the machine's delay of
    the moment; what is left over is the error the code under test adds.
    """
    if measured is None:
        return False
    return expected - EARLY_S <= measured <= expected + max(0.0, bare - expected) + slack
