"""`borderledger serve` (api/cli.py): TLS, several workers on one port, graceful SIGTERM."""

from __future__ import annotations

import datetime
import ipaddress
import signal
import ssl
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from api.cli import serve
from chain.node import LocalNode
from ledger.errors import InvalidInput
from tests.api.test_jobs import Served, deployment
from tests.stack import GTIN


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = directory / "cert.pem", directory / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return certfile, keyfile


def test_serve_tls_and_graceful_sigterm(anvil: LocalNode, tmp_path: Path) -> None:
    certfile, keyfile = _self_signed(tmp_path)
    trust = ssl.create_default_context(cafile=str(certfile))
    with deployment(anvil, "sqlite", tmp_path) as dep:
        served = Served(dep.env, tmp_path, extra=("--cert", str(certfile), "--key", str(keyfile)))
        try:
            served.start()
            url = f"https://127.0.0.1:{served.port}"
            with httpx.Client(base_url=url, verify=trust, timeout=120) as client:
                assert client.get("/healthz").status_code == 200
                admin = {"Authorization": f"Bearer {dep.admin_key}"}
                holder = client.post(
                    "/v1/organizations",
                    json={"name": "Acme", "role": "rights_holder", "recordation": "R1"},
                    headers=admin,
                ).json()
                bound = client.post(
                    "/v1/gtin-bindings",
                    json={"gtin": GTIN, "organizationId": holder["id"]},
                    headers=admin,
                )
                assert bound.status_code == 202, bound.text
            # plain HTTP is not served on a TLS port
            with pytest.raises(httpx.HTTPError):
                httpx.get(f"http://127.0.0.1:{served.port}/healthz", timeout=5)

            # SIGTERM while an enrollment is in flight: it is answered, then the server exits 0
            answer: dict[str, Any] = {}

            def enroll() -> None:
                with httpx.Client(base_url=url, verify=trust, timeout=120) as client:
                    r = client.post(
                        "/v1/batches",
                        json={
                            "gtin": GTIN,
                            "lot": "INFLIGHT",
                            "serials": [f"F{i:06d}" for i in range(19_000)],
                        },
                        headers={"Authorization": f"Bearer {holder['apiKey']}"},
                    )
                    answer["status"], answer["body"] = r.status_code, r.json()

            request = threading.Thread(target=enroll)
            request.start()
            time.sleep(0.5)  # the request is being handled
            assert served.process is not None and not answer, answer
            served.process.send_signal(signal.SIGTERM)
            request.join(120)
            assert answer.get("status") == 201, answer
            assert answer["body"]["count"] == 19_000
            assert served.terminate_wait() == 0, served.log()
            with pytest.raises(httpx.ConnectError):
                httpx.get(f"{url}/healthz", verify=trust, timeout=5)
        finally:
            served.close()


def test_serve_refuses_half_a_tls_setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BORDERLEDGER_REGISTRY", "0x" + "11" * 20)
    certfile, _ = _self_signed(tmp_path)
    with pytest.raises(InvalidInput, match="both --certfile and --keyfile"):
        serve(certfile=certfile)
    with pytest.raises(InvalidInput, match="no such file"):
        serve(certfile=certfile, keyfile=tmp_path / "missing.pem")
    monkeypatch.delenv("BORDERLEDGER_REGISTRY")
    with pytest.raises(InvalidInput, match="BORDERLEDGER_REGISTRY"):
        serve()
