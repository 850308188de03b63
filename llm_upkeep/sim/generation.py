"""What a simulated answer says and when each piece of it leaves: the token plan and schedule.

Why together: content (filler, canned answers, gibberish, thinking) and its timing (TTFT, ITL,
slowdown, absolute schedule without drift) change together when a test needs new timing
behaviour; both dialects only wrap the pieces in their own framing.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import random
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llm_upkeep.sim.http11 import Request

_FILLER = (
    "The quick brown fox jumps over the lazy dog while the model keeps streaming tokens at a "
    "steady pace so that latency and throughput can be measured precisely by the maintenance probe"
).split()

_GIBBERISH = [
    "Ã¤",
    "ж",
    "漢",
    "\ufffd",
    "▁",
    "Ġ",
    "<0x0A>",
    "ðŁĺ",
    "ق",
    "ψ",
    "ค",
    "##",
    "्",
    "Ð½Ð°",
    "\u200b",
    "ﾟ",
    "⊕",
    "ß",
    "ę",
    "<unk>",
]


@dataclass
class Plan:
    thinking: list[str]
    content: list[str]
    done_reason: str
    prompt_tokens: int



class GenerationMixin:
    """Token planning and scheduling for SimServer (reads ``behavior``, counts tokens)."""

    def _prompt_tokens(self, text: str) -> int:
        return max(1, len(re.findall(r"\w+|[^\w\s]", text)))

    def _plan(self, prompt: str, max_tokens: int | None, *, thinking_ok: bool, seed: int | None) -> Plan:
        b = self.behavior
        thinking: list[str] = []
        if b.thinking and thinking_ok and b.thinking_tokens > 0:
            words = "Let me think about what is being asked here and answer briefly".split()
            thinking = [(w if i == 0 else " " + w) for i, w in enumerate(cycle(words, b.thinking_tokens))]
        if b.fault == "gibberish":
            rnd = random.Random(seed if seed is not None else 0)
            content = [
                "".join(rnd.choice(_GIBBERISH) for _ in range(rnd.randint(1, 3))) for _ in range(b.tokens)
            ]
        else:
            answer = None
            low = prompt.lower()
            for key, text in b.answers.items():
                if key.lower() in low:
                    answer = text
                    break
            if answer is not None:
                content = re.findall(r"\s*\S+", answer) or [answer]
            else:
                content = [(w if i == 0 else " " + w) for i, w in enumerate(cycle(_FILLER, b.tokens))]
        reason = "stop"
        if max_tokens is not None and max_tokens >= 0:
            if len(thinking) >= max_tokens:
                thinking, content = thinking[:max_tokens], []
                reason = "length"
            elif len(thinking) + len(content) > max_tokens:
                content = content[: max_tokens - len(thinking)]
                reason = "length"
        return Plan(thinking, content, reason, self._prompt_tokens(prompt))

    def _finish(self, req: Request, plan: Plan) -> None:
        """Count the request as served before its last bytes go out, so a client that reads
        /metrics right after the answer sees it counted."""
        if not req.finished:
            req.finished = True
            self._running -= 1
            self._success[plan.done_reason] = self._success.get(plan.done_reason, 0) + 1

    def _first_delay(self) -> float:
        b = self.behavior
        if b.fault == "slow_first_token":
            return b.slow_first_token_s + b.load_duration_s
        return b.ttft_s * b.slowdown + b.load_duration_s

    async def _tokens(self, req: Request, plan: Plan, writer, emit) -> tuple[float, float]:
        """Emit every planned piece on its absolute schedule; returns (t_first, t_last) loop times.

        The request's record (``requests``) gets ``first_token_time``, the wall time the first
        piece was handed to the socket: a test that reads TTFT on a busy machine subtracts the
        server's own lateness (``first_token_time - time`` against the configured TTFT) from
        what the client read."""
        loop = asyncio.get_running_loop()
        b = self.behavior
        start = req.t0 + self._first_delay()
        pieces = [(p, True) for p in plan.thinking] + [(p, False) for p in plan.content]
        t_first = t_last = start
        for i, (piece, is_thinking) in enumerate(pieces):
            await self._sleep_until(start + i * b.itl_s * b.slowdown, writer)
            now = loop.time()
            if i == 0:
                t_first = now
            t_last = now
            await emit(piece, is_thinking)
            if i == 0:
                req.record["first_token_time"] = time.time()
            self._generation_tokens_total += 1
        if not pieces:
            await self._sleep_until(start, writer)
            t_first = t_last = loop.time()
            req.record["first_token_time"] = time.time()
        return t_first, t_last

    def _embedding(self, text: str) -> list[float]:
        """Bag of hashed words: similar texts share words, so their vectors are near."""
        dim = max(1, self.behavior.embedding_dim)
        vec = [0.0] * dim
        for w in re.findall(r"\w+", text.lower()):
            h = hashlib.sha256(w.encode()).digest()
            vec[int.from_bytes(h[:4], "big") % dim] += 1.0 if h[4] & 1 else -1.0
        norm = math.sqrt(sum(x * x for x in vec))
        if norm == 0:
            vec[0], norm = 1.0, 1.0
        return [round(x / norm, 8) for x in vec]


async def noop_emit(piece: str, is_thinking: bool) -> None:
    return None


def cycle(words: list[str] | tuple[str, ...], n: int) -> list[str]:
    return [words[i % len(words)] for i in range(max(0, n))]
