"""The demo's LLM servers: a healthy Ollama and its staging instance sharing one model store on
disk, a vLLM with a planted slow-first-token fault, and the model registry they pull from.

Why together: the model chain needs all of them to agree on one store and one registry; the
seeding of the two model versions is part of the same picture.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llm_upkeep.demo.settings import (
    CANARY,
    CANDIDATE,
    CURRENT,
    FAULT,
    FAULTY,
    HEALTHY,
    MODEL_BYTES,
    PROD_MODEL,
    SLOW_FIRST_TOKEN_S,
    STAGING,
)


class LlmServers:
    """Started by start(), stopped by stop(); ``sims`` is (healthy, slow, staging) once started."""

    def __init__(self, state_dir: Path):
        self.state_dir = state_dir
        self.sims: list[Any] = []
        self.registry_server: Any = None

    @property
    def store(self) -> Path:
        return self.state_dir / "ollama-models"

    @property
    def registry(self) -> Path:
        return self.state_dir / "ollama-registry"

    def seed_models(self) -> None:
        """The registry holds both versions; the store has the current one, served as PROD_MODEL.

        Made again on every run (same bytes, same names): a second demo in the same state dir
        starts from the current version too, with the history of the earlier runs kept.
        """
        from llm_upkeep.models.store import write_manifest
        from llm_upkeep.sim.ollama_store import fake_weights, install_model, publish_model

        reg = self.registry
        publish_model(reg, CURRENT, fake_weights(1, MODEL_BYTES))
        cand = publish_model(reg, CANDIDATE, fake_weights(2, MODEL_BYTES))
        write_manifest(reg, PROD_MODEL, cand.path.read_bytes())  # upstream moved the tag to the new build
        cur = install_model(reg, self.store, CURRENT)
        write_manifest(self.store, PROD_MODEL, cur.path.read_bytes())

    def start(self, say: Callable[[str], None]) -> None:
        from llm_upkeep.sim.llm_server import SimBehavior, SimServer
        from llm_upkeep.sim.ollama_store import RegistryServer, StoreSimServer, store_behavior

        # Production and staging: two Ollama instances on one host sharing one model store (as
        # the model tests run them), so staging benchmarks the very blobs production will serve.
        self.seed_models()
        store, reg = self.store, self.registry
        timing = {"ttft_s": 0.15, "itl_s": 0.02, "tokens": 24, "answers": dict(CANARY)}
        healthy = StoreSimServer(store_behavior(store, reg, PROD_MODEL, **timing), store, reg).start()
        self.sims.append(healthy)
        slow = SimServer(
            SimBehavior(ttft_s=0.15, itl_s=0.02, tokens=24, model="meta-llama/Llama-3.1-8B-Instruct",
                        slow_first_token_s=SLOW_FIRST_TOKEN_S, answers=dict(CANARY))
        ).start()  # fmt: skip
        slow.set_fault(FAULT)
        self.sims.append(slow)
        staging = StoreSimServer(store_behavior(store, reg, CURRENT, **timing), store, reg).start()
        self.sims.append(staging)
        self.registry_server = RegistryServer(reg).start()
        say(f"  LLM server {HEALTHY:<15} {healthy.url}  (simulated Ollama, healthy, serves {PROD_MODEL})")
        say(f"  LLM server {FAULTY:<15} {slow.url}  (simulated vLLM, planted fault: {FAULT})")
        say(f"  LLM server {STAGING:<15} {staging.url}  (simulated Ollama, staging for model evaluation)")
        say(f"  Ollama model store         {store}  ({PROD_MODEL} = {CURRENT}, shared by both Ollamas)")
        held = f"{CURRENT}; {CANDIDATE} = upstream's new {PROD_MODEL}"
        say(f"  Ollama registry            {self.registry_server.url}  ({held})")

    def stop(self) -> None:
        for s in self.sims:
            with contextlib.suppress(Exception):
                s.stop()
        self.sims = []
        if self.registry_server is not None:
            with contextlib.suppress(Exception):
                self.registry_server.stop()
            self.registry_server = None
