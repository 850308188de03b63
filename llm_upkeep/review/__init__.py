"""The weekly review: error logs, GPU temperatures, model updates, driver drift (no Prefect here).

Import from the submodules (config, logscan, errors, temperature, updates, driver, report,
sampling); this package stays import-light because llm_upkeep.config imports review.config.
"""
