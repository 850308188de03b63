"""In-process simulators of the servers llm-upkeep maintains (for tests, benchmarks and the demo).

Names are imported lazily so `python -m llm_upkeep.sim.llm_server` runs without a double import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llm_upkeep.sim.llm_server import FAULTS, SimBehavior, SimServer

__all__ = ["FAULTS", "SimBehavior", "SimServer"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from llm_upkeep.sim import llm_server

        return getattr(llm_server, name)
    raise AttributeError(name)
