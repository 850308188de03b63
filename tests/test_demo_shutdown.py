"""The demo's promise: one command up, Ctrl-C down, nothing left running (checked with psutil
through an environment marker every descendant inherits)."""

from __future__ import annotations

import signal
import socket
import time

import psutil
import pytest

from tests.demo_fixtures import DemoProcess, cmdline_of, free_port, processes_with_marker

pytestmark = pytest.mark.demo


@pytest.fixture
def demo_factory(tmp_path):
    made: list[DemoProcess] = []

    def make(*args: str, port: int | None = None) -> DemoProcess:
        d = DemoProcess(tmp_path / f"state{len(made)}", port or free_port(), list(args)).start()
        made.append(d)
        return d

    yield make
    for d in made:
        d.kill_survivors()


def port_is_free(port: int) -> bool:
    """Nothing listens there any more (TIME_WAIT leftovers of closed connections do not count)."""
    return not any(
        c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN
        for c in psutil.net_connections("tcp")
    )


def test_no_wait_runs_once_and_exits_clean(demo_factory):
    demo = demo_factory("--no-wait", "--only", "daily-health")
    rc = demo.proc.wait(600)
    demo._reader.join(5)
    out = demo.output
    assert rc == 0, out[-5000:]
    assert "daily-health: Completed" in out
    assert any(line.startswith("[slack]") and "vllm-slow" in line for line in demo.lines)
    assert out.rstrip().endswith("everything it started is stopped.")
    assert demo.survivors() == []
    assert port_is_free(demo.port)


def test_ctrl_c_during_a_flow_run_stops_everything(demo_factory):
    demo = demo_factory("--only", "daily-health")
    # Wait until a flow run is executing in its own process (the Runner's child), then interrupt.
    deadline = time.monotonic() + 400
    engine = []
    while time.monotonic() < deadline and not engine and demo.proc.poll() is None:
        engine = [p for p in processes_with_marker(demo.marker) if "prefect.engine" in cmdline_of(p)]
        time.sleep(0.2)
    assert engine, f"no flow-run process appeared:\n{demo.output[-4000:]}"
    t0 = time.monotonic()
    rc = demo.interrupt(signal.SIGINT, timeout_s=120)
    assert rc is not None, "the demo did not stop within 120 s of Ctrl-C"
    assert rc == 130, demo.output[-3000:]
    assert "everything it started is stopped" in demo.output
    assert demo.survivors() == [], [p.cmdline() for p in demo.survivors()]
    assert port_is_free(demo.port)
    assert time.monotonic() - t0 < 120


def test_sigterm_during_start_up_stops_everything(demo_factory):
    """systemd and `kill` send TERM: the same clean-up as Ctrl-C, even half-way through start-up."""
    demo = demo_factory("--only", "scheduled-restart")
    assert demo.wait_for("Serving the", timeout_s=400), demo.output[-4000:]
    rc = demo.interrupt(signal.SIGTERM, timeout_s=120)
    assert rc == 130, demo.output[-3000:]
    assert demo.survivors() == [], [p.cmdline() for p in demo.survivors()]
    assert port_is_free(demo.port)


def test_busy_port_is_a_clear_error_and_starts_nothing(demo_factory):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        demo = demo_factory("--no-wait", port=port)
        rc = demo.proc.wait(120)
        demo._reader.join(5)
    assert rc == 2
    assert f"port {port} is in use" in demo.output
    assert demo.survivors() == []
