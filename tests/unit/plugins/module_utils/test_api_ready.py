"""Unit tests of module_utils/api_ready.py and the api_server_ready module's probe.

The wait runs on a fake clock; the probe is tested against a real TLS server on
127.0.0.1 whose certificate (made here) carries only the name ``kubernetes``.
"""

from __future__ import annotations

import datetime
import http.server
import ssl
import threading
from pathlib import Path

import pytest

from ansible_collections.ecoeco.gitops.plugins.module_utils import api_ready
from ansible_collections.ecoeco.gitops.plugins.module_utils.errors import ModuleFailure, ValidationError
from ansible_collections.ecoeco.gitops.plugins.modules import api_server_ready

URL = "https://127.0.0.1:6443/readyz"
NOT_SYNCED = "[+]ping ok\n[-]informer-sync failed: reason withheld\n[-]poststarthook/rbac/bootstrap-roles failed\n"


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def answers(clock: Clock, script):
    """A probe that answers by the clock: ``script`` is [(until_second, status, body), ...]."""
    calls = []

    def probe():
        t = clock.now - 100.0
        calls.append(t)
        for until, status, body in script:
            if t < until:
                return status, body
        return 200, "ok"
    probe.calls = calls
    return probe


def test_ready_for_the_settle_period_returns():
    clock = Clock()
    probe = answers(clock, [(3, 0, "connection refused")])
    result = api_ready.wait_settled(probe, URL, timeout=60, settle=10, clock=clock, sleep=clock.sleep)
    assert result == {"seconds": 13.0, "interruptions": []}


def test_a_restart_inside_the_settle_period_starts_it_again():
    clock = Clock()
    # ready at once, then the kubelet restarts the API server: refused, then 403-time (caches not synced).
    probe = answers(clock, [(2, 200, "ok"), (4, 0, "connection refused"), (7, 500, NOT_SYNCED)])
    result = api_ready.wait_settled(probe, URL, timeout=60, settle=10, clock=clock, sleep=clock.sleep)
    assert result["seconds"] == 17.0
    assert result["interruptions"] == ["after 2.0s: no answer (connection refused)"]


def test_timeout_names_the_url_and_the_failing_checks():
    clock = Clock()
    probe = answers(clock, [(1000, 500, NOT_SYNCED)])
    with pytest.raises(ModuleFailure) as failed:
        api_ready.wait_settled(probe, URL, timeout=30, settle=5, clock=clock, sleep=clock.sleep)
    assert str(failed.value) == (f"{URL} did not stay ready for 5s within 30s: HTTP 500, failing checks: "
                                 "informer-sync, poststarthook/rbac/bootstrap-roles")
    assert failed.value.result["seconds"] == 30.0
    assert len(probe.calls) == 31  # bounded: one request a second, none after the deadline


def test_timeout_while_ready_but_not_for_long_enough():
    clock = Clock()
    probe = answers(clock, [(25, 0, "connection refused")])
    with pytest.raises(ModuleFailure, match="answered 200 but not for long enough"):
        api_ready.wait_settled(probe, URL, timeout=30, settle=10, clock=clock, sleep=clock.sleep)


def test_zero_settle_is_the_first_200():
    clock = Clock()
    probe = answers(clock, [(2, 503, "[-]etcd failed\n")])
    assert api_ready.wait_settled(probe, URL, timeout=30, settle=0, clock=clock, sleep=clock.sleep)["seconds"] == 2.0


@pytest.mark.parametrize("timeout, settle, interval, option", [
    (0, 0, 1, "timeout"), (30, -1, 1, "settle"), (30, 30, 1, "settle (30s) must be shorter than timeout"),
    (30, 5, 0, "interval"),
])
def test_options_that_cannot_bound_the_wait_are_refused(timeout, settle, interval, option):
    with pytest.raises(ValidationError, match=option.replace("(", r"\(").replace(")", r"\)")):
        api_ready.validate(timeout, settle, interval)


# ---- the module's probe against a real TLS server ------------------------------------------------

def _certificates(tmp: Path) -> tuple[Path, Path, Path]:
    from cryptography import x509  # pylint: disable=import-outside-toplevel
    from cryptography.hazmat.primitives import hashes, serialization  # pylint: disable=import-outside-toplevel
    from cryptography.hazmat.primitives.asymmetric import ec  # pylint: disable=import-outside-toplevel
    from cryptography.x509.oid import NameOID  # pylint: disable=import-outside-toplevel

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes-ca")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(hours=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")])
    cert = (x509.CertificateBuilder().subject_name(subject)
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(2).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("kubernetes")]), critical=False)
            # Python 3.13's default context verifies strictly (VERIFY_X509_STRICT), as kubeadm's certificates
            # allow: the leaf names its issuer's key.
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    paths = tmp / "ca.crt", tmp / "apiserver.crt", tmp / "apiserver.key"
    paths[0].write_bytes(ca.public_bytes(pem))
    paths[1].write_bytes(cert.public_bytes(pem))
    paths[2].write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return paths


@pytest.fixture
def readyz_server(tmp_path):
    ca, cert, key = _certificates(tmp_path)
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            seen.append(self.path)
            body = NOT_SYNCED.encode() if len(seen) == 1 else b"[+]ping ok\nreadyz check passed\n"
            self.send_response(500 if len(seen) == 1 else 200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}/readyz", ca, seen
    server.shutdown()
    server.server_close()


def test_probe_verifies_the_certificate_for_the_server_name(readyz_server):
    url, ca, seen = readyz_server
    probe = api_server_ready.make_probe(url, str(ca), "kubernetes")
    status, body = probe()
    assert (status, api_ready.failing_checks(body)) == (500, ["informer-sync", "poststarthook/rbac/bootstrap-roles"])
    assert probe()[0] == 200
    assert seen == ["/readyz?verbose", "/readyz?verbose"]


def test_probe_refuses_a_certificate_without_the_name(readyz_server):
    url, ca = readyz_server[:2]
    with pytest.raises(ModuleFailure, match="does not verify against .* for the name 127.0.0.1"):
        api_server_ready.make_probe(url, str(ca), "127.0.0.1")()


def test_probe_reports_nothing_answering(tmp_path, readyz_server):
    ca = readyz_server[1]
    status, why = api_server_ready.make_probe("https://127.0.0.1:1/readyz", str(ca), "kubernetes")()
    assert status == 0 and why


@pytest.mark.parametrize("url, ca, message", [
    ("http://127.0.0.1:6443/readyz", None, "url must be an https URL"),
    (URL, "/nonexistent/ca.crt", "ca_path /nonexistent/ca.crt: cannot read"),
])
def test_probe_options_are_checked(readyz_server, url, ca, message):
    with pytest.raises(ValidationError, match=message):
        api_server_ready.make_probe(url, ca or str(readyz_server[1]), "kubernetes")
