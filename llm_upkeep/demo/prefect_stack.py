"""The demo's Prefect: a server on SQLite in the state dir, and `llm-upkeep serve` registering
every deployment of prefect.yaml, the same machinery a single host uses in production.
"""

from __future__ import annotations

import sys
import time

import httpx

from llm_upkeep.demo.processes import Child, port_in_use
from llm_upkeep.demo.settings import DemoError


class PrefectStackMixin:
    """For Demo: reads ``port``, ``api_url``, ``state_dir``, ``logs_dir``, ``root``, ``config_path``,
    ``child_env()`` and appends to ``children``."""

    def start_prefect_server(self, timeout_s: float = 180.0) -> None:
        if port_in_use(self.port):
            raise DemoError(
                f"port {self.port} is in use (another Prefect server or demo?): stop it or pass --port N"
            )
        (self.state_dir / "prefect").mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
               "--port", str(self.port)]  # fmt: skip
        child = Child(
            "prefect-server", cmd, self.child_env(), self.logs_dir / "prefect-server.log", self.root
        )
        self.children.append(child)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not child.alive:
                raise DemoError(f"the Prefect server exited ({child.proc.returncode}):\n{child.tail()}")
            try:
                if httpx.get(f"{self.api_url}/health", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise DemoError(f"the Prefect server did not answer within {timeout_s:.0f} s:\n{child.tail()}")

    def start_serve(self, names: list[str] | None = None, limit: int = 4) -> Child:
        cmd = [sys.executable, "-m", "llm_upkeep.cli", "serve", "--config", str(self.config_path),
               "--limit", str(limit)]  # fmt: skip
        for n in names or []:
            cmd += ["--name", n]
        child = Child("serve", cmd, self.child_env(), self.logs_dir / "serve.log", self.root)
        self.children.append(child)
        return child

    async def wait_deployments(self, names: list[str], serve: Child, timeout_s: float = 240.0) -> dict:
        from prefect import get_client
        from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

        deadline = time.monotonic() + timeout_s
        async with get_client() as client:
            while True:
                if not serve.alive:
                    raise DemoError(f"`llm-upkeep serve` exited ({serve.proc.returncode}):\n{serve.tail()}")
                found = await client.read_deployments(
                    deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=names))
                )
                if len({d.name for d in found}) >= len(names):
                    flows = {f.id: f.name for f in await client.read_flows()}
                    return {d.name: (d, flows.get(d.flow_id, "?")) for d in found}
                if time.monotonic() > deadline:
                    missing = sorted(set(names) - {d.name for d in found})
                    raise DemoError(
                        f"deployments not registered in {timeout_s:.0f} s: {missing}\n{serve.tail()}"
                    )
                await _asleep(1.0)



async def _asleep(s: float) -> None:
    import asyncio

    await asyncio.sleep(s)

