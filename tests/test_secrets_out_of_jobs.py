"""No link token reaches a job argument, a Redis key or value, or a log line: the job that sends an
account email issues its token itself. Run on the real job path (RedisTransport, an RQ worker in this
process) with every log record captured, RQ's own included."""

import logging
import zlib

import redis

from models.actions import accounts, credentials

from .account_support import links, parsed, token_of

EMAIL = "ada.secret@example.ng"


def redis_dump(url):
    """Every key and value of the test database as bytes; compressed values (RQ's job data) inflated too."""
    client = redis.Redis.from_url(url)
    chunks = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        if kind == b"string":
            values = [client.get(key)]
        elif kind == b"hash":
            values = [part for pair in client.hgetall(key).items() for part in pair]
        elif kind == b"list":
            values = client.lrange(key, 0, -1)
        elif kind in (b"set", b"zset"):
            values = list(client.smembers(key)) if kind == b"set" else client.zrange(key, 0, -1)
        elif kind == b"stream":
            values = [part for _id, fields in client.xrange(key) for pair in fields.items() for part in pair]
        else:
            values = []
        chunks.append(key)
        for value in values:
            chunks.append(value)
            try:
                chunks.append(zlib.decompress(value))
            except zlib.error:
                pass
    return b"\n".join(chunks)


def logged_text(records, level=logging.DEBUG):
    """Every record as a handler would write it, plus its raw arguments (a formatter may show either);
    not the test's own SMTP server (aiosmtpd's "mail.log"), which receives the email."""
    return "\n".join(
        f"{record.getMessage()} {record.args!r} {record.exc_text or ''}"
        for record in records
        if not record.name.startswith("mail.") and record.levelno >= level
    )


def test_link_tokens_appear_in_no_job_argument_redis_value_or_log_line(mail_pipeline, mailbox, redis_url, caplog):
    settings, pipeline = mail_pipeline
    caplog.set_level(logging.DEBUG)
    redis_before = []

    user = accounts.register(
        settings,
        pipeline.transport,
        email=EMAIL,
        password="Lekki-Pipes-2026",
        first_name="Ada",
        last_name="Obi",
        phone="+2348012345678",
        role="client",
    )
    credentials.request_password_reset(pipeline.transport, EMAIL.upper())
    redis_before.append(redis_dump(redis_url))  # the jobs, queued, as RQ stores them
    pipeline.work()

    messages = [parsed(m) for m in mailbox.messages if EMAIL in m.rcpt_tos]
    tokens = {token_of(links(message)["text"]) for message in messages}
    assert len(tokens) == 2 and {m["Subject"] for m in messages} == {
        "Confirm your email address for Serviceman",
        "Reset your Serviceman password",
    }
    everything_logged = logged_text(caplog.records)
    assert "Successfully completed" in everything_logged  # RQ's own job lines were captured
    for token in tokens:
        assert token not in everything_logged
        for dump in (*redis_before, redis_dump(redis_url)):
            assert token.encode() not in dump
    # Nor, at the production log level, the address a reset was asked for: job descriptions name the
    # function, never its arguments. (At DEBUG, peewee prints every query's parameters.)
    logged_at_info = logged_text(caplog.records, logging.INFO)
    assert EMAIL not in logged_at_info and EMAIL.upper() not in logged_at_info
    assert f"user {user.id}" in logged_at_info  # what the logs say instead: ids
