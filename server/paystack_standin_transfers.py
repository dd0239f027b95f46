"""The Paystack stand-in's transfer side: banks, account resolution, transfer recipients, transfers
and their `transfer.*` webhooks, answering as Paystack documents (`{status, message, data}`, kobo).

Like Paystack, a transfer reference is accepted once: sending it again is refused, so a client that
timed out and retries can never pay twice (it then asks `GET /transfer/verify/{reference}`). With
`ledger.transfer_outcome` set ("success" in the local checkout), a transfer settles on its own a
moment after it is accepted and the signed webhook is sent; tests leave it None and settle by hand.
"""
import asyncio
import json
import logging
import secrets

import tornado.httpclient

from server.paystack import SIGNATURE_HEADER, sign

log = logging.getLogger("serviceman.paystack.standin")

# A few of Paystack's Nigerian banks (name, code, slug), enough to pick from in development.
BANKS = [
    ("Access Bank", "044", "access-bank"), ("First Bank of Nigeria", "011", "first-bank-of-nigeria"),
    ("Guaranty Trust Bank", "058", "guaranty-trust-bank"), ("Kuda Bank", "50211", "kuda-bank"),
    ("Moniepoint MFB", "50515", "moniepoint-mfb-ng"), ("OPay Digital Services (OPay)", "999992", "paycom"),
    ("United Bank For Africa", "033", "united-bank-for-africa"), ("Zenith Bank", "057", "zenith-bank"),
]
BANK_CODES = {code for _, code, _ in BANKS}
# Resolved names for development; an account number ending in 0000 resolves to nobody.
HOLDERS = ["EMEKA CHUKWUDI OKONKWO", "TUNDE ADEBAYO BAKARE", "AMINA BELLO YUSUF", "CHIOMA NKEM EZE"]
SETTLED = ("success", "failed", "reversed")


def _now_iso():
    from server.paystack_standin import _now_iso as now

    return now()


def holder_name(account_number):
    return HOLDERS[int(account_number) % len(HOLDERS)]


def resolvable(account_number, bank_code):
    return (isinstance(account_number, str) and len(account_number) == 10 and account_number.isdigit()
            and bank_code in BANK_CODES and not account_number.endswith("0000"))


def settle_transfer(ledger, reference, status):
    """Move a transfer to `status` (success, failed, reversed); returns the data Paystack would send."""
    transfer = ledger.transfers[reference]
    transfer["status"], transfer["updatedAt"] = status, _now_iso()
    if status == "success":
        transfer["transferred_at"] = transfer["updatedAt"]
    elif status == "failed":
        transfer["reason"] = transfer.get("reason") or "Account could not be credited"
    return dict(transfer)


def transfer_webhook(ledger, reference, event=None):
    """(raw body, signature) of the `transfer.*` webhook for this transfer's current status."""
    data = dict(ledger.transfers[reference])
    raw = json.dumps({"event": event or f"transfer.{data['status']}", "data": data}).encode()
    return raw, sign(raw, ledger.secret_key)


async def send_transfer_webhook(ledger, reference, event=None):
    if not ledger.webhook_url:
        return None
    raw, signature = transfer_webhook(ledger, reference, event)
    try:
        response = await tornado.httpclient.AsyncHTTPClient().fetch(
            ledger.webhook_url, method="POST", body=raw, raise_error=False,
            headers={"Content-Type": "application/json", SIGNATURE_HEADER: signature})
    except OSError as exc:
        log.warning("stand-in transfer webhook to %s failed: %s", ledger.webhook_url, exc)
        return None
    ledger.webhooks_sent += 1
    return response.code


async def _settle_later(ledger, reference, status):
    await asyncio.sleep(ledger.transfer_delay)
    if ledger.transfers.get(reference, {}).get("status") == "pending":
        settle_transfer(ledger, reference, status)
        await send_transfer_webhook(ledger, reference)


