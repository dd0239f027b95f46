"""What both halves of the Paystack stand-in share (charges and refunds in paystack_standin.py,
transfers in paystack_standin_transfers.py): Paystack's timestamps, the request handlers' base (the
recorded calls, the queued faults, the Bearer check, Paystack's `{status, message, data}` envelope)
and the one poster of signed webhooks, which wakes `ledger.changed` for the tests that wait on it.
"""

import asyncio
import json
import logging
from datetime import UTC, datetime

import tornado.httpclient
import tornado.web

from models.foundation.paystack import SIGNATURE_HEADER

log = logging.getLogger("serviceman.paystack.standin")


def now_iso():
    return iso(datetime.now(UTC))


def iso(moment):
    """A moment as Paystack writes it: UTC, milliseconds, a `Z`."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class StandinHandler(tornado.web.RequestHandler):
    def initialize(self, ledger):
        self.ledger = ledger

    def set_default_headers(self):
        self.clear_header("Server")

    def prepare(self):
        self.ledger.calls.append((self.request.method, self.request.path))


class ApiHandler(StandinHandler):
    """Paystack's JSON API; the next queued fault, if any, is played instead of the answer."""

    async def prepare(self):
        super().prepare()
        self.ledger.requests.append(
            (
                self.request.method,
                self.request.path,
                {k: self.get_query_argument(k) for k in self.request.query_arguments},
                self._json_or_none(),
            )
        )
        if self.ledger.faults:
            fault = self.ledger.faults.pop(0)
            if fault == "timeout":
                await asyncio.sleep(self.ledger.fault_delay)
            elif fault == "error":
                self.set_status(503)
                return self.finish("<html>Service Unavailable</html>")
            elif fault == "garbage":
                return self.finish("not json")
            elif fault == "refused":
                return self.answer(400, False, "The stand-in refuses this request")

    def _json_or_none(self):
        try:
            return json.loads(self.request.body) if self.request.body else None
        except ValueError:
            return None

    def json_object(self):
        """The request's JSON object (an empty body is `{}`), or None when it is not one."""
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    def answer(self, status_code, ok, message, data=None, meta=None):
        """Paystack's envelope: `{status, message, data[, meta]}`, or on an error `{status: false,
        message, type, code}` (openapi components/schemas/Error.yaml)."""
        self.set_status(status_code)
        self.set_header("Content-Type", "application/json")
        body = {"status": ok, "message": message}
        if data is not None:
            body["data"] = data
        if meta is not None:
            body["meta"] = meta
        if not ok:
            kind = "validation_error" if status_code in (400, 422) else "api_error"
            body.update(type=kind, code=kind, meta={"nextStep": "Check the request and try again."})
        self.finish(json.dumps(body))

    def authorized(self):
        if self.request.headers.get("Authorization") != f"Bearer {self.ledger.secret_key}":
            self.answer(401, False, "Invalid key")
            return False
        return True


async def post_signed(ledger, raw, signature, label):
    """POST a signed event to the webhook URL, as Paystack does (it retries on failure; we log), and
    wake whoever waits on `ledger.changed`."""
    if not ledger.webhook_url:
        return None
    client = tornado.httpclient.AsyncHTTPClient()
    try:
        response = await client.fetch(
            ledger.webhook_url,
            method="POST",
            body=raw,
            raise_error=False,
            headers={"Content-Type": "application/json", SIGNATURE_HEADER: signature},
        )
    except OSError as exc:
        log.warning("stand-in webhook to %s failed: %s", ledger.webhook_url, exc)
        return None
    with ledger.changed:
        ledger.webhooks_sent += 1
        ledger.changed.notify_all()
    log.info("stand-in webhook %s answered %s", label, response.code)
    return response.code
