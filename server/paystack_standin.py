"""A Paystack stand-in that follows Paystack's documented API: the local checkout for development
(no keys needed) and the fake the tests talk to over loopback.

It answers `POST /transaction/initialize` and `GET /transaction/verify/{reference}` as Paystack does
(`{status, message, data}`, amounts in kobo, Bearer secret key), serves a checkout page per access
code whose Pay button marks the transaction paid, sends a correctly signed `charge.success` to the
webhook URL and redirects to the callback URL. Refunds: `POST /refund`, `GET /refund` (paged by
`perPage`, `page`, `from`, `to`, newest first, with `meta`; like Paystack it has no per-transaction
filter), `GET /refund/{id}` and `POST /refund/retry_with_customer_details/{id}`; with
`refund_delay` set (the local checkout) a refund is processed that many seconds later and
`refund.processed` is sent, otherwise a test settles it (`settle_refund`, any documented status) and
delivers `refund_webhook(...)` itself. Errors use Paystack's envelope (`status: false`, `message`,
`type`, `code`). The shapes follow Paystack's OpenAPI document (github.com/PaystackOSS/openapi,
src/assets/openapi/...), written down in tests/paystack_schemas.py and checked by the suite.
Never mounted with ENV=production.
"""

import asyncio
import html
import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlencode

import tornado.httpserver
import tornado.web

from models.foundation.paystack import sign
from server.paystack_standin_base import ApiHandler, StandinHandler, iso, now_iso, post_signed
from server.paystack_standin_transfers import transfer_routes

# Paystack: "Unique transaction reference. Only -, ., = and alphanumeric characters allowed."
# (openapi components/schemas/TransactionInitialize.yaml)
TRANSACTION_REFERENCE = re.compile(r"^[A-Za-z0-9.=-]{1,100}$")
REFUND_STATUSES = ("pending", "processing", "processed", "failed", "needs-attention")
# Paystack's refund.* webhooks for these carry no refund id (https://paystack.com/docs/payments/refunds/).
REFUND_EVENTS_WITHOUT_ID = ("pending", "processing", "processed")


