"""The shared config validators (configbase.HttpUrl, require_unique) hold in every section that uses them."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from llm_upkeep.backup.config import BackupConfig
from llm_upkeep.config import Config
from llm_upkeep.prom.config import PrometheusConfig
from llm_upkeep.review.config import ReviewConfig

EP = dict(api="ollama", url="http://127.0.0.1:11434/", model="m")


@pytest.mark.parametrize(
    "build",
    [
        lambda u: Config(endpoints=[dict(EP, name="a", url=u)]),
        lambda u: ReviewConfig(ollama_registry_url=u),
        lambda u: ReviewConfig(hf_endpoint=u),
        lambda u: PrometheusConfig(pushgateway_url=u),
        lambda u: BackupConfig(endpoint_url=u, bucket="backups"),
    ],
)
def test_every_url_key_refuses_other_schemes_and_drops_the_trailing_slash(build):
    with pytest.raises(ValidationError, match="must start with http:// or https://"):
        build("ftp://127.0.0.1/")
    ok = build("https://127.0.0.1:9000/")
    values = ok.model_dump()
    assert "https://127.0.0.1:9000" in repr(values) and "https://127.0.0.1:9000/" not in repr(values)


def test_duplicate_names_are_refused_and_named():
    with pytest.raises(ValidationError, match="duplicate endpoint name 'a'"):
        Config(endpoints=[dict(EP, name="a"), dict(EP, name="a")])
    assert len(Config(endpoints=[dict(EP, name="a"), dict(EP, name="b")]).endpoints) == 2
