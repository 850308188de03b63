"""The emergency runbook as code: detect a symptom, diagnose it with evidence, fix it, verify.

Nothing is imported here on purpose: llm_upkeep.config imports runbook.config, and an import of
the engine from this package would close a cycle.
"""
