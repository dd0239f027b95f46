"""Shared fixtures. One schema per session (built by the real migrations), tables emptied between
tests. PostgreSQL and Redis when TEST_DATABASE_URL / TEST_REDIS_URL are set, SQLite otherwise."""

import json
import os
import tempfile
import time

import peewee
import pytest
import tornado.httpclient

import models
from models.foundation.settings import RATE_LIMIT_DEFAULTS, load_settings
from models.foundation.tokens import access_token
from server.app import make_app
from server.migrations import migrate, router
from server.paystack_standin import StandinServer
from server.pipeline import register_after_commit_hooks
from workers import runtime

from .factories import PASSWORD, AdminFactory, CategoryFactory, ClientFactory, ServicemanFactory
from .paystack_schemas import check_request

# The support modules' fixtures (Redis/SMTP, websockets, real processes), found by name: never imported.
pytest_plugins = ("tests.pipeline_support", "tests.ws_support", "tests.fault_support")

TEST_DATABASE_URL = (
    os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{tempfile.mkdtemp(prefix='serviceman-tests-')}/test.sqlite3"
)
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "")


PAYSTACK_TEST_SECRET = "sk_test_local"
_standin = None


def paystack_standin_server():
    """One Paystack stand-in on loopback for the whole session (tests reset its ledger)."""
    global _standin
    if _standin is None:
        _standin = StandinServer(PAYSTACK_TEST_SECRET).start()
        _standin.ledger.fault_delay = 2.5  # well past PAYSTACK_TIMEOUT below, on a loaded machine too
    return _standin


def make_settings(**overrides):
    environ = {
        "ENV": "test",
        "SECRET_KEY": "test-secret-key-0123456789abcdef0123456789",
        "DATABASE_URL": TEST_DATABASE_URL,
        "BCRYPT_ROUNDS": "4",
        "DB_POOL_SIZE": "4",
        "PAYSTACK_SECRET_KEY": PAYSTACK_TEST_SECRET,
        "PAYSTACK_PUBLIC_KEY": "pk_test_local",
        "PAYSTACK_BASE_URL": paystack_standin_server().url,
        "PAYSTACK_TIMEOUT": "1.2",
        # Tests sign in many times from 127.0.0.1: limits are off unless a test sets its own.
        **{f"RATE_LIMIT_{name.upper()}": "" for name in RATE_LIMIT_DEFAULTS},
    }
    environ.update(overrides)
    return load_settings(environ=environ)


@pytest.fixture(scope="session", autouse=True)
def after_commit_hooks():
    """This test process announces committed events as every server process does (server/pipeline.py):
    to the installed pipeline's outbox and to the listing caches."""
    register_after_commit_hooks()


@pytest.fixture(scope="session")
def settings():
    return make_settings()


@pytest.fixture
def paystack():
    """The Paystack stand-in's ledger, emptied for this test: `paystack.charge(ref)`, `.fail_next(...)`."""
    ledger = paystack_standin_server().ledger
    ledger.transactions.clear()
    ledger.refunds.clear()
    ledger.calls.clear()
    ledger.faults.clear()
    ledger.webhook_url = ""
    ledger.recipients.clear()
    ledger.transfers.clear()
    ledger.transfer_outcome = None
    ledger.requests.clear()
    ledger.refund_outcome = ledger.refund_clock = None
    ledger.otp_outcome = "pending"
    yield ledger
    ledger.faults.clear()
    # Every request the client made in this test, as Paystack documents it (tests/paystack_schemas.py).
    # A test that sends malformed requests on purpose marks them `ledger.requests.clear()`.
    problems = [problem for request in ledger.requests for problem in check_request(*request)]
    assert not problems, "requests to Paystack not as documented:\n" + "\n".join(problems)


@pytest.fixture(scope="session")
def database(settings):
    db = models.bind(settings.database_url, pool_size=settings.db_pool_size)
    with db.connection_context():
        db.drop_tables([*models.ALL_MODELS, router(db).model], safe=True, cascade=models.is_postgres())
        migrate(db)
    yield db
    db.close_all() if hasattr(db, "close_all") else db.close()


