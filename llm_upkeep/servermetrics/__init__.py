"""What the serving stacks say about themselves on ``/metrics`` (vLLM, TGI, SGLang, llama.cpp):
parsed with prometheus_client's text parser, turned into daily-health checks and runbook evidence,
and the memory-leak rule for servers that pre-allocate their GPU memory.
"""
