"""docs/deploy/nginx.conf, run for real: Debian's nginx on loopback (its own prefix and ports, a self-signed
certificate made with openssl standing in for Let's Encrypt's) in front of two web processes (round robin,
no stickiness) with a dispatcher and a worker, on PostgreSQL and Redis. Through it: the ACME challenge
over plain HTTP and a redirect to HTTPS for the rest, HSTS, REST with https links, static files served by
nginx alone, websockets on either process receiving pushes caused on the other and kept open by the pings,
rate limits keyed by each client's own address (not nginx's, not one a client claims), and 413 for a body
over the app's limit.

Skipped with the reason when nginx (Debian: apt-get install nginx; .ci/run installs it) or a PostgreSQL
(TEST_DATABASE_URL, or initdb for a private cluster) is missing."""

import asyncio
import http.client
import json
import os
import re
import shutil
import ssl
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
import tornado.httpclient
from tornado.websocket import websocket_connect

from handlers.base import AUTH_BODY_LIMIT, JSON_BODY_LIMIT, MAX_BODY_LIMIT
from handlers.payments import WEBHOOK_BODY_LIMIT
from models import RequestStatus
from models.foundation.clock import platform_today
from models.foundation.settings import load_settings

from .conftest import TEST_DATABASE_URL
from .factories import PASSWORD, CategoryFactory, ClientFactory
from .fault_support import PrivatePostgres, Procfile, models_bound_to, process_env, procfile, wait_until  # noqa: F401 (procfile: a fixture)
from .pipeline_support import free_port, self_signed_certificate
from .ws_support import receive, send

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "docs" / "deploy" / "nginx.conf"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
pytestmark = pytest.mark.skipif(
    NGINX is None, reason="needs Debian's nginx (apt-get install nginx; .ci/run installs it)"
)
CLIENT_A, CLIENT_B = "127.0.0.2", "127.0.0.3"  # loopback addresses of their own: two clients nginx tells apart


def site_config(web_ports, http_port, https_port, cert, key, acme_root):
    """The shipped configuration with this test's ports and paths; every replaced text must be there."""
    text = CONFIG.read_text()
    swaps = {
        "server 127.0.0.1:8000 ": f"server 127.0.0.1:{web_ports[0]} ",
        "server 127.0.0.1:8001 ": f"server 127.0.0.1:{web_ports[1]} ",
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen [::]:80;": "",
        "listen 443 ssl http2;": f"listen 127.0.0.1:{https_port} ssl http2;",
        "listen [::]:443 ssl http2;": "",
        "/etc/letsencrypt/live/api.example.ng/fullchain.pem": str(cert),
        "/etc/letsencrypt/live/api.example.ng/privkey.pem": str(key),
        "/var/www/letsencrypt": str(acme_root),
        "/srv/serviceman/static/": f"{ROOT / 'static'}/",
    }
    for old, new in swaps.items():
        assert old in text, f"docs/deploy/nginx.conf no longer has {old!r}: update this test with it"
        text = text.replace(old, new)
    return text


