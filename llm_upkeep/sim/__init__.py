"""In-process simulators of the servers llm-upkeep maintains (for tests, benchmarks and the demo)."""

from llm_upkeep.sim.llm_server import FAULTS, SimBehavior, SimServer

__all__ = ["FAULTS", "SimBehavior", "SimServer"]
