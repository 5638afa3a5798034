"""A real nginx (Debian's package) playing the Kubernetes ingress in front of a test server, under /mlflow.

The configuration is the deployment guide's ingress (spec sharinghub.md §8.5) as the ingress-nginx controller
renders it: the guide's annotations (`proxy-body-size: 10g` and the configuration snippet that sets X-Script-Name
and strips /mlflow) plus the controller defaults that change what the server sees; each is commented in
`ingress_config()`. TLS is terminated by nginx on a second port (self-signed), as the ingress terminates it.

Use the fixture, which fronts pytest-django's live server for the whole session:

    from tests.nginx import ingress  # noqa: F401  (a fixture)

    def test_something(ingress):
        ingress.url        # http://127.0.0.1:<port>/mlflow: what clients are given
        ingress.https_url  # https://127.0.0.1:<port>/mlflow (requests: verify=ingress.certificate)
        ingress.origin     # http://127.0.0.1:<port>, to resolve a Location such as /mlflow/auth/login
        ingress.access_log()  # nginx's log: proof that a request went through the proxy

or, in front of any server, `with run_ingress("http://127.0.0.1:5000", workdir) as ingress: ...`.
nginx runs in the foreground (`daemon off`) with its pid, logs and temporary files in `workdir`, on free loopback
ports; as root, its workers stay root, so that they can use a workdir only root may enter.
"""

import os
import shutil
import signal
import socket
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.ports import free_port

PREFIX = "/mlflow"
NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
INSTALL_HINT = "nginx is not installed: apt-get install --no-install-recommends nginx (.ci/run does)"


@dataclass
class Ingress:
    origin: str
    tls_origin: str
    certificate: Path
    workdir: Path
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"{self.origin}{PREFIX}"

    @property
    def https_url(self) -> str:
        return f"{self.tls_origin}{PREFIX}"

    def access_log(self) -> str:
        return (self.workdir / "access.log").read_text()

    def pids(self) -> list[int]:
        """The master and its workers (to watch their memory)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        return [self.process.pid, *map(int, children)]


def ingress_config(*, upstream: str, port: int, tls_port: int, certificate: Path, key: Path, workdir: Path) -> str:
    """nginx.conf: the guide's Ingress for path /mlflow/ on an ingress-nginx controller with default settings."""
    host, upstream_port = _upstream_address(upstream)
    user = "user root;" if os.geteuid() == 0 else ""  # else the workers become nobody, locked out of workdir
    return f"""
{user}
daemon off;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log notice;
events {{ worker_connections 256; }}

http {{
    log_format upstream '$remote_addr "$request" $status $body_bytes_sent req=$request_length '
                        'upstream=$upstream_status time=$request_time';
    access_log {workdir}/access.log upstream;
    client_body_temp_path {workdir}/client_body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;

    upstream mlflow {{
        server {host}:{upstream_port};
        keepalive 32;  # the controller keeps connections to pods open (upstream-keepalive-connections)
    }}

    server {{
        listen 127.0.0.1:{port};
        listen 127.0.0.1:{tls_port} ssl;
        ssl_certificate {certificate};
        ssl_certificate_key {key};

        location {PREFIX}/ {{
            # Annotation proxy-body-size: 10g.
            client_max_body_size 10g;

            # Controller defaults that shape what the server sees:
            # - proxy-request-buffering "on": nginx reads the whole request body (to a file past 8k) before the
            #   server gets a byte, so an upload reaches the server at loopback speed;
            client_body_buffer_size 8k;
            proxy_request_buffering on;
            # - proxy-buffering "off": responses (artifact downloads) are streamed as the server writes them;
            proxy_buffering off;
            proxy_buffer_size 4k;
            proxy_buffers 4 4k;
            # - HTTP/1.1 with keep-alive to the server; timeouts 5 s to connect, 60 s between two reads or writes;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_connect_timeout 5s;
            proxy_send_timeout 60s;
            proxy_read_timeout 60s;
            # - proxy-redirect off: Location headers pass unchanged, so the server must write the prefix itself;
            proxy_redirect off;
            # - the request headers it sets (use-forwarded-headers "false": the client's own are replaced).
            proxy_set_header Host $http_host;
            proxy_set_header X-Request-ID $request_id;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_set_header X-Forwarded-Port $server_port;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Scheme $scheme;
            proxy_set_header X-Scheme $scheme;
            proxy_set_header Proxy "";

            # Annotation configuration-snippet, verbatim from the deployment guide.
            proxy_set_header X-Script-Name /mlflow;
            rewrite ^/mlflow/(.*)$ /$1 break;

            proxy_pass http://mlflow;
        }}
    }}
}}
"""


@contextmanager
def run_ingress(upstream: str, workdir: Path):
    """nginx in front of `upstream` (http://host:port) until the block ends; an Ingress describes it."""
    if NGINX is None:
        (pytest.fail if os.environ.get("CI") else pytest.skip)(INSTALL_HINT)
    workdir.mkdir(parents=True, exist_ok=True)
    certificate, key = _self_signed_certificate(workdir)
    port, tls_port = free_port(), free_port()
    config = workdir / "nginx.conf"
    config.write_text(ingress_config(upstream=upstream, port=port, tls_port=tls_port, certificate=certificate,
                                     key=key, workdir=workdir))
    # -e: the error log from the first line on (nginx's built-in default is under /var/log).
    process = subprocess.Popen([NGINX, "-p", str(workdir), "-c", str(config), "-e", str(workdir / "error.log")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        _wait_until_listening(process, [port, tls_port], workdir / "error.log")
        yield Ingress(f"http://127.0.0.1:{port}", f"https://127.0.0.1:{tls_port}", certificate, workdir, process)
    finally:
        process.send_signal(signal.SIGTERM)  # fast shutdown: open keep-alive connections are not waited for
        process.wait(timeout=30)


@pytest.fixture(scope="session")
def ingress(live_server, tmp_path_factory):
    """The live server behind the guide's ingress for the whole session (see the module's docstring)."""
    with run_ingress(live_server.url, tmp_path_factory.mktemp("nginx")) as running:
        yield running


def _upstream_address(upstream: str) -> tuple[str, int]:
    parts = urlsplit(upstream)
    # An IPv4 address: "localhost" may also resolve to ::1, where a test server does not listen.
    return socket.gethostbyname(parts.hostname), parts.port


def _self_signed_certificate(workdir: Path) -> tuple[Path, Path]:
    certificate, key = workdir / "tls.crt", workdir / "tls.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(certificate)], check=True, capture_output=True)
    return certificate, key


def _wait_until_listening(process: subprocess.Popen, ports: list[int], error_log: Path, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    waiting = list(ports)
    while waiting:
        if process.poll() is not None or time.monotonic() > deadline:
            log = error_log.read_text() if error_log.exists() else "(no error log)"
            process.kill()
            raise RuntimeError(f"nginx did not start (exit code {process.poll()}):\n{log}")
        try:
            socket.create_connection(("127.0.0.1", waiting[0]), timeout=1).close()
            waiting.pop(0)
        except OSError:
            time.sleep(0.05)
