"""The [prometheus] section: where the textfile collector reads, and the optional Pushgateway."""

from __future__ import annotations

from pydantic import Field

from llm_upkeep.configbase import HttpUrl, PositiveFloat, Section


class PrometheusConfig(Section):
    textfile_dir: str | None = Field(
        default=None,
        description="Directory node_exporter reads (--collector.textfile.directory); each flow writes its "
        "own llm_upkeep_<flow>.prom there. Unset: no textfile export.",
    )
    pushgateway_url: HttpUrl | None = Field(
        default=None, description="Pushgateway base URL, e.g. http://127.0.0.1:9091. Unset: no push."
    )
    job: str = Field(default="llm_upkeep", min_length=1, description="Pushgateway job label.")
    timeout_s: PositiveFloat = Field(default=5.0, description="Timeout of one Pushgateway request, in seconds.")

    @property
    def enabled(self) -> bool:
        return bool(self.textfile_dir or self.pushgateway_url)
