"""The demo's flow runs: one run of each deployment in the batches settings.RUN_FIRST describes,
followed to their end (or to a pause for approval), then the artifacts they left.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from llm_upkeep.demo.prefect_stack import _asleep
from llm_upkeep.demo.settings import DEMO_PARAMETERS, RUN_AGAIN, RUN_CHAIN, RUN_FIRST, RUN_LAST


@dataclass
class RunOutcome:
    deployment: str
    flow: str
    run_id: str | None
    state: str = "NOT_STARTED"
    state_name: str = ""
    message: str = ""
    seconds: float | None = None
    result: str = ""  # what the run changed, where the demo can tell (the model chain)
    history_from: int = 0  # model switches recorded before the run started

    @property
    def ok(self) -> bool:
        return self.state in ("COMPLETED", "PAUSED")


class RunsMixin:
    """For Demo: reads ``ui_url``, ``run_timeout_s``, ``model_history()``, ``model_result()`` and
    ``_promoted``; fills ``outcomes`` and ``artifacts``."""

    async def run_all(self, deployments: dict, order: list[str]) -> None:
        """One run of each deployment, in the batches described at RUN_FIRST."""
        from prefect import get_client

        first = [n for n in order if n in RUN_FIRST]
        last = [n for n in order if n in RUN_LAST]
        chain = [[n] for n in RUN_CHAIN if n in order]
        rest = [n for n in order if n not in first and n not in last and n not in RUN_CHAIN]
        again = [n for n in order if n in RUN_AGAIN]
        batches = [(first, ""), (rest, ""), (last, ""), (again, " (again: compared with the baseline)")]
        async with get_client() as client:
            for batch, note in batches + [(b, "") for b in chain]:
                started: list[RunOutcome] = []
                for name in batch:
                    dep, flow_name = deployments[name]
                    outcome = RunOutcome(deployment=name, flow=flow_name, run_id=None)
                    self.outcomes.append(outcome)
                    params, missing = demo_parameters(name, dep.parameter_openapi_schema or {})
                    if missing:
                        outcome.state = "SKIPPED"
                        outcome.message = f"needs parameters {missing} the demo does not know"
                        self.say(f"  {name}: skipped ({outcome.message})")
                        continue
                    if name == "rollback-model" and not self._promoted:
                        outcome.state = "SKIPPED"
                        outcome.message = "nothing to roll back: evaluate-model promoted nothing in this demo"
                        self.say(f"  {name}: not run ({outcome.message})")
                        continue
                    run = await client.create_flow_run_from_deployment(dep.id, parameters=params)
                    outcome.run_id = str(run.id)
                    outcome.state = "SCHEDULED"
                    outcome.history_from = len(self.model_history())
                    started.append(outcome)
                    self.say(f"  {name}: started{note} ({self.ui_url}/runs/flow-run/{run.id})")
                await self._wait_runs(client, started)

    async def _wait_runs(self, client, outcomes: list[RunOutcome]) -> None:
        from uuid import UUID

        t0 = time.monotonic()
        pending = list(outcomes)
        while pending:
            for o in list(pending):
                run = await client.read_flow_run(UUID(o.run_id))
                st = run.state
                if st is None:
                    continue
                o.state, o.state_name = st.type.value, st.name
                if st.is_final() or st.is_paused():
                    o.seconds = round(time.monotonic() - t0, 1)
                    o.message = (st.message or "")[:300]
                    pending.remove(o)
                    if st.is_paused():
                        self.say(f"  {o.deployment}: waiting for approval -> open {self.ui_url}/runs/flow-run/"
                                 f"{o.run_id} and press Resume")  # fmt: skip
                    else:
                        o.result = self.model_result(o)
                        self.say(f"  {o.deployment}: {st.name} after {o.seconds:.0f} s"
                                 + (f" ({o.message})" if o.state != "COMPLETED" and o.message else "")
                                 + (f": {o.result}" if o.result else ""))  # fmt: skip
            if pending and time.monotonic() - t0 > self.run_timeout_s:
                for o in pending:
                    o.message = f"still {o.state_name or o.state} after {self.run_timeout_s:.0f} s"
                    self.say(f"  {o.deployment}: {o.message}")
                return
            if pending:
                await _asleep(1.0)

    async def read_artifacts(self) -> None:
        from prefect import get_client
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

        async with get_client() as client:
            arts = await client.read_latest_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(exists_=True))
            )
        self.artifacts = sorted(
            ({"key": a.key, "type": a.type, "description": a.description or ""} for a in arts),
            key=lambda a: a["key"],
        )


def demo_parameters(name: str, schema: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The demo's parameters a flow takes, and required ones the demo cannot supply."""
    props = set((schema.get("properties") or {}).keys())
    params = {k: v for k, v in DEMO_PARAMETERS.get(name, {}).items() if k in props}
    missing = [r for r in schema.get("required") or [] if r not in params]
    return params, missing


