"""Thin Prefect tasks for notices (Slack and Apprise through llm_upkeep.notify.deliver)."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from llm_upkeep.alerts import Delivery
from llm_upkeep.config import AlertsConfig
from llm_upkeep.notify import deliver


@task(name="send-notice", cache_policy=NO_CACHE)
def send_notice_task(cfg: AlertsConfig, title: str, text: str, blocks: list[dict], kind: str = "info") -> Delivery:
    return deliver(cfg, title, text, blocks, kind=kind)


def flow_run_ui_link(run_id: str) -> str | None:
    """The Prefect UI page of a flow run: PREFECT_UI_URL, else derived from PREFECT_API_URL."""
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL

    ui = PREFECT_UI_URL.value()
    if not ui:
        api = PREFECT_API_URL.value()
        ui = api.removesuffix("/").removesuffix("/api") if api else None
    return f"{ui.rstrip('/')}/runs/flow-run/{run_id}" if ui else None
