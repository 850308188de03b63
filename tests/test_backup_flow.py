"""The monthly-backup and restore-drill flows on a Prefect test server, against moto S3."""

from __future__ import annotations

import json
import threading

import pytest

from llm_upkeep.backup import localdb
from tests.backup_helpers import backup_config, make_tree, write_toml

pytestmark = pytest.mark.prefect


@pytest.fixture(autouse=True)
def _trust_fresh_cache(monkeypatch):
    monkeypatch.setattr(localdb, "RACY_NS", 0)


def _artifacts(flow_run_id, key_prefix: str = "") -> dict[str, object]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {a.key: a for a in arts if a.key and a.key.startswith(key_prefix)}


def _conf(tmp_path, moto_s3, s3_env, n=20, alerts=None, **kw):
    src = make_tree(tmp_path / "src" / "models", n=n)
    cfg = backup_config(moto_s3, moto_s3.new_bucket(), s3_env, {"weights": [str(src)]}, **kw)
    return src, cfg, str(write_toml(tmp_path / "c.toml", cfg, tmp_path / "state", alerts))


@pytest.fixture
def slack(monkeypatch):
    from llm_upkeep.sim.slack_sink import SlackSink

    with SlackSink() as sink:
        monkeypatch.setenv("BACKUP_TEST_HOOK", sink.webhook_url)
        yield sink


def test_monthly_backup_flow_reports_and_second_run_sends_nothing(prefect_harness, tmp_path, moto_s3, s3_env):
    from flows.monthly_backup import monthly_backup

    _, cfg, conf = _conf(tmp_path, moto_s3, s3_env, keep_snapshots=1)
    state = monthly_backup(config_path=conf, return_state=True)
    assert state.is_completed()
    first = state.result()
    assert first.files == 20 and first.uploaded_objects > 0
    arts = _artifacts(state.state_details.flow_run_id)
    assert {"backup-summary", "backup-hash-progress", "backup-upload-progress"} <= set(arts)
    summary = arts["backup-summary"].data
    assert first.snapshot in summary and "| Files | 20 " in summary and "Upload throughput" in summary
    assert arts["backup-upload-progress"].data == 100.0

    state2 = monthly_backup(config_path=conf, return_state=True)
    second = state2.result()
    assert second.uploaded_objects == 0 and second.reused_objects == first.uploaded_objects
    arts2 = _artifacts(state2.state_details.flow_run_id)
    assert arts2["backup-hash-progress"].data == 100.0 and arts2["backup-upload-progress"].data == 100.0
    client = moto_s3.client()
    snaps = client.list_objects_v2(Bucket=cfg.bucket, Prefix="llm-backup/snapshots/")["Contents"]
    assert [s["Key"] for s in snaps] == [f"llm-backup/snapshots/{second.snapshot}.json"]  # keep_snapshots=1


def test_upload_task_retry_resumes_after_the_server_comes_back(
    prefect_harness, tmp_path, killable_s3, s3_env, monkeypatch
):
    import flows.monthly_backup as mb

    src = make_tree(tmp_path / "src" / "models", n=10)
    for i in range(30):
        (src / f"unique-{i}.bin").write_bytes(bytes([i]) * (2000 + i))
    cfg = backup_config(
        killable_s3, killable_s3.new_bucket(), s3_env, {"weights": [str(src)]},
        max_concurrency=2, connect_timeout_s=1,
    )  # fmt: skip
    conf = str(write_toml(tmp_path / "c.toml", cfg, tmp_path / "state"))
    monkeypatch.setattr(mb, "upload_objects_task", mb.upload_objects_task.with_options(retry_delay_seconds=1))
    from llm_upkeep.backup.store import S3Store

    arrived_before_kill: set[str] = set()
    puts_after_kill: list[str] = []
    killed = threading.Event()
    real_init = S3Store.__init__

    def init(self, cfg):
        real_init(self, cfg)

        def count_put(params, **_):
            if killed.is_set():
                puts_after_kill.append(params["Key"].rsplit("/", 1)[1])

        def arrived(http_response, context, **_):
            key = context.get("llm_upkeep_key") or ""
            if "/objects/" in key and http_response.status_code == 200 and not killed.is_set():
                arrived_before_kill.add(key.rsplit("/", 1)[1])
                if len(arrived_before_kill) == 5:
                    killed.set()
                    killable_s3.kill()
                    threading.Timer(1.5, killable_s3.restart).start()

        self.client.meta.events.register("before-parameter-build.s3.PutObject", count_put)
        self.client.meta.events.register("after-call.s3.PutObject", arrived)

    monkeypatch.setattr(S3Store, "__init__", init)
    result = mb.monthly_backup(config_path=conf)
    assert killed.is_set() and result.files == 40
    assert puts_after_kill  # the retry did upload the rest...
    assert not set(puts_after_kill) & arrived_before_kill  # ...but nothing that had arrived
    assert result.reused_objects >= 5
    client = killable_s3.client()
    present = client.list_objects_v2(Bucket=cfg.bucket, Prefix="llm-backup/objects/")["KeyCount"]
    assert result.uploaded_objects + result.reused_objects == present


def test_restore_drill_flow_passes_then_catches_a_corrupt_object(
    prefect_harness, tmp_path, moto_s3, s3_env, slack
):
    from flows.monthly_backup import monthly_backup
    from flows.restore_drill import restore_drill

    alerts = {"slack_webhook_url_env": "BACKUP_TEST_HOOK"}
    _, cfg, conf = _conf(tmp_path, moto_s3, s3_env, n=12, alerts=alerts, drill_sample_files=50)
    monthly_backup(config_path=conf)
    drill = restore_drill(config_path=conf)
    assert drill.ok and drill.sampled == 12 and drill.restored == 12 and drill.matched_source == 12

    client = moto_s3.client()
    objs = client.list_objects_v2(Bucket=cfg.bucket, Prefix="llm-backup/objects/")["Contents"]
    victim = max(objs, key=lambda o: o["Size"])
    client.put_object(Bucket=cfg.bucket, Key=victim["Key"], Body=b"\0" * victim["Size"])
    state = restore_drill(config_path=conf, return_state=True)
    assert state.is_failed()
    md = _artifacts(state.state_details.flow_run_id)["restore-drill-summary"].data
    assert "FAILED" in md and "content_mismatch" in md
    (msg,) = slack.messages  # the passing drill sent nothing
    assert "Restore drill FAILED" in msg["text"] and "restore_drill" in json.dumps(msg["blocks"])


def test_monthly_backup_refuses_to_run_twice_at_once(prefect_harness, tmp_path, moto_s3, s3_env, slack):
    from flows.monthly_backup import monthly_backup
    from llm_upkeep.backup.leases import LocalLock

    _, _, conf = _conf(tmp_path, moto_s3, s3_env, n=3, alerts={"slack_webhook_url_env": "BACKUP_TEST_HOOK"})
    with LocalLock(tmp_path / "state" / "backup" / "backup.lock", "backup"):
        state = monthly_backup(config_path=conf, return_state=True)
    assert state.is_failed() and "another backup is running" in state.message
    (msg,) = slack.messages
    assert "Monthly backup FAILED" in msg["text"] and "another backup is running" in json.dumps(msg["blocks"])
