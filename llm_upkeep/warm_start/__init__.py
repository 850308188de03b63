"""Warm start of flow runs on a worker: a pre-imported process forks each run.

Why: Prefect's process worker starts every flow run as a new interpreter that imports Prefect and
the flows again (about 3 to 4 s of CPU here). A fleet's coordinated flows start one short host part
per host at the same moment, and a host that runs several flows a day pays that start for each.
The worker instead keeps one *zygote* process that imported Prefect and every flow of prefect.yaml
once; each run's command is a tiny launcher (stdlib only) that hands the run's environment, working
directory and standard streams to the zygote over a private unix socket, and the zygote forks a
child that runs ``prefect.engine`` exactly as ``python -m prefect.engine`` would. The launcher stays
the process Prefect watches: it forwards Prefect's signals to the child and exits with its status.

Anything the fork could get wrong falls back to the cold start: no zygote (socket missing or
refused), Prefect settings in the run's environment that differ from the ones the zygote imported
with, a malformed request. See docs/operations.md "Warm start".
"""
