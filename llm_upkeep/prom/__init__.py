"""Prometheus export: llm-upkeep's figures as Prometheus metrics, through node_exporter's textfile
collector (an atomically replaced .prom file) and optionally a Pushgateway."""
