"""CA bundles for the TLS-sharing tests: the first certificates of certifi's bundle, one PEM each."""

from __future__ import annotations

from pathlib import Path


def certifi_cas(n: int) -> list[str]:
    """The first n certificates of certifi's bundle, each a PEM block ending in a newline."""
    import certifi

    pem, end, out, at = Path(certifi.where()).read_text(), "-----END CERTIFICATE-----", [], 0
    for _ in range(n):
        stop = pem.index(end, at) + len(end)
        out.append(pem[at:stop].strip() + "\n")
        at = stop
    return out


def run_tls_probe(script: str, tmp_path: Path, env: dict[str, str], cwd: Path) -> dict:
    """Run a TLS-sharing probe script in a fresh interpreter, as `python -c script BUNDLE CA2`:
    BUNDLE a file holding certifi's first CA (the script may append CA2 to it, a rotation);
    returns the JSON object its last output line holds."""
    import json
    import subprocess
    import sys

    first, second = certifi_cas(2)
    bundle = tmp_path / "one-ca.pem"
    bundle.write_text(first)
    out = subprocess.run([sys.executable, "-c", script, str(bundle), second], env=env, capture_output=True,
                         text=True, timeout=120, cwd=cwd)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.splitlines()[-1])
