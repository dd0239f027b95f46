"""Secrets and personal data never reach error reports: Settings' repr hides every secret, and the
scrubbing Sentry applies masks what a denylist of names cannot know. The real event path (a real
sentry_sdk posting to an ingest stand-in) is tested in tests/test_faults_leaks.py."""

from dataclasses import fields

from models.foundation.settings import Settings, load_settings
from server import error_reporting
from server.error_reporting import FILTERED, sentry_options

SECRETS = {
    "SECRET_KEY": "jwt-signing-key-0123456789-abcdefghijkl",
    "PAYSTACK_SECRET_KEY": "sk_test_0123abcd",
    "PAYSTACK_PUBLIC_KEY": "pk_test_0123abcd",
    "PAYSTACK_WEBHOOK_SECRET": "webhook-secret-987",
    "EMAIL_HOST_PASSWORD": "smtp-password-654",
    "SENTRY_DSN": "https://publickey:dsnsecret@o1.ingest.example/7",
    "DATABASE_URL": "postgresql://app:db-password-321@db.example:5432/serviceman",
    "REDIS_URL": "rediss://:redis-password-111@cache.example:6380/0",
}


def test_settings_never_print_a_secret():
    settings = load_settings(SECRETS)
    shown = repr(settings)
    for value in (
        "jwt-signing-key-0123456789-abcdefghijkl",
        "sk_test_0123abcd",
        "webhook-secret-987",
        "smtp-password-654",
        "dsnsecret",
        "db-password-321",
        "redis-password-111",
    ):
        assert value not in shown and value not in str(settings)
    # What helps debugging stays: which settings are set, the hosts, the public key.
    assert "secret_key='***'" in shown and "paystack_public_key='pk_test_0123abcd'" in shown
    assert "postgresql://app:***@db.example:5432/serviceman" in shown


def test_every_setting_named_like_a_secret_is_marked_secret():
    """A setting added later with a secret's name must be hidden too: this fails until it is marked."""
    for item in fields(Settings):
        if item.name.endswith(("_key", "secret", "password", "_dsn")) and item.name != "paystack_public_key":
            assert item.metadata.get("secret"), f"Settings.{item.name} looks secret but its repr prints it"


def test_settings_secret_values_include_url_passwords():
    values = load_settings(SECRETS).secret_values()
    assert {"db-password-321", "redis-password-111", "sk_test_0123abcd", SECRETS["SENTRY_DSN"]} <= set(values)
    assert "pk_test_0123abcd" not in values


def test_frames_variables_and_request_bodies_are_never_collected():
    options = sentry_options(load_settings(SECRETS))
    assert options["include_local_variables"] is False
    assert options["max_request_body_size"] == "never"
    assert options["send_default_pii"] is False
    assert options["event_scrubber"].recursive


def test_an_event_is_scrubbed_by_name_and_by_value():
    settings = load_settings(SECRETS)
    before_send = sentry_options(settings)["before_send"]
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
    event = {
        "exception": {
            "values": [
                {
                    "type": "IntegrityError",
                    "value": "duplicate key value violates unique "
                    'constraint "user_email"\nDETAIL:  Key (email)=(ada@example.com) already exists.',
                }
            ]
        },
        "logentry": {"formatted": "request 1 failed: GET /api/auth/verify-email/?token=abc123&page=2"},
        "breadcrumbs": {
            "values": [
                {
                    "message": f"Authorization: Bearer {token}",
                    "data": {
                        "nested": {"password": "hunter22", "email": "ada@example.com", "note": "mail bola@example.org"}
                    },
                }
            ]
        },
        "extra": {"settings": f"secret_key={SECRETS['SECRET_KEY']} pool={SECRETS['DATABASE_URL']}"},
        "request": {"query_string": "reset_code=zz9&x=1", "url": "https://user:pw12345@api.example/x"},
    }
    text = repr(before_send(event, {}))
    for value in (
        "ada@example.com",
        "bola@example.org",
        token,
        "abc123",
        "hunter22",
        "zz9",
        "pw12345",
        SECRETS["SECRET_KEY"],
        "db-password-321",
    ):
        assert value not in text, value
    assert "page=2" in text and "x=1" in text and "IntegrityError" in text  # what is not sensitive stays


def test_breadcrumbs_are_scrubbed_when_recorded():
    before_breadcrumb = sentry_options(load_settings(SECRETS))["before_breadcrumb"]
    crumb = before_breadcrumb({"message": "email to ada@example.com sent", "data": {"params": ["ada@example.com"]}}, {})
    assert crumb == {"message": "email to [email] sent", "data": {"params": FILTERED}}


def test_no_dsn_no_reporting():
    assert error_reporting.init(load_settings({})) is False


def _loop_error(where="poll"):
    return {
        "logger": "serviceman.dispatcher",
        "logentry": {"message": "dispatcher loop error"},
        "exception": {
            "values": [
                {
                    "type": "ResponseError",
                    "stacktrace": {"frames": [{"module": "workers.dispatcher", "function": where, "in_app": True}]},
                }
            ]
        },
    }


def test_one_report_per_failure_kind_per_window_then_the_count_of_the_dropped():
    clock = [0.0]
    once = error_reporting.OncePerKind(window=60, clock=lambda: clock[0])
    before_send = sentry_options(load_settings(SECRETS), process="dispatcher", once_per_kind=once)["before_send"]
    sent = [before_send(_loop_error(where), {}) for where in ("poll", "dead_consumers") * 90]  # 180 turns
    assert len([event for event in sent if event]) == 1  # one log call, one exception type: one kind
    assert sent[0]["tags"] == {"process": "dispatcher"}
    other = dict(_loop_error(), logentry={"message": "stream entries %s..%s failed"})
    assert before_send(other, {}) is not None  # another kind is reported at once
    clock[0] = 61
    again = before_send(_loop_error(), {})
    assert again["extra"]["repeats_not_reported"] == 179


def test_captured_exceptions_are_kinds_by_type_and_innermost_frame_of_ours():
    event = {
        "transaction": "job failing_job",
        "exception": {
            "values": [
                {
                    "type": "JobFailure",
                    "stacktrace": {
                        "frames": [
                            {"module": "rq.job", "function": "perform", "in_app": False},
                            {"module": "tests.sentry_support", "function": "failing_job", "in_app": True},
                        ]
                    },
                }
            ]
        },
    }
    assert error_reporting.failure_kind(event) == (
        "job failing_job",
        "JobFailure",
        ("tests.sentry_support", "failing_job"),
        None,
    )
    web = dict(event, transaction="LoginHandler")
    assert error_reporting.failure_kind(web) != error_reporting.failure_kind(event)


def test_a_web_report_without_a_transaction_is_a_kind_per_route():
    def outage(url):
        return {"request": {"url": url}, "exception": {"values": [{"type": "OperationalError"}]}}

    kind = error_reporting.failure_kind
    assert kind(outage("http://h/api/requests/12/?token=x")) == kind(outage("http://h/api/requests/99/"))
    assert kind(outage("http://h/api/auth/me/")) != kind(outage("http://h/api/auth/refresh/"))
