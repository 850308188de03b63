"""The S3 error kinds docs/backup.md promises, each from a real S3 API (moto) refusing for real:
a bucket that does not exist, an IAM policy that denies the upload, and no credentials at all.
Each ends as the CLI's one JSON error object and exit 1, never a traceback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import boto3
import pytest
from botocore.config import Config

from llm_upkeep.backup.cli import main
from tests.backup_helpers import backup_config, make_tree, write_toml

KEY_ENV, SECRET_ENV = "LLM_UPKEEP_TEST_IAM_KEY", "LLM_UPKEEP_TEST_IAM_SECRET"


def run_cli(capsys, *argv: str) -> tuple[int, dict, str]:
    rc = main([*argv, "--json"])
    out, err = capsys.readouterr()
    return rc, json.loads(out), err


def test_a_missing_bucket_is_no_such_bucket(tmp_path, capsys, moto_s3, s3_env):
    src = make_tree(tmp_path / "src", n=3)
    cfg = backup_config(moto_s3, "bkt-never-created", s3_env, {"w": [str(src)]})
    conf = write_toml(tmp_path / "c.toml", cfg, tmp_path / "state")
    for argv in (["backup", "run"], ["backup", "list"]):
        rc, doc, err = run_cli(capsys, *argv, "--config", str(conf))
        assert rc == 1 and doc["error"] == "no_such_bucket", (argv, doc)
        assert "bkt-never-created" in doc["message"] and "Traceback" not in err


def test_no_credentials_anywhere_is_no_credentials(tmp_path, capsys, moto_s3, monkeypatch):
    for k in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    src = make_tree(tmp_path / "src", n=3)
    cfg = backup_config(moto_s3, moto_s3.new_bucket(), {}, {"w": [str(src)]})  # no key env names
    conf = write_toml(tmp_path / "c.toml", cfg, tmp_path / "state")
    rc, doc, err = run_cli(capsys, "backup", "run", "--config", str(conf))
    assert rc == 1 and doc["error"] == "no_credentials", doc
    assert "Traceback" not in err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def iam_s3():
    """A moto server of its own that checks IAM after the first SETUP_CALLS requests (moto's
    INITIAL_NO_AUTH_ACTION_COUNT): a bucket, a user, the user's key and its policy are made
    while it trusts everyone; from then on every request is signed and authorized."""
    setup_calls = 4
    port = _free_port()
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(setup_calls)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise AssertionError("moto server with IAM checks did not start") from None
                time.sleep(0.1)
        kw = dict(endpoint_url=url, region_name="us-east-1", aws_access_key_id="setup",
                  aws_secret_access_key="setup", config=Config(retries={"max_attempts": 1}))  # fmt: skip
        s3, iam = boto3.client("s3", **kw), boto3.client("iam", **kw)
        s3.create_bucket(Bucket="bkt-iam")  # 1
        iam.create_user(UserName="backup")  # 2
        key = iam.create_access_key(UserName="backup")["AccessKey"]  # 3
        policy = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::bkt-iam/*"},
        ]}  # fmt: skip
        iam.put_user_policy(UserName="backup", PolicyName="no-writes", PolicyDocument=json.dumps(policy))  # 4
        yield type("IamS3", (), {"endpoint_url": url, "key": key})
    finally:
        proc.terminate()
        proc.wait(10)


def test_an_iam_policy_that_denies_the_upload_is_access_denied(tmp_path, capsys, iam_s3, monkeypatch):
    monkeypatch.setenv(KEY_ENV, iam_s3.key["AccessKeyId"])
    monkeypatch.setenv(SECRET_ENV, iam_s3.key["SecretAccessKey"])
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    src = make_tree(tmp_path / "src", n=3)
    env = {"access_key_id_env": KEY_ENV, "secret_access_key_env": SECRET_ENV}
    cfg = backup_config(iam_s3, "bkt-iam", env, {"w": [str(src)]})
    conf = write_toml(tmp_path / "c.toml", cfg, tmp_path / "state")
    # Reading is allowed: the store answers as an empty one, so the check is the policy, not the key.
    rc, listing = main(["backup", "list", "--json", "--config", str(conf)]), capsys.readouterr().out
    assert rc == 0 and json.loads(listing) == [], listing
    rc, doc, err = run_cli(capsys, "backup", "run", "--config", str(conf))
    assert rc == 1 and doc["error"] == "access_denied", doc
    assert "AccessDenied" in doc["message"] and "Traceback" not in err
    assert iam_s3.key["SecretAccessKey"] not in doc["message"] + err
    # A key the server does not know is refused the same way, already at the bucket check.
    monkeypatch.setenv(KEY_ENV, "AKIANOTAREALKEY00000")
    rc, doc, _ = run_cli(capsys, "backup", "list", "--config", str(conf))
    assert rc == 1 and doc["error"] == "access_denied", doc
