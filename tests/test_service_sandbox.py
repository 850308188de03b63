"""A promotion and a backup the way the systemd unit runs them: an unprivileged user, the config
directory read-only, only the state directory and the model directory writable.

Each command runs in a private mount namespace (``unshare -m``, as root, as in CI) where the
config directory is bind-mounted read-only (``ProtectSystem=strict`` keeps /etc read-only for
the unit), then drops to ``nobody`` with ``runuser`` and ``umask 077`` (the unit's ``UMask=``).
The checkout and the environment are bind-mounted at a world-readable path first, so the test
does not depend on where CI keeps them. Before this issue, ``models pin`` and every promotion
wrote models.lock next to the config file and failed here.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from llm_upkeep.sim.llm_server import SimBehavior, SimServer
from tests.backup_helpers import make_tree
from tests.s3_fixtures import ACCESS_ENV, SECRET_ENV

ROOT = Path(__file__).resolve().parent.parent
USER = "nobody"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not (shutil.which("unshare") and shutil.which("runuser")),
    reason="needs root, unshare and runuser (as in CI)",
)

# $1 config dir, $2 checkout, $3 its mount point, $4 environment prefix, $5 its mount point,
# $6 an ancestor of the base interpreter that others cannot enter ("-": none), $7 the base
# interpreter's prefix, $8 a mount point for it; then the command.
SANDBOX = r"""
set -e
mount --bind -o ro "$1" "$1"
if touch "$1/.rw-probe" 2>/dev/null; then echo "config dir is writable: the sandbox failed" >&2; exit 99; fi
mount --bind "$2" "$3"
mount --bind "$4" "$5"
if [ "$6" != - ]; then
  mount --bind "$7" "$8"; mount -t tmpfs -o mode=0755 tmpfs "$6"; mkdir -p "$7"; mount --bind "$8" "$7"
