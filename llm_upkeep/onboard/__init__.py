"""`llm-upkeep init`: find this host's LLM servers, models, GPUs and logs, and write a config."""
