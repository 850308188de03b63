"""Host parts as the central fleet run sees them (no Prefect): typed results that survive the trip
through JSON, and a failed or missing host that is a row, an alert check and a note, never dropped."""

from __future__ import annotations

from datetime import date

from llm_upkeep.checks import Status
from llm_upkeep.cost.config import TokenSource
from llm_upkeep.cost.energy import GpuEnergy
from llm_upkeep.cost.fleet import EnergyPart, collect_energies, energy_part, token_sources_of
from llm_upkeep.cost.tokens import TokenCount
from llm_upkeep.fleet_parts import HostPart, missing_reason, part_checks, render_hosts


def _part(host: str, kwh: float, tokens: float) -> HostPart:
    e = GpuEnergy(host, 0, kwh=kwh, counter_kwh=kwh, samples=3, daily_kwh={date(2026, 11, 2): kwh})
    t = TokenCount("metrics ep", input_tokens=tokens, output_tokens=tokens / 2, daily={date(2026, 11, 2): [tokens, 1]})
    data = energy_part(host, [e], [t]).model_dump(mode="json")
    return HostPart(host=host, status="ok", state="Completed", data=data)


def test_energy_and_tokens_of_every_host_come_back_typed_and_a_missing_host_is_named():
    missing = HostPart(host="gpu-c", status="missing", state="Running", detail=missing_reason("Running", 60))
    energies, tokens, notes = collect_energies([_part("gpu-a", 1.5, 100), _part("gpu-b", 2.5, 300), missing])
    assert [(e.host, e.kwh, e.daily_kwh) for e in energies] == [
        ("gpu-a", 1.5, {date(2026, 11, 2): 1.5}), ("gpu-b", 2.5, {date(2026, 11, 2): 2.5})]  # fmt: skip
    assert [(t.source, t.input_tokens) for t in tokens] == [("gpu-a: metrics ep", 100), ("gpu-b: metrics ep", 300)]
    assert len(notes) == 1 and notes[0].startswith("host gpu-c: energy MISSING (still running after 60 s")


def test_missing_and_failed_hosts_are_alert_checks_and_rows():
    parts = [
        HostPart(host="a", status="ok", state="Completed"),
        HostPart(host="b", status="degraded", state="Completed", detail="degraded"),
        HostPart(host="c", status="missing", state="Scheduled", detail=missing_reason("Scheduled", 900)),
        HostPart(host="d", status="failed", state="Crashed", detail="Crashed: killed"),
    ]
    checks = part_checks(parts, "daily_health")
    assert [(c.target, c.status) for c in checks] == [
        ("a", Status.OK), ("b", Status.WARN), ("c", Status.ALERT), ("d", Status.ALERT)]  # fmt: skip
    assert "worker is down or busy" in checks[2].detail
    table = render_hosts(parts)
    assert "| c | **MISSING** | Scheduled |" in table and "| d | **FAILED** | Crashed |" in table


def test_a_host_reads_its_own_counters_and_every_request_log():
    sources = [TokenSource(kind="metrics", endpoint="ep-a"), TokenSource(kind="metrics", endpoint="ep-b"),
               TokenSource(kind="log", path="/var/log/llm/requests.jsonl")]  # fmt: skip
    mine = token_sources_of(sources, {"ep-a": "gpu-a", "ep-b": "gpu-b"}, "gpu-a")
    assert [(s.kind, s.endpoint) for s in mine] == [("metrics", "ep-a"), ("log", None)]
    assert EnergyPart(host="x").status == "ok"


def test_waiting_for_parts_reads_only_the_runs_not_final_yet(monkeypatch):
    """The central run polls its parts' states together; a part that is final is not read again
    (each run read costs the Prefect server its serialisation, every 0.5 s for the whole wait),
    and at the deadline it returns what it has, the unfinished ones included."""
    import asyncio
    import uuid
    from types import SimpleNamespace

    import tasks.fleet as fleet_tasks

    monkeypatch.setattr(fleet_tasks, "POLL_S", 0.01)

    def run(i, final):
        return SimpleNamespace(id=i, state=SimpleNamespace(is_final=lambda: final))

    class Client:
        def __init__(self, final_after):
            self.final_after, self.asked, self.calls = final_after, [], 0

        async def read_flow_runs(self, flow_run_filter, limit):
            self.calls += 1
            ids = list(flow_run_filter.id.any_)
            self.asked.append(ids)
            assert limit == len(ids)
            return [run(i, self.calls >= self.final_after[i]) for i in ids]

    a, b, c = (uuid.uuid4() for _ in range(3))
    client = Client({a: 1, b: 2, c: 3})
    runs = asyncio.run(fleet_tasks._wait_final(client, [a, b, c], 10))
    assert client.asked == [[a, b, c], [b, c], [c]]
    assert all(runs[i].state.is_final() for i in (a, b, c))

    never = Client({a: 1, b: 10**9, c: 10**9})
    runs = asyncio.run(fleet_tasks._wait_final(never, [a, b, c], 0.05))
    assert set(runs) == {a, b, c} and runs[a].state.is_final() and not runs[b].state.is_final()
    assert all(ids == [b, c] for ids in never.asked[1:]), never.asked[:3]