def _body(handler):
    try:
        body = json.loads(handler.request.body or b"{}")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def transfer_handlers(api_handler):
    """The handler classes, built on the stand-in's ApiHandler (faults, auth, answer)."""

    class BankListHandler(api_handler):
        def get(self):
            if not self.authorized():
                return
            banks = [{"id": i + 1, "name": name, "slug": slug, "code": code, "longcode": "", "country": "Nigeria",
                      "currency": "NGN", "type": "nuban", "active": True, "is_deleted": False}
                     for i, (name, code, slug) in enumerate(BANKS)]
            try:
                per_page = max(1, int(self.get_query_argument("perPage", "50")))
                start = int(self.get_query_argument("next", "0") or 0)  # our cursor is an offset
            except ValueError:
                return self.answer(400, False, "Invalid pagination")
            following = start + per_page
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps({"status": True, "message": "Banks retrieved", "data": banks[start:following],
                                    "meta": {"next": str(following) if following < len(banks) else None,
                                             "previous": None, "perPage": per_page}}))

    class ResolveHandler(api_handler):
        def get(self):
            if not self.authorized():
                return
            number = self.get_query_argument("account_number", "")
            bank_code = self.get_query_argument("bank_code", "")
            if not resolvable(number, bank_code):
                return self.answer(422, False, "Could not resolve account name. Check parameters or try again.")
            self.answer(200, True, "Account number resolved",
                        {"account_number": number, "account_name": holder_name(number), "bank_id": 1})

    class RecipientHandler(api_handler):
        def post(self):
            if not self.authorized():
                return
            body = _body(self)
            if body is None:
                return self.answer(400, False, "Invalid JSON")
            number, bank_code = body.get("account_number"), body.get("bank_code")
            if body.get("type") != "nuban" or not body.get("name"):
                return self.answer(400, False, "Recipient type and name are required")
            if not resolvable(number, bank_code):
                return self.answer(400, False, "Account number is invalid")
            # Paystack answers the same recipient for the same account details.
            code = next((c for c, r in self.ledger.recipients.items()
                         if (r["details"]["account_number"], r["details"]["bank_code"]) == (number, bank_code)), None)
            if code is None:
                code = f"RCP_{secrets.token_hex(7)}"
                self.ledger.recipients[code] = {
                    "active": True, "currency": body.get("currency") or "NGN", "name": body["name"],
                    "recipient_code": code, "type": "nuban", "id": len(self.ledger.recipients) + 1,
                    "details": {"account_number": number, "account_name": holder_name(number),
                                "bank_code": bank_code, "bank_name": dict((c, n) for n, c, _ in BANKS)[bank_code]}}
            self.answer(201, True, "Transfer recipient created successfully", self.ledger.recipients[code])

    class TransferHandler(api_handler):
        def post(self):
            if not self.authorized():
                return
            body = _body(self)
            if body is None:
                return self.answer(400, False, "Invalid JSON")
            amount, reference, recipient = body.get("amount"), body.get("reference"), body.get("recipient")
            if body.get("source") != "balance":
                return self.answer(400, False, "Invalid transfer source")
            if not isinstance(amount, int) or amount <= 0:
                return self.answer(400, False, "Invalid amount")
            if recipient not in self.ledger.recipients:
                return self.answer(400, False, "Recipient specified is invalid")
            if not isinstance(reference, str) or not reference:
                return self.answer(400, False, "Reference is required")
            if reference in self.ledger.transfers:
                return self.answer(400, False, "Duplicate Transfer Reference")
            self.ledger.transfers[reference] = {
                "id": len(self.ledger.transfers) + 1, "domain": "test", "integration": 1, "source": "balance",
                "amount": amount, "currency": body.get("currency") or "NGN", "reason": body.get("reason") or "",
                "reference": reference, "status": "pending", "transfer_code": f"TRF_{secrets.token_hex(7)}",
                "recipient": self.ledger.recipients[recipient], "transferred_at": None,
                "createdAt": _now_iso(), "updatedAt": _now_iso()}
            if self.ledger.transfer_outcome in SETTLED:
                asyncio.get_running_loop().create_task(
                    _settle_later(self.ledger, reference, self.ledger.transfer_outcome))
            data = {key: value for key, value in self.ledger.transfers[reference].items() if key != "recipient"}
            self.answer(200, True, "Transfer has been queued", {**data, "recipient": self.ledger.recipients[
                recipient]["id"]})

    class TransferVerifyHandler(api_handler):
        def get(self, reference):
            if not self.authorized():
                return
            if reference not in self.ledger.transfers:
                return self.answer(404, False, "Transfer not found")
            self.answer(200, True, "Transfer retrieved", dict(self.ledger.transfers[reference]))

    return BankListHandler, ResolveHandler, RecipientHandler, TransferHandler, TransferVerifyHandler


def transfer_routes(ledger, api_handler, prefix=""):
    banks, resolve, recipient, transfer, verify = transfer_handlers(api_handler)
    args = {"ledger": ledger}
    return [
        (rf"{prefix}/bank", banks, args),
        (rf"{prefix}/bank/resolve", resolve, args),
        (rf"{prefix}/transferrecipient", recipient, args),
        (rf"{prefix}/transfer", transfer, args),
        (rf"{prefix}/transfer/verify/(?P<reference>[^/]+)", verify, args),
    ]
