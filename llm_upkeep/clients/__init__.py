"""Async HTTP clients for the LLM servers llm-upkeep maintains (Ollama native, OpenAI-compatible)."""

from __future__ import annotations

import httpx

from llm_upkeep.clients.base import LLMClient, StreamEvent, make_http_client, parse_prometheus
from llm_upkeep.clients.errors import KINDS, LLMError
from llm_upkeep.clients.ollama import OllamaClient
from llm_upkeep.clients.openai import OpenAIClient
from llm_upkeep.config import EndpointConfig


def client_for(endpoint: EndpointConfig, http: httpx.AsyncClient) -> LLMClient:
    """The client speaking this endpoint's API dialect."""
    if endpoint.api == "ollama":
        return OllamaClient(endpoint, http)
    if endpoint.api == "openai":
        return OpenAIClient(endpoint, http)
    raise ValueError(f"unknown API dialect {endpoint.api!r}")


__all__ = [
    "KINDS",
    "LLMClient",
    "LLMError",
    "OllamaClient",
    "OpenAIClient",
    "StreamEvent",
    "client_for",
    "make_http_client",
    "parse_prometheus",
]
