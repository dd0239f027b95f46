"""A bare HTTP/1.1 client for the fault tests: one connection per request, and an outcome that tells
a refused connection (nothing was sent) from one that was accepted and then cut off before the whole
answer came back (a reset), which a library client would fold into one error."""

import asyncio
import json
import time
from dataclasses import dataclass, field

REFUSED = "refused"  # the connection was never accepted
CUT_OFF = "cut_off"  # accepted, then closed or reset before a complete answer


@dataclass
class Outcome:
    started: float  # time.monotonic() when the connection was attempted
    kind: str = ""  # REFUSED, CUT_OFF, or "answered"
    status: int = 0
    body: object = None
    detail: str = ""
    headers: dict = field(default_factory=dict)  # of the answer, names in lower case

    @property
    def answered(self):
        return self.kind == "answered"


async def request(port, method, path, body=None, token=None, timeout=60, headers=None):
    """One request on its own connection (`Connection: close`), with `headers` besides; never raises
    for network trouble."""
    outcome = Outcome(started=time.monotonic())
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except (ConnectionRefusedError, ConnectionResetError):
        # Refused, or reset during the handshake (the listening socket closed while the kernel held
        # the half-open connection): either way connect() failed and not a byte of the request left.
        outcome.kind = REFUSED
        return outcome
    payload = b"" if body is None else json.dumps(body).encode()
    head = [
        f"{method} {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Connection: close",
        f"Content-Length: {len(payload)}",
    ]
    if body is not None:
        head.append("Content-Type: application/json")
    if token:
        head.append(f"Authorization: Bearer {token}")
    head.extend(f"{name}: {value}" for name, value in (headers or {}).items())
    try:
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout)
    except (TimeoutError, ConnectionError, OSError) as exc:
        outcome.kind, outcome.detail = CUT_OFF, repr(exc)
        return outcome
    finally:
        writer.close()
    return _parse(outcome, raw)


def _parse(outcome, raw):
    head, separator, content = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not separator or not lines[0].startswith("HTTP/1."):
        outcome.kind, outcome.detail = CUT_OFF, f"incomplete answer: {raw[:80]!r}"
        return outcome
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    expected = int(headers.get("content-length", len(content)))
    if len(content) < expected:
        outcome.kind, outcome.detail = CUT_OFF, f"answer cut at {len(content)} of {expected} bytes"
        return outcome
    outcome.kind, outcome.status, outcome.headers = "answered", int(lines[0].split()[1]), headers
    outcome.body = json.loads(content) if content and "json" in headers.get("content-type", "") else None
    return outcome