fi
shift 8
exec runuser -u nobody -- sh -c 'umask 077; exec "$@"' sh "$@"
"""


def closed_ancestor(p: Path) -> str:
    """The first directory above p that other users cannot enter (e.g. /root for a pyenv Python)."""
    for a in reversed(p.parents):
        if a != Path("/") and not os.stat(a).st_mode & stat.S_IXOTH:
            return str(a)
    return "-"


@pytest.fixture
def host():
    """A world-traversable scratch 'host': /etc-like config dir, /var/lib-like state, /srv-like models."""
    base = Path(tempfile.mkdtemp(prefix="llm-upkeep-sandbox-", dir="/tmp"))
    os.chmod(base, 0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def chown_tree(p: Path, uid: int, gid: int) -> None:
    for dirpath, dirs, files in os.walk(p):
        for n in [dirpath, *(os.path.join(dirpath, x) for x in dirs + files)]:
            os.lchown(n, uid, gid)


def test_promotion_and_backup_as_unprivileged_user_with_read_only_config(host, moto_s3):
    nobody = pwd.getpwnam(USER)
    conf, state, models, data, app, env_mnt, base_mnt = (
        host / d for d in ("etc", "state", "models", "data", "app", "venv", "base")
    )
    for d in (conf, state, models, data, app, env_mnt, base_mnt):
        d.mkdir()
    versions = models / "versions"
    versions.mkdir()
    (versions / "v1.gguf").write_bytes(b"GGUF-one" * 4096)
    (versions / "v2.gguf").write_bytes(b"GGUF-two" * 4096)
    (models / "active.gguf").symlink_to(versions / "v1.gguf")
    chown_tree(models, nobody.pw_uid, nobody.pw_gid)
    os.chown(state, nobody.pw_uid, nobody.pw_gid)
    os.chmod(state, 0o700)
    make_tree(data, n=30)
    bucket = moto_s3.new_bucket()
    sim = SimServer(SimBehavior(model="tiny", ttft_s=0.01, itl_s=0.001, tokens=4)).start()
    try:
        cfg = conf / "llm-upkeep.toml"
        cfg.write_text(
            f'state_dir = "{state}"\n'
            f'[[endpoints]]\nname = "prod"\napi = "openai"\nurl = "{sim.url}"\nmodel = "tiny"\ntimeout_s = 10.0\n'
            "[models]\nprobe_timeout_s = 10.0\nprobe_interval_s = 0.05\n"
            f'[[models.endpoints]]\nendpoint = "prod"\nversions_dir = "{versions}"\n'
            f'active_link = "{models / "active.gguf"}"\nrestart_command = ["touch", "{models / "restarted"}"]\n'
            f'[backup]\nbucket = "{bucket}"\nendpoint_url = "{moto_s3.endpoint_url}"\nregion = "us-east-1"\n'
            f'addressing_style = "path"\naccess_key_id_env = "{ACCESS_ENV}"\nsecret_access_key_env = "{SECRET_ENV}"\n'
            "connect_timeout_s = 2\nread_timeout_s = 10\nmax_attempts = 2\n"
            f'[[backup.sets]]\nname = "data"\npaths = ["{data}"]\n'
            f'[[backup.sets]]\nname = "config"\npaths = ["{conf}"]\n'
        )
        os.chmod(conf, 0o755)
        os.chmod(cfg, 0o644)
        prefix = Path(sys.prefix)
        child_env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(state), "PYTHONPATH": str(app),
            "LLM_UPKEEP_CONFIG": str(cfg), ACCESS_ENV: "testing", SECRET_ENV: "testing",
            "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "AWS_EC2_METADATA_DISABLED": "true", "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1",
        }  # fmt: skip

        def as_service(*args: str) -> subprocess.CompletedProcess:
            base = Path(sys.base_prefix)
            cmd = ["unshare", "-m", "--", "sh", "-c", SANDBOX, "sh", str(conf), str(ROOT), str(app), str(prefix),
                   str(env_mnt), closed_ancestor(base), str(base), str(base_mnt), "env", "-i", *(f"{k}={v}" for k, v in child_env.items()),
                   str(env_mnt / "bin" / "python"), "-m", "llm_upkeep.cli", *args]  # fmt: skip
            return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=host)

        # Pins: written into the state directory, private to the service user.
        p = as_service("models", "pin", "--endpoint", "prod", "--json")
        assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-3000:]
        lock = state / "models.lock"
        st = lock.stat()
        assert st.st_uid == nobody.pw_uid and stat.S_IMODE(st.st_mode) == 0o600
        assert not (conf / "models.lock").exists()

        # Promotion: verify against the pin, swap the link, run the restart command, probe, record.
        p = as_service("models", "promote", "v2.gguf", "--endpoint", "prod", "--json")
        assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-3000:]
        res = json.loads(p.stdout)
        assert res["ok"] and res["restart"]["decision"] == "executed" and res["ready"]["ok"], res
        assert os.readlink(models / "active.gguf") == str(versions / "v2.gguf")
        assert (models / "restarted").stat().st_uid == nobody.pw_uid, "the restart command ran as the service user"
        assert (state / "models" / "prod").is_dir()

        # Backup: every file of both sets (the config included) in S3, manifest last.
        p = as_service("backup", "run", "--json")
        assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-3000:]
        out = json.loads(p.stdout)
        assert out["files"] == 31 and out["uploaded_objects"] > 0 and not out["skipped"], out
        snaps = moto_s3.client().list_objects_v2(Bucket=bucket, Prefix="llm-upkeep/snapshots/").get("Contents", [])
        assert [o["Key"] for o in snaps] == [f"llm-upkeep/snapshots/{out['snapshot']}.json"]
        p = as_service("backup", "verify", "latest", "--json")
        assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-3000:]
        # Nothing was written into the config directory.
        assert sorted(x.name for x in conf.iterdir()) == ["llm-upkeep.toml"]
    finally:
        sim.stop()
