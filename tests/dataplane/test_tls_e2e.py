"""End to end through the openstack CLI and real amphorae: Octavia's TLS-termination cookbook.

``openssl`` makes the certificates, ``openstack secret store`` puts the PKCS12 bundle into this
server's key manager, and the listener is created with the cookbook's own command line
(``$(openstack secret list | awk ...)``). Traffic: curl with ``--resolve`` and SNI through the
VIP (the default certificate, and an SNI certificate from a certificate container), and
``openssl s_client`` with and without a client certificate on a MANDATORY listener. Then the
default certificate is replaced under traffic (no request may fail) and the service logs are
searched for the private keys. Own networks (TOML); ``lbaas teardown`` at the end.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from l7_helpers import BIN, Server, leftovers, own_networks, skip_reason, start_server, stop_server

REASON = skip_reason() or (None if shutil.which("openssl") and shutil.which("curl")
                           else "needs openssl and curl")
pytestmark = pytest.mark.skipif(REASON is not None, reason=str(REASON))

CERTS = r"""
set -e
openssl req -x509 -newkey rsa:2048 -nodes -days 3 -subj "/CN=www.example.com" \
    -addext "subjectAltName=DNS:www.example.com" -keyout server.key -out server.crt
openssl pkcs12 -export -inkey server.key -in server.crt -passout pass: -out server.p12
openssl req -x509 -newkey rsa:2048 -nodes -days 3 -subj "/CN=www2.example.com" \
    -addext "subjectAltName=DNS:www2.example.com" -keyout www2.key -out www2.crt
openssl req -x509 -newkey rsa:2048 -nodes -days 3 -subj "/CN=new.example.com" \
    -addext "subjectAltName=DNS:www.example.com" -keyout new.key -out new.crt
openssl pkcs12 -export -inkey new.key -in new.crt -passout pass: -out new.p12
openssl req -x509 -newkey rsa:2048 -nodes -days 3 -subj "/CN=client CA" \
    -addext "basicConstraints=critical,CA:TRUE" -keyout ca.key -out ca.crt
cp ca.crt client_ca.pem
for c in client revoked; do
    openssl req -newkey rsa:2048 -nodes -subj "/CN=$c" -keyout $c.key -out $c.csr
    openssl x509 -req -in $c.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3 -out $c.crt
done
touch index.txt
echo 1000 > crlnumber
printf '[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\ncrlnumber = crlnumber\n' > ca.cnf
printf 'default_md = sha256\ndefault_crl_days = 3\n' >> ca.cnf
openssl ca -config ca.cnf -revoke revoked.crt -keyfile ca.key -cert ca.crt
openssl ca -config ca.cnf -gencrl -keyfile ca.key -cert ca.crt -out client_ca.crl
"""

# The cookbook's commands, verbatim but for the names of our own subnets.
COOKBOOK = r"""
set -e
openstack secret store --name='tls_secret1' -t 'application/octet-stream' -e 'base64' \
    --payload="$(base64 < server.p12)"
openstack loadbalancer create --name lb1 --vip-subnet-id "$PUB" --wait
openstack loadbalancer listener create --protocol-port 443 --protocol TERMINATED_HTTPS \
    --name listener1 \
    --default-tls-container=$(openstack secret list | awk '/ tls_secret1 / {print $2}') lb1
openstack loadbalancer pool create --name pool1 --lb-algorithm ROUND_ROBIN \
    --listener listener1 --protocol HTTP
openstack loadbalancer member create --subnet-id "$PRIV" --address "$WEB1" \
    --protocol-port 80 pool1
openstack loadbalancer member create --subnet-id "$PRIV" --address "$WEB2" \
    --protocol-port 80 pool1
"""

SNI_AND_MTLS = r"""
set -e
cert=$(openstack secret store --name www2_cert -t text/plain --payload "$(cat www2.crt)" \
    -f value -c 'Secret href')
key=$(openstack secret store --name www2_key -t text/plain --payload "$(cat www2.key)" \
    -f value -c 'Secret href')
container=$(openstack secret container create --name www2 --type certificate \
    --secret "certificate=$cert" --secret "private_key=$key" -f value -c 'Container href')

