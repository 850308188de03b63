"""Notifications beside Slack through Apprise URLs: an e-mail to a local SMTP server (aiosmtpd) and a
JSON webhook to a local receiver; a dead target is reported by scheme while the others still get
the message; URLs (they carry credentials) never show in what is reported."""

from __future__ import annotations

import pytest

from llm_upkeep.alerts import send_alert
from llm_upkeep.checks import CheckResult, Status
from llm_upkeep.config import AlertsConfig
from llm_upkeep.notify import deliver
from tests.notify_fixtures import SmtpSink, WebhookSink
from tests.prom_fixtures import free_port

DOWN = [CheckResult(check="endpoint_up", target="prod", status=Status.ALERT, value=0, unit="bool",
                    detail="connection_refused: [Errno 111]", data={"error_kind": "connection_refused"})]  # fmt: skip


@pytest.fixture
def receivers(monkeypatch):
    with SmtpSink() as smtp, WebhookSink() as hook:
        monkeypatch.setenv("TEST_MAIL_URL", smtp.url())
        monkeypatch.setenv("TEST_HOOK_URL", hook.url)
        yield smtp, hook


def test_alert_reaches_mail_and_webhook(receivers, tmp_path):
    smtp, hook = receivers
    cfg = AlertsConfig(apprise_urls_env=["TEST_MAIL_URL", "TEST_HOOK_URL"], timeout_s=5)
    d = send_alert(cfg, tmp_path, "LLM health degraded", DOWN)
    assert d.status == "sent" and d.error is None, d
    assert d.channel == "apprise:mailto, apprise:json"
    (mail,) = smtp.body_texts()
    assert smtp.messages[0][1] == ["oncall@example.com"]
    assert "LLM health degraded" in mail and "endpoint_up" in mail and "Process crashed" in mail
    (post,) = hook.posts
    assert post["title"] == "LLM health degraded" and "connection_refused" in post["message"]
    assert post["type"] == "failure"
    # suppression works across targets: the same alert again is not re-sent
    assert send_alert(cfg, tmp_path, "LLM health degraded", DOWN).status == "suppressed"
    assert len(smtp.messages) == 1 and len(hook.posts) == 1


def test_dead_target_is_named_and_the_others_still_get_it(receivers, monkeypatch):
    smtp, hook = receivers
    dead = f"json://user:s3cr3tpass@127.0.0.1:{free_port()}/x"
    monkeypatch.setenv("TEST_DEAD_URL", dead)
    cfg = AlertsConfig(apprise_urls_env=["TEST_DEAD_URL", "TEST_MAIL_URL"], timeout_s=2)
    d = deliver(cfg, "t", "text", None)
    assert d.status == "sent" and d.channel == "apprise:mailto"
    assert d.error.startswith("apprise:json: delivery failed") and "s3cr3tpass" not in d.error
    assert len(smtp.messages) == 1 and hook.posts == []


def test_missing_variable_and_bad_url_are_failed_deliveries(monkeypatch):
    cfg = AlertsConfig(apprise_urls_env=["NOT_SET_ANYWHERE"])
    d = deliver(cfg, "t", "text", None)
    assert d.status == "failed" and "NOT_SET_ANYWHERE is not set" in d.error
    monkeypatch.setenv("TEST_BAD_URL", "nosuchscheme://whatever")
    d = deliver(AlertsConfig(apprise_urls_env=["TEST_BAD_URL"]), "t", "text", None)
    assert d.status == "failed" and "not a valid Apprise URL" in d.error and "whatever" not in d.error


def test_nothing_configured_is_disabled():
    assert deliver(AlertsConfig(), "t", "x", None).status == "disabled"


# ---------------------------------------------------------------- notices that used to be silent


@pytest.fixture
def both(receivers, monkeypatch):
    from llm_upkeep.sim.slack_sink import SlackSink

    with SlackSink() as slack:
        monkeypatch.setenv("TEST_SLACK_WEBHOOK", slack.webhook_url)
        yield slack, receivers[1]


@pytest.mark.prefect
def test_daily_health_says_resolved_once_when_a_failing_check_clears(prefect_harness, sim_factory, both, tmp_path):
    import asyncio
    import json

    from flows.daily_health import daily_health
    from tests.test_daily_health import ep, make_config

    slack, hook = both
    sim = sim_factory(ttft_s=0.01, itl_s=0.001, tokens=4)
    cfg = make_config(tmp_path, [ep(sim, "bad", api="openai")], alerts={"apprise_urls_env": ["TEST_HOOK_URL"]})

    def run():
        return asyncio.run(daily_health(config_path=cfg, chain_runbook=False, allow_restart=False))

    sim.set_fault("http_500")
    r1 = run()
    assert r1.status == "degraded" and r1.alerts[0].status == "sent"
    sim.set_fault(None)
    r2 = run()
    r3 = run()
    assert r2.status == "ok" and r3.status == "ok" and r3.alerts == []
    texts = [json.dumps(m) for m in slack.messages]
    assert len(texts) == 2 and "endpoint_up on bad alert" in texts[0]
    assert "RESOLVED (daily health): endpoint_up on bad" in texts[1] and "is ok again" in texts[1]
    assert [p["type"] for p in hook.posts] == ["failure", "success"]
    assert hook.posts[1]["title"].startswith("RESOLVED (daily health): endpoint_up on bad")


@pytest.mark.prefect
def test_failed_scheduled_restart_is_announced(prefect_harness, sim_factory, both, tmp_path):
    import asyncio
    import json

    from flows.scheduled_restart import scheduled_restart
    from tests.test_daily_health import ep, make_config

    slack, hook = both
    sim = sim_factory()
    cfg = make_config(tmp_path, [ep(sim, "prod")], restart={"dry_run": False, "command": ["false"]},
                      alerts={"apprise_urls_env": ["TEST_HOOK_URL"]})  # fmt: skip
    r = asyncio.run(scheduled_restart(config_path=cfg))
    assert r.status == "degraded" and r.actions[0].decision == "failed"
    assert r.alert is not None and r.alert.status == "sent"
    (msg,) = slack.messages
    assert "Scheduled restart failed on prod" in json.dumps(msg) and "exit 1" in json.dumps(msg)
    assert [p["title"] for p in hook.posts] == ["Scheduled restart failed on prod"]
    # a dry run is not a failure: nothing more is sent
    cfg2 = make_config(tmp_path, [ep(sim, "prod")], alerts={"apprise_urls_env": ["TEST_HOOK_URL"]})
    assert asyncio.run(scheduled_restart(config_path=cfg2)).alert is None and len(hook.posts) == 1