def main_config(prefix, site):
    """What /etc/nginx/nginx.conf gives a site, in a prefix of the test's own."""
    temp = "\n".join(
        f"    {kind}_temp_path {prefix / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    user = "user root;" if os.geteuid() == 0 else ""  # the test's files are private to it
    return f"""{user}
worker_processes 1;
daemon off;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} info;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {prefix / "access.log"};
{temp}
    include {site};
}}
"""


@pytest.fixture
def postgres_url(database):
    """The suite's PostgreSQL database, or a private cluster on a SQLite run."""
    if TEST_DATABASE_URL.startswith("postgres"):
        yield TEST_DATABASE_URL
        return
    if not PrivatePostgres.available():
        pytest.skip("needs PostgreSQL: TEST_DATABASE_URL or initdb/pg_ctl for a private cluster")
    server = PrivatePostgres().start()
    try:
        url = server.create_database()
        Procfile.run_once(["migrate"], process_env(url))
        yield url
    finally:
        server.destroy()


class Deployment:
    def __init__(self, tmp_path, procfile, database_url, redis_url):
        self.dir = tmp_path
        self.procfile = procfile
        self.web_ports = (free_port(), free_port())
        self.http_port, self.https_port = free_port(), free_port()
        self.origin = f"https://127.0.0.1:{self.https_port}"
        self.env = process_env(
            database_url,
            redis_url,
            TRUSTED_PROXIES="127.0.0.1",
            WS_PING_SECONDS="1",
            PUBLIC_BASE_URL=self.origin,
            RATE_LIMIT_LOGIN="3/minute",
        )
        self.settings = load_settings(environ=self.env, read_dotenv=False)
        cert_dir = tmp_path / "tls"
        cert_dir.mkdir()
        self.cert, key = self_signed_certificate(cert_dir)
        self.tls = ssl.create_default_context(cafile=str(self.cert))
        self.acme = tmp_path / "acme"
        (self.acme / ".well-known" / "acme-challenge").mkdir(parents=True)
        (self.acme / ".well-known" / "acme-challenge" / "token-123").write_text("token-123.thumbprint")
        site = tmp_path / "serviceman.conf"
        site.write_text(site_config(self.web_ports, self.http_port, self.https_port, self.cert, key, self.acme))
        (tmp_path / "nginx.conf").write_text(main_config(tmp_path, site))
        self.nginx = None

    def start(self):
        for index, port in enumerate(self.web_ports):
            self.procfile.start(f"web{index}", "serve", "--port", str(port), env=self.env)
        self.procfile.start("dispatcher", "dispatcher", env=self.env)
        self.procfile.start("worker", "worker", env=self.env)
        checked = subprocess.run(
            [NGINX, "-t", "-p", str(self.dir), "-c", str(self.dir / "nginx.conf"), "-e", str(self.dir / "error.log")],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert checked.returncode == 0, checked.stderr
        self.nginx = subprocess.Popen(
            [NGINX, "-p", str(self.dir), "-c", str(self.dir / "nginx.conf"), "-e", str(self.dir / "error.log")]
        )
        for port in self.web_ports:
            wait_until(
                lambda port=port: self.call("GET", "/livez", direct_port=port)[0] == 200,
                timeout=60,
                what=f"the web process on {port}",
            )
        wait_until(lambda: self.call("GET", "/livez")[0] == 200, timeout=30, what="nginx")

    def stop(self):
        if self.nginx is not None:
            self.nginx.terminate()
            self.nginx.wait(10)

    def call(self, method, path, body=None, headers=None, source=None, direct_port=None, plain=False, raw=None):
        """(status, headers, body) of one request through nginx (HTTPS, or HTTP with `plain`) from the
        loopback address `source`, or straight to a web process on `direct_port`."""
        try:
            if direct_port:
                connection = http.client.HTTPConnection("127.0.0.1", direct_port, timeout=10)
            elif plain:
                connection = http.client.HTTPConnection(
                    "127.0.0.1", self.http_port, timeout=10, source_address=(source, 0) if source else None
                )
            else:
                connection = http.client.HTTPSConnection(
                    "127.0.0.1",
                    self.https_port,
                    timeout=10,
                    context=self.tls,
                    source_address=(source, 0) if source else None,
                )
            data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
            connection.request(method, path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
            response = connection.getresponse()
            content = response.read()
            connection.close()
        except OSError:
            return 0, {}, b""
        return response.status, dict(response.getheaders()), content

    def json(self, method, path, body=None, **kwargs):
        status, headers, content = self.call(method, path, body, **kwargs)
        return status, json.loads(content) if content else None

    def log(self, name):
        return self.procfile.log(name)

    def served_alternately(self, numbers):
        """Whether /api/round-robin-<n>/ went to the two processes in turn (their access logs, which a
        process writes just after answering: polled, bounded)."""

        def split():
            served = [[n for n in numbers if f"/api/round-robin-{n}/" in self.log(f"web{index}")] for index in (0, 1)]
            return served if sorted(served) == sorted([list(numbers)[0::2], list(numbers)[1::2]]) else None

        return wait_until(split, timeout=10, what="both access logs")


@pytest.fixture
def deployment(tmp_path, procfile, postgres_url, redis_url):
    deployed = Deployment(tmp_path, procfile, postgres_url, redis_url)
    try:
        deployed.start()
        yield deployed
    finally:
        deployed.stop()
        if deployed.nginx is not None and deployed.nginx.returncode not in (0, None):
            print((tmp_path / "error.log").read_text())


def test_the_shipped_values_match_the_app():
    text = CONFIG.read_text()
    # nginx's limits are the app's own: the API's signed-in limit, and the webhook's.
    assert re.search(rf"client_max_body_size {JSON_BODY_LIMIT // 1024}k;", text)
    assert re.search(rf"client_max_body_size {WEBHOOK_BODY_LIMIT // 1024}k;", text)
    timeouts = [int(value) for value in re.findall(r"proxy_read_timeout (\d+)s;", text)]
    ping = load_settings(environ={}, read_dotenv=False).ws_ping_seconds
    assert timeouts and min(timeouts) >= 3 * ping  # three pings go by before nginx would cut a quiet socket
    assert "proxy_set_header Upgrade $http_upgrade;" in text and "X-Forwarded-Proto $scheme" in text


def test_nginx_in_front_of_two_web_processes(deployment, postgres_url):
    d = deployment
    with models_bound_to(postgres_url) if postgres_url != TEST_DATABASE_URL else _same_binding():
        category = CategoryFactory()
        client = ClientFactory()

    # Plain HTTP: Let's Encrypt's challenge is answered, anything else is sent to HTTPS.
    status, _, body = d.call("GET", "/.well-known/acme-challenge/token-123", plain=True)
    assert (status, body) == (200, b"token-123.thumbprint")
    status, headers, _ = d.call("GET", "/api/categories/?page=1", plain=True)
    assert status == 301 and headers["Location"] == "https://127.0.0.1/api/categories/?page=1"

    # HTTPS: REST, HSTS once, the app sees https (its links are https).
    status, headers, body = d.call("GET", "/api/categories/?page_size=1")
    assert status == 200 and headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert json.loads(body)["results"][0]["id"] == category.id
    status, signed_in = d.json("POST", "/api/auth/login/", {"email": client.email, "password": PASSWORD})
    assert status == 200, signed_in
    token = signed_in["access"]

    # Round robin, no stickiness: consecutive requests alternate between the two processes.
    for n in range(4):
        assert d.call("GET", f"/api/round-robin-{n}/")[0] == 404
    assert d.served_alternately(range(4))

    # Static files come from nginx: no web process hears of them.
    status, headers, body = d.call("GET", "/static/dashboard/app.css")
    assert status == 200 and body == (ROOT / "static" / "dashboard" / "app.css").read_bytes()
    assert "Cache-Control" in headers and "Strict-Transport-Security" in headers
    assert not any("/static/" in d.log(f"web{index}") for index in (0, 1))

    # Bodies past the API's limit: nginx answers the contract's 413 itself (not a 502 for a connection the
    # app closed), and no web process reads a byte; the webhook may carry more.
    for size in (JSON_BODY_LIMIT + 1, 100 * 1024, MAX_BODY_LIMIT + 1):
        status, headers, body = d.call("POST", "/api/auth/login/", raw=b"{" + b" " * (size - 2) + b"}")
        assert status == 413 and json.loads(body) == {
            "error": {"code": "payload_too_large", "message": "The request body is too large."}
        }
        assert headers["Content-Type"].startswith("application/json")
    # Within nginx's limit but past an anonymous endpoint's own 8 KiB: the app reads the body, drops it and
    # answers its 413 (it used to close the connection under nginx, which answered 502).
    for size in (AUTH_BODY_LIMIT + 1, 20 * 1024, JSON_BODY_LIMIT):
        status, headers, body = d.call("POST", "/api/auth/login/", raw=b"{" + b" " * (size - 2) + b"}")
        assert status == 413 and json.loads(body)["error"] == {
            "code": "payload_too_large",
            "message": f"The request body may be at most {AUTH_BODY_LIMIT} bytes.",
        }
    status, _, body = d.call("POST", "/api/payments/webhook/", raw=b"{" + b" " * (200 * 1024) + b"}")
    assert status != 413 and status < 500  # the app's own answer (an unsigned webhook), not nginx's limit
    status, _, body = d.call("POST", "/api/payments/webhook/", raw=b"{" + b" " * (WEBHOOK_BODY_LIMIT + 1) + b"}")
    assert status == 413
    # Neither process was taken out of rotation for any of it (max_fails=0).
    for n in range(4, 8):
        assert d.call("GET", f"/api/round-robin-{n}/")[0] == 404
    assert d.served_alternately(range(4, 8))

    asyncio.run(_sockets_and_pushes(d, token, category))
    _rate_limits_by_client_address(d)


class _same_binding:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


async def _sockets_and_pushes(d, token, category):
    """Two sockets of one client, opened one after the other, land on the two processes; a booking made
    through either process reaches both, and a quiet socket outlives several pings through nginx."""

    async def open_socket():
        request = tornado.httpclient.HTTPRequest(f"wss://127.0.0.1:{d.https_port}/ws/", ssl_options=d.tls)
        ws = await websocket_connect(request)
        await send(ws, {"type": "auth", "token": token})
        ready = await receive(ws)
        assert ready["type"] == "ready", ready
        return ws

    sockets = [await open_socket(), await open_socket()]
    wait_until(
        lambda: [d.log(f"web{index}").count("GET /ws/") for index in (0, 1)] == [1, 1],
        timeout=10,
        what="one socket on each process",
    )
    booking_date = platform_today(d.settings.zone) + timedelta(days=5)
    booking = {
        "category_id": category.id,
        "booking_date": booking_date.isoformat(),
        "address": "12 Allen Avenue, Ikeja",
        "description": "Kitchen sink leaking.",
    }
    status, created = await asyncio.to_thread(
        d.json, "POST", "/api/requests/", booking, headers={"Authorization": f"Bearer {token}"}
    )
    assert status == 201 and created["status"] == RequestStatus.PENDING_PAYMENT, created
    for ws in sockets:
        while True:
            message = await receive(ws, timeout=15)
            assert message is not None, (ws.close_code, ws.close_reason)
            if message["type"] == "notification":
                assert message["notification"]["service_request_id"] == created["id"], message
                break
    await asyncio.sleep(3.5)  # WS_PING_SECONDS=1: three pings through nginx, each answered
    for ws in sockets:
        assert ws.close_code is None
        await send(ws, {"type": "ping"})
        while (message := await receive(ws))["type"] != "pong":  # after the booking's unread_count
            assert message["type"] == "unread_count", message
        ws.close()


def _rate_limits_by_client_address(d):
    """RATE_LIMIT_LOGIN=3/minute per client address, counted in Redis by both processes."""

    def attempt(n, source, headers=None):
        return d.call(
            "POST",
            "/api/auth/login/",
            {"email": f"nobody{n}-{source}@example.ng", "password": "wrong-pass"},
            source=source,
            headers=headers,
        )[0]

    assert [attempt(n, CLIENT_A) for n in range(4)] == [401, 401, 401, 429]
    # Another client is not held back by the first, even claiming to be it (nginx overwrites the claim).
    assert attempt(9, CLIENT_B, headers={"X-Forwarded-For": CLIENT_A}) == 401
