"""The process's own HTTP clients share one verifying TLS context per CA bundle version
(llm_upkeep/clients/tls.py): built once, re-read when the bundle changes, honouring SSL_CERT_FILE
as httpx does, and cheaper than a context per client (measured in the same process)."""

from __future__ import annotations

from pathlib import Path

from tests.ca_bundles import run_tls_probe

ROOT = Path(__file__).resolve().parent.parent

PROBE = r"""
import json, os, sys, time
import certifi, httpx
import llm_upkeep.clients.tls as tls
from llm_upkeep.clients.base import make_http_client

def facts(c):
    x = c._transport._pool._ssl_context
    return {"id": id(x), "verify": int(x.verify_mode), "cas": x.cert_store_stats()["x509_ca"]}

t = time.process_time(); bare = [httpx.AsyncClient() for _ in range(5)]; bare_cpu = time.process_time() - t
t = time.process_time(); shared = [make_http_client() for _ in range(5)]; shared_cpu = time.process_time() - t
certifi_cas = facts(bare[0])["cas"]
os.environ["SSL_CERT_FILE"] = sys.argv[1]
own = facts(make_http_client())
own_again = facts(make_http_client())
untrusting = facts(make_http_client(trust_env=False))
with open(sys.argv[1], "a") as f:  # the bundle rotated: a second CA appended
    f.write(sys.argv[2])
rotated = facts(make_http_client())
insecure = facts(make_http_client(verify=False))
print(json.dumps({"bare": [facts(c) for c in bare], "shared": [facts(c) for c in shared], "own": own,
                  "own_again": own_again, "untrusting": untrusting, "rotated": rotated, "insecure": insecure,
                  "certifi_cas": certifi_cas, "built": tls.built, "bare_cpu": bare_cpu, "shared_cpu": shared_cpu}))
"""


def test_own_clients_share_one_context_per_bundle_version(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)}
    r = run_tls_probe(PROBE, tmp_path, env, ROOT)
    assert len({f["id"] for f in r["bare"]}) == 5, "httpx alone builds one context per client"
    assert len({f["id"] for f in r["shared"]}) == 1, "make_http_client shares one"
    assert r["shared"][0]["verify"] == 2 and r["shared"][0]["cas"] == r["certifi_cas"]  # CERT_REQUIRED, certifi
    assert r["own"]["cas"] == 1 and r["own"]["id"] != r["shared"][0]["id"], "SSL_CERT_FILE honoured, as httpx does"
    assert r["own_again"] == r["own"]
    assert r["untrusting"]["id"] == r["shared"][0]["id"], "trust_env=False ignores SSL_CERT_FILE: certifi's"
    assert r["rotated"]["cas"] == 2 and r["rotated"]["id"] != r["own"]["id"], "a rotated bundle is re-read"
    assert r["insecure"]["verify"] == 0, "verify=False is never the shared verifying context"
    assert r["built"] == 3  # certifi's, the bundle, the bundle rotated
    assert r["shared_cpu"] < r["bare_cpu"] / 2, r
