"""Pytest plugin: in-process LLM server simulators and endpoint configs pointing at them."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from llm_upkeep.config import EndpointConfig
from llm_upkeep.sim.llm_server import SimBehavior, SimServer


def endpoint_for(sim: SimServer, name: str = "sim", api: str = "ollama", **kw) -> EndpointConfig:
    """An EndpointConfig for a running simulator; keyword arguments override any field (model, timeouts)."""
    kw.setdefault("model", sim.behavior.model)
    return EndpointConfig(name=name, api=api, url=sim.url, **kw)


@pytest.fixture
def sim_server() -> Iterator[SimServer]:
    """One started simulator with default behavior; stopped after the test."""
    server = SimServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sim_factory() -> Iterator[Callable[..., SimServer]]:
    """make(behavior=None, **behavior_fields) -> started SimServer; every one is stopped at teardown."""
    servers: list[SimServer] = []

    def make(behavior: SimBehavior | None = None, **fields) -> SimServer:
        if behavior is None:
            behavior = SimBehavior(**fields)
        else:
            for k, v in fields.items():
                setattr(behavior, k, v)
        server = SimServer(behavior).start()
        servers.append(server)
        return server

    try:
        yield make
    finally:
        for s in servers:
            s.stop()
