"""The flow `benchmarks/fleet_floor.py` runs on every host: nothing but Prefect's own work (a flow
run and, with --tasks, that many empty task runs), so what it measures is the floor under any
host part of ours."""

from __future__ import annotations

from prefect import flow, task
from prefect.cache_policies import NO_CACHE


@task(name="floor-step", cache_policy=NO_CACHE)
def floor_step(i: int) -> int:
    """An empty step: a task run's cost to the engine and the server, nothing else."""
    return i


@flow(name="floor-part", log_prints=False)
def floor_part(tasks: int = 0) -> int:
    """A host part with no work of its own: `tasks` empty task runs, one after another."""
    return sum(floor_step(i) for i in range(tasks))
