import pytest

from llm_upkeep.alerts import build_message, fingerprint, post_to_slack, send_alert
from llm_upkeep.checks import CheckResult, Status
from llm_upkeep.config import AlertsConfig
from llm_upkeep.sim.slack_sink import SlackSink


@pytest.fixture
def sink():
    with SlackSink() as s:
        yield s


def ttft_alert(value=12.5):
    return CheckResult(check="ttft", target="ollama-a", status=Status.ALERT, value=value, unit="s", threshold=10.0)


def test_webhook_delivery_with_runbook_hint(sink, tmp_path, monkeypatch):
    monkeypatch.setenv("HOOK", sink.webhook_url)
    cfg = AlertsConfig(slack_webhook_url_env="HOOK")
    d = send_alert(cfg, tmp_path, "LLM health degraded", [ttft_alert()])
    assert d.status == "sent"
    (msg,) = sink.messages
    body = msg["blocks"][1]["text"]["text"]
    assert "ttft" in body and "12.5 s" in body and "Memory leak" in body and "Restart" in body


def test_repeat_suppressed_then_sent_after_window(sink, tmp_path, monkeypatch):
    monkeypatch.setenv("HOOK", sink.webhook_url)
    cfg = AlertsConfig(slack_webhook_url_env="HOOK")
    assert send_alert(cfg, tmp_path, "t", [ttft_alert(12.0)], now=1000.0).status == "sent"
    # same failing check, different value: the same alert
    assert send_alert(cfg, tmp_path, "t", [ttft_alert(13.0)], now=1100.0).status == "suppressed"
    assert send_alert(cfg, tmp_path, "t", [ttft_alert(13.0)], now=1000.0 + 3601).status == "sent"
    assert len(sink.messages) == 2


def test_bot_token_and_channel(sink, tmp_path, monkeypatch):
    monkeypatch.setenv("TOK", "xoxb-test-token-1234567")
    cfg = AlertsConfig(slack_token_env="TOK", slack_channel="#ops", slack_base_url=sink.api_url)
    d = post_to_slack(cfg, "hello", None)
    assert d.status == "sent" and d.ts
    assert sink.messages[0]["channel"] == "#ops"


def test_failed_delivery_is_reported_and_redacted(sink, tmp_path, monkeypatch):
    monkeypatch.setenv("HOOK", sink.webhook_url)
    sink.fail_with = 500
    cfg = AlertsConfig(slack_webhook_url_env="HOOK")
    d = send_alert(cfg, tmp_path, "t", [ttft_alert()])
    assert d.status == "failed" and "500" in d.error
    # not marked as sent: the next run tries again
    sink.fail_with = None
    assert send_alert(cfg, tmp_path, "t", [ttft_alert()]).status == "sent"


def test_unreachable_slack_is_failed_not_raised(tmp_path, monkeypatch):
    monkeypatch.setenv("HOOK", "http://127.0.0.1:9/services/T1/B1/supersecretpart")
    d = post_to_slack(AlertsConfig(slack_webhook_url_env="HOOK", timeout_s=2), "x")
    assert d.status == "failed"
    assert "supersecretpart" not in (d.error or "")


def test_api_error_reported(sink, monkeypatch):
    monkeypatch.setenv("TOK", "xoxb-test-token-1234567")
    sink.api_error = "channel_not_found"
    cfg = AlertsConfig(slack_token_env="TOK", slack_channel="#nope", slack_base_url=sink.api_url)
    d = post_to_slack(cfg, "x")
    assert d.status == "failed" and "channel_not_found" in d.error


def test_disabled_and_nothing_failing(tmp_path):
    assert send_alert(AlertsConfig(), tmp_path, "t", [ttft_alert()]).status == "disabled"
    ok = CheckResult(check="ttft", target="a", status=Status.OK, value=0.1)
    assert send_alert(AlertsConfig(), tmp_path, "t", [ok]).checks == []


def test_message_and_fingerprint():
    text, blocks = build_message("title", [ttft_alert()])
    assert "ttft on ollama-a alert" in text
    assert fingerprint("t", [ttft_alert(1)]) == fingerprint("t", [ttft_alert(2)])
    other = CheckResult(check="ttft", target="b", status=Status.ALERT, value=1.0)
    assert fingerprint("t", [ttft_alert()]) != fingerprint("t", [other])
