"""The Prometheus exposition the simulator serves on /metrics (vLLM's metric names).

Why its own file: exporters are added here as the monitoring work needs them, apart from the
request handling whose counters they read.
"""

from __future__ import annotations

from llm_upkeep.sim.metrics_text import render_metrics_text


class MetricsMixin:
    """/metrics for SimServer (reads ``_running``, ``_success`` and the token counters)."""

    async def _metrics(self, req, writer) -> bool:
        b = self.behavior
        if b.metrics_text is not None:  # a recorded exposition of vLLM, TGI, SGLang or llama.cpp
            text = render_metrics_text(b.metrics_text, b.metrics_values)
            return await self._send(writer, 200, text.encode(), "text/plain; version=0.0.4; charset=utf-8")
        label = f'{{engine="0",model_name="{b.model}"}}'
        kv = b.kv_cache_usage if b.kv_cache_usage is not None else min(1.0, 0.01 + 0.05 * self._running)
        rows = [
            (
                "vllm:num_requests_running",
                "gauge",
                "Number of requests in model execution batches.",
                [(label, self._running)],
            ),
            (
                "vllm:num_requests_waiting",
                "gauge",
                "Number of requests waiting to be processed.",
                [(label, 0)],
            ),
            (
                "vllm:gpu_cache_usage_perc",
                "gauge",
                "GPU KV-cache usage. 1 means 100 percent usage.",
                [(label, kv)],
            ),
            (
                "vllm:prompt_tokens_total",
                "counter",
                "Number of prefill tokens processed.",
                [(label, self._prompt_tokens_total)],
            ),
            (
                "vllm:generation_tokens_total",
                "counter",
                "Number of generation tokens processed.",
                [(label, self._generation_tokens_total)],
            ),
            (
                "vllm:request_success_total",
                "counter",
                "Count of successfully processed requests.",
                [
                    (f'{{engine="0",finished_reason="{r}",model_name="{b.model}"}}', n)
                    for r, n in sorted(self._success.items())
                ]
                or [(label, 0)],
            ),
        ]
        out = []
        for name, kind, help_, samples in rows:
            out.append(f"# HELP {name} {help_}")
            out.append(f"# TYPE {name} {kind}")
            for lab, val in samples:
                out.append(f"{name}{lab} {float(val)!r}")
        text = "\n".join(out) + "\n"
        return await self._send(writer, 200, text.encode(), "text/plain; version=0.0.4; charset=utf-8")
