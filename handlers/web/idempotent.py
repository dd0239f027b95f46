"""The Idempotency-Key header on signed-in POST, PATCH and DELETE requests (models/actions/idempotency.py).

A request with a key claims it before its handler runs; a retry of it gets the first answer back with
`Idempotent-Replayed: true` (or 409 while the first runs, 422 when its body differs). Two ways to
honour a claim, chosen per endpoint by `@endpoint(idempotency=...)`:
- ATOMIC (the default): every domain call of the request runs in one transaction with the key's
  `applied` mark and the answer rendered from its result, so a retry can never act a second time,
  not even after the process died between the commit and the answer.
- AFTER: the answer is stored when it is sent. For actions that must commit by themselves (in steps
  around a Paystack call: refunds, payouts; ending sessions: suspension, deactivation), which their own
  references or state checks already make harmless to repeat; a process killed mid-request frees the
  key when its lease ends, and the retry runs again (and finds the state changed: 409, or a no-op).
Keys are per user; anonymous endpoints (sign-in, registration, Paystack's webhook) ignore them.
"""

import hashlib
import json
import logging
import re

from models.actions import idempotency
from models.foundation.errors import ValidationFailed
from models.workflow import unit_of_work

from .executor import run_sync

log = logging.getLogger("serviceman.idempotency")

ATOMIC, AFTER = "atomic", "after"
HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
METHODS = ("POST", "PATCH", "DELETE")
_KEY = re.compile(r"^[\x20-\x7e]{1,255}$")
KEY_ERROR = "Must be 1 to 255 printable ASCII characters."


def check_mode(mode):
    if mode not in (ATOMIC, AFTER, None):
        raise ValueError(f"@endpoint idempotency must be ATOMIC, AFTER or None, got {mode!r}")
    return mode


def applies(spec, method):
    return spec.idempotency is not None and spec.requires_auth and method in METHODS


def fingerprint(method, path, raw_body):
    """The same request is the same method, path (with or without its final slash) and JSON body
    (whatever its key order and spacing); anything else under the same key is a misuse (422)."""
    try:
        body = (
            json.dumps(json.loads(raw_body), sort_keys=True, separators=(",", ":")).encode()
            if raw_body.strip()
            else b""
        )
    except ValueError:
        body = raw_body
    digest = hashlib.sha256(f"{method} {path.rstrip('/')}/\n".encode())
    digest.update(body)
    return digest.hexdigest()


async def begin(handler, spec):
    """Claim the request's key; True when a stored answer was sent instead (the handler must not run)."""
    key = handler.request.headers.get(HEADER)
    if key is None or not applies(spec, handler.request.method):
        return False
    if not _KEY.match(key):
        raise ValidationFailed(f"The {HEADER} header is not valid.", fields={HEADER: [KEY_ERROR]})
    found = await run_sync(
        idempotency.claim,
        handler.user.id,
        key,
        fingerprint(handler.request.method, handler.request.path, handler.raw_body),
        lease=handler.config.idempotency_lease,
    )
    if isinstance(found, idempotency.Replay):
        handler.set_status(found.status)
        handler.set_header(REPLAYED, "true")
        handler.finish(found.body or None)
        return True
    handler.idempotency_claim = found
    return False


def atomically(claim, spec, fn, *args, **kwargs):
    """`fn` (a domain call) and the key's `applied` mark in one transaction, with the answer as the
    endpoint would render `fn`'s result (the handler may still answer otherwise: stored when sent)."""
    with unit_of_work():
        result = fn(*args, **kwargs)
        idempotency.applied(claim, *_provisional(spec, result))
    return result


def _provisional(spec, result):
    if spec.status == 204 or spec.response is None:
        return spec.status, ""
    if spec.paginated:
        return None, None
    try:
        return spec.status, json.dumps(spec.response.dump(result))
    except Exception:  # not what the handler answers as is: only the answer sent will be stored
        return None, None


async def answered(handler):
    """Before the answer is sent (BaseHandler.finish): store it (the write buffer holds the whole body)."""
    claim, handler.idempotency_claim = handler.idempotency_claim, None
    status, body = handler.get_status(), b"".join(handler._write_buffer).decode("utf-8", "replace")
    try:
        await run_sync(idempotency.store, claim, status, body)
    except Exception:  # the answer still goes out; a retry gets 409 until the lease ends, then the provisional one
        log.warning("could not store an idempotent answer", exc_info=True)
