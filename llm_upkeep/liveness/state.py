"""Liveness state per endpoint, kept in state_dir (liveness-state.json, locked), and the
transitions that make a message: down (once) and resolved (once, with the outage length).

Why a state file and not alert suppression: suppression re-sends after its window, and never says
"resolved". A state machine sends exactly one message per change. A message that could not be
delivered is not marked as sent, so the next run tries again.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field

from llm_upkeep.jsonstate import locked_json

STATE_FILE = "liveness-state.json"


class EndpointState(BaseModel):
    up: bool = Field(default=True, description="Last declared state.")
    failures: int = Field(default=0, description="Consecutive failed runs.")
    down_since: datetime | None = Field(default=None, description="First failed run of the current outage.")
    last_error: str | None = Field(default=None, description="Error kind and detail of the last failure.")
    down_notified: bool = Field(default=False, description="The down message was delivered.")
    resolve_pending: bool = Field(default=False, description="Up again, resolved message not yet delivered.")
    outage_s: float | None = Field(default=None, description="Length of the last outage, seconds.")


class Transition(BaseModel):
    endpoint: str = Field(description="Endpoint name.")
    kind: str = Field(description="down | resolved")
    at: datetime = Field(description="When it was noticed (UTC).")
    outage_s: float | None = Field(default=None, description="resolved: how long it was down.")
    error: str | None = Field(default=None, description="down: what failed.")


@contextmanager
def locked_state(state_dir: str | Path) -> Iterator[dict[str, EndpointState]]:
    """Read-modify-write of the state file under an exclusive lock (two overlapping runs agree)."""
    with locked_json(Path(state_dir) / STATE_FILE) as raw:
        states = {k: EndpointState.model_validate(v) for k, v in raw.items() if isinstance(v, dict)}
        yield states
        raw.clear()
        raw.update({k: v.model_dump(mode="json") for k, v in states.items()})


def observe(st: EndpointState, ok: bool, error: str | None, now: datetime, down_after: int) -> Transition | None:
    """Fold one run's result into the state; returns the message this run owes, if any.

    A message owed but not delivered stays owed (mark_delivered is what clears it)."""
    now = now.astimezone(UTC)
    if ok:
        if not st.up or st.failures:
            if not st.up:
                st.outage_s = (now - st.down_since).total_seconds() if st.down_since else None
                st.resolve_pending = st.down_notified  # never "resolved" for a down nobody was told about
            st.up, st.failures, st.down_since, st.down_notified = True, 0, None, False
        if st.resolve_pending:
            return Transition(endpoint="", kind="resolved", at=now, outage_s=st.outage_s)
        return None
    st.failures += 1
    st.last_error = error
    st.resolve_pending = False
    if st.down_since is None:
        st.down_since = now
    if st.up and st.failures >= down_after:
        st.up = False
    if not st.up and not st.down_notified:
        return Transition(endpoint="", kind="down", at=now, error=error)
    return None


def mark_delivered(st: EndpointState, t: Transition) -> None:
    if t.kind == "down":
        st.down_notified = True
    else:
        st.resolve_pending = False


def human_duration(s: float | None) -> str:
    if s is None:
        return "an unknown time"
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    if h:
        return f"{h} h {m} min"
    if m:
        return f"{m} min {sec} s"
    return f"{sec} s"
