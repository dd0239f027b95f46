"""Account emails in tests: wait for one in the loopback SMTP mailbox and take its link apart."""
import asyncio
import email
import email.policy
import re
from urllib.parse import parse_qs, urlsplit

LINK = re.compile(r"https?://[^\s\"<>]+")


def parsed(envelope):
    return email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)


def is_account_email(envelope, address, subject_word):
    message = parsed(envelope)
    return address in envelope.rcpt_tos and subject_word.lower() in message["Subject"].lower() \
        and message["Message-ID"].startswith("<account-")


async def account_email(mailbox, address, subject_word, timeout=30):
    """The parsed email to `address` whose subject has `subject_word` (waits for it to arrive)."""
    envelope = await asyncio.get_running_loop().run_in_executor(
        None, mailbox.wait_for, lambda m: is_account_email(m, address, subject_word), timeout)
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