@pytest.fixture(autouse=True)
def db(database):
    """Every test starts from empty tables; the web app's threads see the same rows."""
    database.connect(reuse_if_open=True)
    yield database
    for attempt in range(5):
        try:
            with database.atomic():
                for model in reversed(models.ALL_MODELS):
                    model.delete().execute()
            break
        except peewee.OperationalError as exc:
            # Work a test set off after its answer (an email link's job: handlers/auth.py answer_then)
            # may still be writing on PostgreSQL, and the two can deadlock: PostgreSQL ends one of them.
            if "deadlock" not in str(exc) or attempt == 4:
                raise
            time.sleep(0.2)
    database.close()


def serve_app(settings):
    """Yield an app built with `settings` (embedded pipeline); its jobs finish before teardown."""
    application = make_app(settings, bind_database=False)
    yield application
    transport = runtime.transport()
    if hasattr(transport, "shutdown"):
        transport.shutdown()
    runtime.reset()


@pytest.fixture
def app(settings, database):
    """The app with the embedded pipeline; its jobs finish before the tables are emptied."""
    yield from serve_app(settings)


class Api:
    """A small JSON client over pytest-tornado's server: `await api.post(path, body, user=...)`."""

    def __init__(self, base_url, settings):
        self.base_url, self.settings = base_url, settings
        self.client = tornado.httpclient.AsyncHTTPClient()

    def token(self, user):
        return access_token(self.settings, user)

    async def call(self, method, path, body=None, user=None, token=None, raw=None, headers=None):
        headers = dict(headers or {})
        if user is not None:
            token = self.token(user)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if raw is None and body is not None:
            raw = json.dumps(body, default=str)
        if raw is None and method in ("POST", "PATCH", "PUT"):
            raw = ""
        response = await self.client.fetch(
            self.base_url + path,
            method=method,
            body=raw,
            headers=headers,
            raise_error=False,
            allow_nonstandard_methods=True,
        )
        data = (
            json.loads(response.body)
            if response.body and response.headers.get("Content-Type", "").startswith("application/json")
            else None
        )
        return Response(response.code, data, response.headers)

    async def get(self, path, **kw):
        return await self.call("GET", path, **kw)

    async def post(self, path, body=None, **kw):
        return await self.call("POST", path, body, **kw)

    async def patch(self, path, body=None, **kw):
        return await self.call("PATCH", path, body, **kw)

    async def delete(self, path, **kw):
        return await self.call("DELETE", path, **kw)


class Response:
    def __init__(self, status, data, headers):
        self.status, self.data, self.headers = status, data, headers

    @property
    def error_code(self):
        return (self.data or {}).get("error", {}).get("code")

    def __repr__(self):
        return f"<Response {self.status} {self.data}>"


@pytest.fixture
def api(http_server, base_url, settings):
    return Api(base_url, settings)


@pytest.fixture
def password():
    return PASSWORD


@pytest.fixture
def client_user():
    return ClientFactory()


@pytest.fixture
def other_client():
    return ClientFactory()


@pytest.fixture
def admin_user():
    return AdminFactory()


@pytest.fixture
def category():
    return CategoryFactory()


@pytest.fixture
def serviceman(category):
    return ServicemanFactory(profile__categories=[category])


def session_cookie(settings, user, version=None, age_days=0):
    """The dashboard's signed session cookie for `user`, as the sign-in page sets it (optionally old):
    a new server-side session and its cookie."""
    import time

    import tornado.web

    from handlers.web import sessions
    from models.actions.sessions import start_web_session

    web_session = start_web_session(settings, user)
    value = f"{user.id}:{user.session_version if version is None else version}:{web_session}"
    signed = tornado.web.create_signed_value(
        settings.secret_key, sessions.SESSION_COOKIE, value, clock=lambda: time.time() - age_days * 86400
    )
    return signed.decode()
