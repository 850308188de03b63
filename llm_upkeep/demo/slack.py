"""The demo's Slack: a local receiver that prints every message it gets as a ``[slack] ...`` line."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any


class SlackService:
    def __init__(self) -> None:
        self.sink: Any = None
        self.lines: list[str] = []

    @property
    def webhook_url(self) -> str | None:
        return self.sink.webhook_url if self.sink is not None else None

    def start(self, say: Callable[[str], None]) -> None:
        from llm_upkeep.sim.slack_sink import SlackSink, format_message

        def on_message(msg: dict) -> None:
            line = format_message(msg)
            self.lines.append(line)
            say(line)

        self.sink = SlackSink(on_message=on_message).start()
        say(f"  Slack receiver             {self.sink.base_url}  (prints every message below)")

    def stop(self) -> None:
        if self.sink is not None:
            with contextlib.suppress(Exception):
                self.sink.stop()
            self.sink = None