openstack loadbalancer listener set --wait listener1 --sni-container-refs "$container"
openstack secret store --name='client_ca_cert' -t 'application/octet-stream' -e 'base64' \
    --payload="$(base64 < client_ca.pem)"
openstack secret store --name='client_ca_crl' -t 'application/octet-stream' -e 'base64' \
    --payload="$(base64 < client_ca.crl)"
tls=$(openstack secret list | awk '/ tls_secret1 / {print $2}')
ca=$(openstack secret list | awk '/ client_ca_cert / {print $2}')
crl=$(openstack secret list | awk '/ client_ca_crl / {print $2}')
openstack loadbalancer listener create --protocol-port 8443 --protocol TERMINATED_HTTPS \
    --name listener2 --default-tls-container=$tls --client-authentication=MANDATORY \
    --client-ca-tls-container-ref=$ca --client-crl-container=$crl \
    --alpn-protocol h2 --alpn-protocol http/1.1 --wait lb1
openstack loadbalancer pool create --name pool2 --lb-algorithm ROUND_ROBIN \
    --listener listener2 --protocol HTTP --wait
openstack loadbalancer member create --subnet-id "$PRIV" --address "$WEB1" \
    --protocol-port 80 --wait pool2
"""


def sh(server: Server, script: str, cwd: Path, **env: str) -> str:
    path = f"{BIN}:{server.env.get('PATH', '/usr/bin:/bin')}"
    proc = subprocess.run(["bash", "-c", script], cwd=cwd, capture_output=True, text=True,
                          env={**server.env, "PATH": path, **env}, timeout=300)
    assert proc.returncode == 0, f"{script}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def curl(cwd: Path, vip: str, name: str, ca: str, port: int = 443) -> str:
    proc = subprocess.run(["curl", "-sS", "--max-time", "5", "--resolve", f"{name}:{port}:{vip}",
                           "--cacert", ca, f"https://{name}:{port}/"], cwd=cwd,
                          capture_output=True, text=True, timeout=30)
    return proc.stdout if proc.returncode == 0 else f"ERR {proc.stderr.strip()}"


def s_client(cwd: Path, vip: str, *args: str) -> str:
    proc = subprocess.run(["openssl", "s_client", "-connect", f"{vip}:8443", "-servername",
                           "www.example.com", "-CAfile", "server.crt", "-quiet", *args],
                          cwd=cwd, input="GET / HTTP/1.0\r\nHost: www.example.com\r\n\r\n",
                          capture_output=True, text=True, timeout=30)
    return proc.stdout


def eventually(check: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.3)


@pytest.fixture(scope="module")
def site() -> Iterator[dict[str, Any]]:
    toml, subnets = own_networks()
    server = start_server(toml)
    cidrs: list[str] = []
    work = server.root / "tls"
    work.mkdir()
    try:
        cidrs += [server.show("subnet", "show", s)["cidr"] for s in subnets.values()]
        net = cidrs[1].rsplit(".", 1)[0]
        web1, web2 = f"{net}.51", f"{net}.52"
        server.backend(subnets["priv"], web1)
        server.backend(subnets["priv"], web2)
        sh(server, CERTS, work)
        sh(server, COOKBOOK, work, PUB=subnets["pub"], PRIV=subnets["priv"], WEB1=web1,
           WEB2=web2)
        server.wait_active("lb1")
        vip = server.show("loadbalancer", "show", "lb1")["vip_address"]
        yield {"server": server, "work": work, "vip": vip, "backends": {web1, web2},
               "priv": subnets["priv"]}
    finally:
        out = stop_server(server)
        assert not leftovers(cidrs), f"left behind: {leftovers(cidrs)}\n{out}"


def test_cookbook_terminates_tls_with_the_pkcs12_certificate(site: dict[str, Any]) -> None:
    work, vip = site["work"], site["vip"]
    bodies = {eventually(lambda: (b := curl(work, vip, "www.example.com", "server.crt"))
                         .startswith("backend") and b) for _ in range(6)}
    assert {b.split()[1] for b in bodies} == site["backends"]


def test_sni_container_and_mandatory_client_certificate(site: dict[str, Any]) -> None:
    server, work, vip = site["server"], site["work"], site["vip"]
    sh(server, SNI_AND_MTLS, work, PRIV=site["priv"], WEB1=sorted(site["backends"])[0])
    server.wait_active("lb1")
    assert eventually(lambda: curl(work, vip, "www2.example.com", "www2.crt")
                      .startswith("backend"))
    assert curl(work, vip, "www.example.com", "server.crt").startswith("backend")
    answer = eventually(lambda: s_client(work, vip, "-cert", "client.crt", "-key", "client.key"))
    assert answer.startswith("HTTP/1.") and " 200 " in answer.splitlines()[0], answer
    assert "backend " in answer
    assert "backend " not in s_client(work, vip)  # no client certificate: refused
    revoked = s_client(work, vip, "-cert", "revoked.crt", "-key", "revoked.key")
    assert "backend " not in revoked  # revoked by the CRL: refused
    h2 = subprocess.run(["curl", "-sS", "--http2", "-o", "/dev/null", "-w", "%{http_version}",
                         "--resolve", f"www.example.com:8443:{vip}", "--cacert", "server.crt",
                         "--cert", "client.crt", "--key", "client.key",
                         "https://www.example.com:8443/"], cwd=work, capture_output=True,
                        text=True, timeout=30)
    assert h2.stdout == "2", h2.stderr  # ALPN negotiated HTTP/2


def test_certificate_replaced_under_traffic(site: dict[str, Any]) -> None:
    server, work, vip = site["server"], site["work"], site["vip"]
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    failures: list[str] = []
    seen: set[str] = set()
    stop = threading.Event()

    def traffic() -> None:
        import http.client
        while not stop.is_set():
            conn = http.client.HTTPSConnection(vip, 443, timeout=5, context=context)
            try:
                conn.request("GET", "/", headers={"Host": "www.example.com"})
                resp = conn.getresponse()
                if resp.status != 200:
                    failures.append(str(resp.status))
                cert = conn.sock.getpeercert(binary_form=True) if conn.sock else b""
                seen.add(ssl.DER_cert_to_PEM_cert(cert)[30:90])
            except OSError as exc:
                failures.append(repr(exc))
            finally:
                conn.close()

    worker = threading.Thread(target=traffic)
    worker.start()
    try:
        time.sleep(1)
        new = sh(server, "openstack secret store --name=new -t application/octet-stream "
                         "-e base64 --payload=\"$(base64 < new.p12)\" -f value -c 'Secret href'",
                 work).strip()
        server.openstack("loadbalancer", "listener", "set", "--default-tls-container-ref", new,
                         "listener1")
        server.wait_active("lb1")
        assert eventually(lambda: "new.example.com" in subprocess.run(
            ["bash", "-c", f"openssl s_client -connect {vip}:443 -servername www.example.com "
             "</dev/null 2>/dev/null | openssl x509 -noout -subject"],
            capture_output=True, text=True).stdout)
        time.sleep(1)
    finally:
        stop.set()
        worker.join(10)
    assert len(seen) >= 2 and not failures, failures


def test_private_keys_never_reach_the_logs(site: dict[str, Any]) -> None:
    server, work = site["server"], site["work"]
    logs = [server.root / "server.log", *server.root.rglob("*.log")]
    text = "\n".join(p.read_text(errors="replace") for p in logs if p.is_file())
    assert "listener1" in server.openstack("loadbalancer", "listener", "list")
    for key in ("server.key", "www2.key", "new.key", "client.key"):
        lines = (work / key).read_text().splitlines()[1:-1]
        assert lines and not any(line in text for line in lines), key


def test_secret_cli_round_trip(site: dict[str, Any]) -> None:
    server, work = site["server"], site["work"]
    script = r"""
set -e
ref=$(openstack secret store --name scratch -t application/octet-stream -e base64 \
    --payload="$(base64 < server.p12)" -f value -c 'Secret href')
openstack secret get -t application/octet-stream --file scratch.p12 "$ref"
cmp scratch.p12 server.p12
openstack secret get "$ref" -f value -c 'Content types'
openstack secret delete "$ref"
openstack secret get "$ref" 2>&1 || echo GONE
"""
    out = sh(server, script, work)
    assert "application/octet-stream" in out and out.rstrip().endswith("GONE"), out
