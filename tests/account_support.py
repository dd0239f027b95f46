"""Accounts in tests: registering and signing in through the API, account emails (wait for one in the
loopback SMTP mailbox and take its link apart), and answers that must take as long for any address."""

import asyncio
import email
import email.policy
import re
import statistics
import time
from urllib.parse import parse_qs, urlsplit

from models import User

from .factories import PASSWORD

LINK = re.compile(r"https?://[^\s\"<>]+")
RESET = "/api/auth/password-reset/"
# Long enough for the strength check of registration (the factories' PASSWORD is set on rows directly).
STRONG_PASSWORD = "a-long-enough-password-1"


async def register(api, address, role="client", **extra):
    """`POST /api/auth/register/`: the new user and the answer's data (user, access, refresh)."""
    body = {
        "email": address,
        "password": STRONG_PASSWORD,
        "first_name": address.split("@")[0].title(),
        "last_name": "Okafor",
        "phone": "+2348012345678",
        "role": role,
        **extra,
    }
    response = await api.post("/api/auth/register/", body)
    assert response.status == 201, response
    return User.get_by_id(response.data["user"]["id"]), response.data


async def sign_in(api, user, password=PASSWORD):
    """`POST /api/auth/login/`: the token pair."""
    response = await api.post("/api/auth/login/", {"email": user.email, "password": password})
    assert response.status == 200, response
    return response.data


def parsed(envelope):
    return email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)


def is_account_email(envelope, address, subject_word):
    message = parsed(envelope)
    return (
        address in envelope.rcpt_tos
        and subject_word.lower() in message["Subject"].lower()
        and message["Message-ID"].startswith("<account-")
    )


async def account_email(mailbox, address, subject_word, timeout=30):
    """The parsed email to `address` whose subject has `subject_word` (waits for it to arrive)."""
    envelope = await asyncio.get_running_loop().run_in_executor(
        None, mailbox.wait_for, lambda m: is_account_email(m, address, subject_word), timeout
    )
    assert envelope is not None, f"no {subject_word!r} email reached {address}"
    return parsed(envelope)


def links(message):
    """{"text": link, "html": link} from the plain-text and HTML parts."""
    found = {}
    for part, kind in ((message.get_body(("plain",)), "text"), (message.get_body(("html",)), "html")):
        urls = set(LINK.findall(part.get_content()))
        assert len(urls) == 1, (kind, urls)
        found[kind] = urls.pop()
    return found


def token_of(link):
    return parse_qs(urlsplit(link).query)["token"][0]


def path_of(link):
    """The link's path and query, to open it on the test server (its origin is PUBLIC_BASE_URL)."""
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


async def timed(api, path, address):
    started = time.perf_counter()
    response = await api.post(path, {"email": address})
    elapsed = time.perf_counter() - started
    assert response.status == 202
    return elapsed


async def assert_same_timing(api, path, known_email, rounds=30):
    """Median answer times for a known and an unknown address, interleaved so load hits both alike.
    The tolerance is loose for a loaded 2-core machine (8 ms vs 12 ms medians is noise there) yet far
    below what a lookup-dependent path costs: a bcrypt hash (~250 ms at cost 12) or an SMTP send."""
    known, unknown = [], []
    for i in range(rounds):
        await timed(api, path, "warm-up@example.ng")
        pair = ((known, known_email), (unknown, f"nobody-{i}@example.ng"))
        for times, address in pair if i % 2 else pair[::-1]:
            times.append(await timed(api, path, address))
    k, u = statistics.median(known), statistics.median(unknown)
    assert abs(k - u) <= 0.005 + 0.5 * min(k, u), (path, round(k * 1000, 2), round(u * 1000, 2))
    return k, u
