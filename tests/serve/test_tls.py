"""HTTPS with ``serve.tls``: a certificate the test makes with openssl, a real server, real
TLS handshakes; a wrong path fails at start in one line."""

from __future__ import annotations

import os
import re
import shutil
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import subprocess_env
from tests.serve.conftest import start_server


def _certificate(folder: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        if os.environ.get("DNNOPS_REQUIRE_ALL_TESTS") == "1":
            pytest.fail("openssl is required here (Debian package openssl)")
        pytest.skip("openssl not installed; apt-get install openssl to run the TLS tests")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def test_the_server_answers_over_https_only(trained_home: Path, tmp_path: Path) -> None:
    cert, _ = _certificate(tmp_path)
    config = tmp_path / "dnnops.yaml"
    config.write_text(  # relative paths: read from the project file's folder
        "name: digits\ndata: {source: builtin:digits}\n"
        "serve: {tls: {certfile: cert.pem, keyfile: key.pem}}\n"
    )
    trusted = ssl.create_default_context(cafile=str(cert))
    server = start_server(trained_home, "-c", str(config), verify=trusted)
    try:
        assert server.url.startswith("https://127.0.0.1:")
        row = [0.0] * 64
        with httpx.Client(base_url=server.url, verify=trusted, timeout=30) as http:
            answer = http.post("/v1/models/digits:predict", json={"instances": [row]})
            assert answer.status_code == 200, answer.text
            assert len(answer.json()["predictions"]) == 1
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{server.url}/v2/health/ready")  # a client that does not trust it
        plain = server.url.replace("https://", "http://")
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{plain}/v2/health/ready", timeout=5)  # no plain HTTP beside it
        with httpx.Client(verify=trusted) as http:
            assert http.get(f"{server.url}/v2/health/live").status_code == 200
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("tls", "message"),
    [
        ("{certfile: missing.pem, keyfile: key.pem}", "serve.tls.certfile: cannot read"),
        ("{certfile: dnnops.yaml, keyfile: key.pem}", "serve.tls.certfile: .* is not a PEM"),
        ("{certfile: cert.pem}", "needs both certfile and keyfile"),
    ],
)
def test_a_wrong_tls_setting_fails_at_start_in_one_line(
    trained_home: Path, tmp_path: Path, tls: str, message: str
) -> None:
    _certificate(tmp_path)
    config = tmp_path / "dnnops.yaml"
    config.write_text(f"name: digits\ndata: {{source: builtin:digits}}\nserve: {{tls: {tls}}}\n")
    done = subprocess.run(
        [sys.executable, "-m", "dnnops", "serve", "--port", "0", "-c", str(config)],
        env=subprocess_env(trained_home),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr + done.stdout
    assert re.search(message, done.stderr + done.stdout), done.stderr