def _parse_iso(text):
    """A `from`/`to` query value, or None when it is not an ISO 8601 date-time."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def local_card_fees(amount_kobo):
    """Paystack's published price for a local (Nigerian) card payment, in kobo as `data.fees` carries
    it: 1.5% plus NGN 100, the NGN 100 waived under NGN 2,500, capped at NGN 2,000."""
    fees = amount_kobo * 15 // 1000 + (10_000 if amount_kobo >= 250_000 else 0)
    return min(fees, 200_000)


@dataclass
class Ledger:
    """What the stand-in knows, and the knobs tests turn to make it misbehave."""

    secret_key: str
    base_url: str = ""  # where its own checkout pages are served
    webhook_url: str = ""  # where Pay sends charge.success
    transactions: dict = field(default_factory=dict)
    calls: list = field(default_factory=list)
    # Every API request as sent: (method, path, query {name: value}, JSON body or None); tests check
    # the client's requests against the documented request schemas.
    requests: list = field(default_factory=list)
    faults: list = field(default_factory=list)  # next calls: "timeout", "error", "garbage", "refused"
    fault_delay: float = 2.0  # how long a "timeout" fault sleeps
    webhooks_sent: int = 0
    # Transfers (server/paystack_standin_transfers.py): recipients by code, transfers by reference,
    # and how a new transfer settles on its own (None: it stays pending until a test settles it).
    recipients: dict = field(default_factory=dict)
    transfers: dict = field(default_factory=dict)
    transfer_outcome: str = None
    transfer_delay: float = 0.2
    transfer_otp: str = "123456"  # the OTP "sent to the business's phone" for `otp` transfers
    otp_outcome: str = "pending"  # where a finalized transfer goes
    refunds: dict = field(default_factory=dict)
    refund_delay: float = None  # seconds until a refund is processed by itself; None: a test decides
    refund_outcome: str = None  # with refund_delay: the status a refund settles in (default processed)
    refund_clock: object = None  # tests: a function giving a refund's createdAt (datetime); default now
    # Notified when a refund is made or a webhook delivered (tests wait on it: `wait_until`).
    changed: threading.Condition = field(default_factory=threading.Condition)

    def wait_until(self, predicate, timeout=10):
        """Block (a test's thread) until `predicate()` holds, e.g. a slow request finally made a refund."""
        with self.changed:
            return self.changed.wait_for(predicate, timeout)

    def fail_next(self, *faults):
        self.faults.extend(faults)

    def charge(self, reference, amount=None, currency=None, status="success", customer_fees=0, fees=None):
        """Mark a transaction paid (or otherwise: failed, reversed, abandoned, ...); returns the data
        object Paystack would send. `amount` makes it a transaction for another price; `customer_fees`
        (kobo) plays a business that passes Paystack's fees to the customer: `amount` then includes
        them and `requested_amount` stays the price. `fees` (kobo): what Paystack keeps of it; by
        default its local card pricing."""
        tx = self.transactions[reference]
        tx["status"] = status
        if amount is not None:
            tx["amount"] = tx["requested_amount"] = amount
        if customer_fees:
            tx["amount"] = tx["requested_amount"] + customer_fees
        if currency is not None:
            tx["currency"] = currency
        if status == "success":
            tx["paid_at"] = tx["paidAt"] = now_iso()
            tx["gateway_response"] = "Successful"
            tx["fees"] = fees if fees is not None or type(tx["amount"]) is not int else local_card_fees(tx["amount"])
        return self.data(reference)

    def data(self, reference):
        tx = self.transactions[reference]
        return {key: value for key, value in tx.items() if key not in ("access_code", "callback_url")}

    def webhook(self, reference, event="charge.success"):
        """(raw body, signature) of the webhook Paystack would send for this transaction."""
        raw = json.dumps({"event": event, "data": self.data(reference)}).encode()
        return raw, sign(raw, self.secret_key)

    # --- refunds ---

    def transaction(self, id_or_reference):
        """A transaction by its reference or (as Paystack also accepts) its numeric id."""
        if id_or_reference in self.transactions:
            return self.transactions[id_or_reference]
        return next((tx for tx in self.transactions.values() if str(tx["id"]) == str(id_or_reference)), None)

    def refunded_kobo(self, reference):
        return sum(
            r["amount"]
            for r in self.refunds.values()
            if r["transaction"]["reference"] == reference and r["status"] != "failed"
        )

    def create_refund(self, tx, amount, currency, merchant_note="", customer_note=""):
        refund_id = len(self.refunds) + 3018284
        created = iso(self.refund_clock()) if self.refund_clock else now_iso()
        self.refunds[refund_id] = {
            "id": refund_id,
            "integration": 100032,
            "domain": "test",
            "dispute": None,
            "settlement": None,
            "transaction": {"id": tx["id"], "reference": tx["reference"], "amount": tx["amount"]},
            "transaction_reference": tx["reference"],
            "transaction_amount": tx["amount"],
            "amount": amount,
            "deducted_amount": 0,
            "fully_deducted": False,
            "currency": currency,
            "channel": tx["channel"],
            "refunded_by": "standin@serviceman.local",
            "refunded_at": None,
            "expected_at": created,
            "customer_note": customer_note,
            "merchant_note": merchant_note,
            "status": "pending",
            "createdAt": created,
            "updatedAt": created,
            "reason": "",
            "bank_reference": None,
            "refund_type": "full" if amount == tx["amount"] else "partial",
            "initiated_by": "api",
            "refund_channel": tx["channel"],
            "session_id": None,
            "collect_account_number": False,
            "customer": dict(tx["customer"]),
        }
        with self.changed:
            self.changed.notify_all()
        return self.refunds[refund_id]

    def settle_refund(self, refund_id, status="processed"):
        """Move a refund to any of Paystack's statuses (pending, processing, processed, failed,
        needs-attention)."""
        if status not in REFUND_STATUSES:
            raise ValueError(f"not a Paystack refund status: {status!r}")
        refund = self.refunds[refund_id]
        refund["status"], refund["updatedAt"] = status, now_iso()
        refund["collect_account_number"] = status == "needs-attention"
        if status == "processed":
            refund["refunded_at"] = now_iso()
        return refund

    def listed_refund(self, refund):
        """A refund as List/Fetch Refund show it: `transaction` is the transaction's id
        (openapi components/schemas/RefundListResponseArray.yaml)."""
        return {**refund, "transaction": refund["transaction"]["id"], "fully_deducted": int(refund["fully_deducted"])}

    def refunds_of(self, reference):
        return [r for r in self.refunds.values() if r["transaction"]["reference"] == reference]

    def refund_webhook(self, refund_id, event=None, with_id=None):
        """(raw body, signature) of Paystack's `refund.<status>` webhook for this refund, shaped as
        Paystack documents it: the amount in kobo as a string, and no refund id on refund.pending,
        refund.processing and refund.processed (`with_id` overrides, for tests of other shapes)."""
        refund = self.refunds[refund_id]
        if with_id is None:
            with_id = refund["status"] not in REFUND_EVENTS_WITHOUT_ID
        data = {
            "status": refund["status"],
            "transaction_reference": refund["transaction"]["reference"],
            "refund_reference": f"RF{refund_id}" if refund["status"] == "processed" else None,
            "amount": str(refund["amount"]),
            "currency": refund["currency"],
            "processor": "standin",
            "customer": {"first_name": "", "last_name": "", "email": refund["customer"]["email"]},
            "integration": 100032,
            "domain": "test",
        }
        if with_id:
            data["id"] = str(refund_id)
        raw = json.dumps({"event": event or f"refund.{refund['status']}", "data": data}).encode()
        return raw, sign(raw, self.secret_key)

    def by_access_code(self, access_code):
        return next((tx for tx in self.transactions.values() if tx["access_code"] == access_code), None)


class InitializeHandler(ApiHandler):
    def post(self):
        if not self.authorized():
            return
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            return self.answer(400, False, "Invalid JSON")
        amount, reference = body.get("amount"), body.get("reference") or secrets.token_hex(8)
        if not isinstance(reference, str) or not TRANSACTION_REFERENCE.match(reference):
            return self.answer(
                400, False, "Invalid transaction reference: only -, ., = and alphanumeric characters allowed"
            )
        if not isinstance(amount, int) or amount <= 0:
            return self.answer(400, False, "Invalid Amount Sent")
        if not body.get("email"):
            return self.answer(400, False, "Invalid Email Address Passed")
        if reference in self.ledger.transactions:
            return self.answer(400, False, "Duplicate Transaction Reference")
        access_code = secrets.token_hex(8)
        self.ledger.transactions[reference] = {
            "id": len(self.ledger.transactions) + 1,
            "domain": "test",
            "status": "abandoned",
            "reference": reference,
            "amount": amount,
            "requested_amount": amount,
            "currency": body.get("currency") or "NGN",
            "gateway_response": "The transaction was not completed",
            "paid_at": None,
            "paidAt": None,
            "fees": None,
            "created_at": now_iso(),
            "channel": "card",
            "metadata": body.get("metadata") or {},
            "customer": {"id": 1, "email": body["email"], "customer_code": "CUS_standin"},
            "access_code": access_code,
            "callback_url": body.get("callback_url") or "",
        }
        self.answer(
            200,
            True,
            "Authorization URL created",
            {
                "authorization_url": f"{self.ledger.base_url}/checkout/{access_code}",
                "access_code": access_code,
                "reference": reference,
            },
        )


class VerifyHandler(ApiHandler):
    def get(self, reference):
        if not self.authorized():
            return
        if reference not in self.ledger.transactions:
            return self.answer(400, False, "Transaction reference not found")
        self.answer(200, True, "Verification successful", self.ledger.data(reference))


class RefundsHandler(ApiHandler):
    def post(self):
        if not self.authorized():
            return
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            return self.answer(400, False, "Invalid JSON")
        tx = self.ledger.transaction(str(body.get("transaction") or ""))
        if tx is None:
            return self.answer(404, False, "Transaction not found")
        if tx["status"] != "success":
            return self.answer(400, False, "Cannot refund a transaction that was not successful")
        left = tx["amount"] - self.ledger.refunded_kobo(tx["reference"])
        amount = body.get("amount", left)
        if not isinstance(amount, int) or amount <= 0:
            return self.answer(400, False, "Invalid amount")
        if amount > left:
            return self.answer(400, False, "Refund amount cannot be more than the transaction amount left")
        refund = self.ledger.create_refund(
            tx,
            amount,
            body.get("currency") or tx["currency"],
            body.get("merchant_note") or "",
            body.get("customer_note") or "",
        )
        refund = {**refund, "transaction": dict(tx_summary(tx))}
        if self.ledger.refund_delay is not None:
            ledger, refund_id = self.ledger, refund["id"]
            asyncio.get_running_loop().call_later(
                ledger.refund_delay, lambda: asyncio.ensure_future(process_refund_later(ledger, refund_id))
            )
        self.answer(200, True, "Refund has been queued for processing", refund)

    def get(self):
        """List Refunds as Paystack documents it (openapi paths/refund.yaml): perPage (default 50),
        page, from, to; newest first; anything else (e.g. `transaction`) is ignored."""
        if not self.authorized():
            return
        try:
            per_page = max(1, min(int(self.get_query_argument("perPage", "50")), 100))
            page = max(1, int(self.get_query_argument("page", "1")))
        except ValueError:
            return self.answer(400, False, "Invalid pagination parameters")
        since, until = (self.get_query_argument(name, None) for name in ("from", "to"))
        window = [_parse_iso(v) if v else None for v in (since, until)]
        if any(v and w is None for v, w in zip((since, until), window, strict=True)):
            return self.answer(400, False, "Invalid date")
        refunds = sorted(self.ledger.refunds.values(), key=lambda r: (r["createdAt"], r["id"]), reverse=True)
        refunds = [
            r
            for r in refunds
            if (window[0] is None or _parse_iso(r["createdAt"]) >= window[0])
            and (window[1] is None or _parse_iso(r["createdAt"]) <= window[1])
        ]
        shown = refunds[(page - 1) * per_page : page * per_page]
        self.answer(
            200,
            True,
            "Refunds retrieved",
            [self.ledger.listed_refund(r) for r in shown],
            meta={
                "total": len(refunds),
                "skipped": (page - 1) * per_page,
                "perPage": str(per_page),
                "page": page,
                "pageCount": max(1, -(-len(refunds) // per_page)),
                "failedRefundCount": sum(r["status"] == "failed" for r in refunds),
            },
        )


def named_refund(handler, refund_id):
    """The refund named in the path (authorized), or None once a refusal has been answered."""
    if not handler.authorized():
        return None
    refund = handler.ledger.refunds.get(int(refund_id))
    if refund is None:
        handler.answer(404, False, "Refund not found")
    return refund


class RefundHandler(ApiHandler):
    def get(self, refund_id):
        refund = named_refund(self, refund_id)
        if refund is not None:
            self.answer(200, True, "Refund retrieved", self.ledger.listed_refund(refund))


class RefundRetryHandler(ApiHandler):
    """Retry a `needs-attention` refund with the customer's bank account (openapi
    paths/refund_retry_with_customer_details_{id}.yaml, body RefundRetry)."""

    def post(self, refund_id):
        refund = named_refund(self, refund_id)
        if refund is None:
            return
        details = (self._json_or_none() or {}).get("refund_account_details")
        if not isinstance(details, dict) or not all(
            isinstance(details.get(k), str) and details[k] for k in ("currency", "account_number", "bank_id")
        ):
            return self.answer(400, False, "refund_account_details needs currency, account_number and bank_id")
        if refund["status"] != "needs-attention":
            return self.answer(400, False, "Only a refund that needs attention can be retried")
        if details["currency"] != refund["currency"]:
            return self.answer(400, False, "The account's currency must be the payment's")
        self.ledger.settle_refund(refund["id"], "processing")
        data = {**refund, "transaction": refund["transaction"]["id"], "reversed_at": None}
        self.answer(200, True, "Refund retried", data)


def tx_summary(tx):
    """The transaction inside Create Refund's answer (openapi components/schemas/RefundCreateResponse.yaml)."""
    return {
        "id": tx["id"],
        "domain": tx["domain"],
        "reference": tx["reference"],
        "amount": tx["amount"],
        "paid_at": tx["paid_at"],
        "channel": tx["channel"],
        "currency": tx["currency"],
        "authorization": {"exp_month": None, "exp_year": None, "account_name": None},
        "customer": {"international_format_phone": None},
        "plan": {},
        "subaccount": {"currency": None},
        "split": {},
        "order_id": None,
        "paidAt": tx["paidAt"],
        "pos_transaction_data": None,
        "source": None,
        "fees_breakdown": None,
    }


async def process_refund_later(ledger, refund_id):
    """The local checkout's refunds land by themselves (`refund_outcome`, processed by default),
    then the signed webhook."""
    if ledger.refunds[refund_id]["status"] in ("pending", "processing"):
        status = ledger.refund_outcome or "processed"
        ledger.settle_refund(refund_id, status)
        await post_signed(ledger, *ledger.refund_webhook(refund_id), label=f"refund.{status} for refund {refund_id}")


CHECKOUT_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Local checkout</title>
<style>body{{font-family:sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem}}
.box{{border:1px solid #ccc;border-radius:8px;padding:1.5rem}}button{{font-size:1.1rem;padding:.6rem 1.4rem}}
.note{{color:#666;font-size:.9rem}}</style></head>
<body><div class="box"><h1>Serviceman local checkout</h1>
<p>{email} pays <strong>NGN {naira}</strong> ({kobo} kobo).</p><p>Reference: <code>{reference}</code></p>
<form method="post" action="{action}"><button type="submit">Pay NGN {naira}</button></form>
<p class="note">A development stand-in for Paystack: no money moves. Pay sends a signed
<code>charge.success</code> webhook, then returns to the app.</p></div></body></html>"""

DONE_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Payment done</title></head>
<body style="font-family:sans-serif;max-width:28rem;margin:3rem auto"><h1>Payment complete</h1>
<p>Reference <code>{reference}</code>. The booking moves on as soon as the webhook is processed; an app
would now call <code>GET /api/payments/verify/{reference}/</code>.</p></body></html>"""


class CheckoutHandler(StandinHandler):
    def set_default_headers(self):
        super().set_default_headers()
        self.set_header(
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        )

    def get(self, access_code):
        tx = self.ledger.by_access_code(access_code)
        if tx is None:
            raise tornado.web.HTTPError(404)
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish(
            CHECKOUT_PAGE.format(
                email=html.escape(tx["customer"]["email"]),
                naira=f"{tx['amount'] / 100:,.2f}",
                kobo=tx["amount"],
                reference=html.escape(tx["reference"]),
                action=self.reverse_url("checkout-pay", access_code),
            )
        )

    async def post(self, access_code):
        tx = self.ledger.by_access_code(access_code)
        if tx is None:
            raise tornado.web.HTTPError(404)
        if tx["status"] != "success":
            self.ledger.charge(tx["reference"])
            await send_webhook(self.ledger, tx["reference"])
        callback = tx["callback_url"] or f"{self.ledger.base_url}/done"
        separator = "&" if "?" in callback else "?"
        self.redirect(f"{callback}{separator}{urlencode({'trxref': tx['reference'], 'reference': tx['reference']})}")


class DoneHandler(StandinHandler):
    def get(self):
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish(DONE_PAGE.format(reference=html.escape(self.get_query_argument("reference", ""))))


async def send_webhook(ledger, reference, event="charge.success"):
    """POST the signed event to the webhook URL, as Paystack does (it retries on failure; we log)."""
    return await post_signed(ledger, *ledger.webhook(reference, event), label=f"{event} for {reference}")


def standin_routes(ledger, prefix=""):
    args = {"ledger": ledger}
    return transfer_routes(ledger, prefix) + [
        (rf"{prefix}/transaction/initialize", InitializeHandler, args),
        (rf"{prefix}/transaction/verify/(?P<reference>[^/]+)", VerifyHandler, args),
        (rf"{prefix}/refund", RefundsHandler, args),
        (rf"{prefix}/refund/(?P<refund_id>[0-9]{{1,12}})", RefundHandler, args),
        (rf"{prefix}/refund/retry_with_customer_details/(?P<refund_id>[0-9]{{1,12}})", RefundRetryHandler, args),
        tornado.web.url(rf"{prefix}/checkout/(?P<access_code>[0-9a-f]+)", CheckoutHandler, args, name="checkout"),
        tornado.web.url(
            rf"{prefix}/checkout/(?P<access_code>[0-9a-f]+)/pay", CheckoutHandler, args, name="checkout-pay"
        ),
        (rf"{prefix}/done", DoneHandler, args),
    ]


class StandinServer:
    """The stand-in on its own loopback port and thread (tests): `start()`, `.url`, `.ledger`, `stop()`."""

    def __init__(self, secret_key, webhook_url=""):
        self.ledger = Ledger(secret_key=secret_key, webhook_url=webhook_url)
        self._loop = None
        self._server = None
        self._ready = threading.Event()
        self.url = ""

    def start(self):
        self._thread = threading.Thread(target=self._run, name="paystack-standin", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the Paystack stand-in did not start")
        return self

    def _run(self):
        async def main():
            import tornado.netutil

            self._loop = asyncio.get_running_loop()
            sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
            port = sockets[0].getsockname()[1]
            self.url = f"http://127.0.0.1:{port}"
            self.ledger.base_url = self.url
            self._server = tornado.httpserver.HTTPServer(tornado.web.Application(standin_routes(self.ledger)))
            self._server.add_sockets(sockets)
            self._stopped = asyncio.Event()
            self._ready.set()
            await self._stopped.wait()
            self._server.stop()

        asyncio.run(main())

    def stop(self):
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(5)
