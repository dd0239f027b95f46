"""The Paystack stand-in's transfer side: banks, account resolution, transfer recipients, transfers
and their `transfer.*` webhooks, answering as Paystack documents (`{status, message, data}`, kobo).

Like Paystack, a transfer reference is accepted once: sending it again is refused, so a client that
timed out and retries can never pay twice (it then asks `GET /transfer/verify/{reference}`). With
`ledger.transfer_outcome` set ("success" in the local checkout), a transfer settles on its own a
moment after it is accepted and the signed webhook is sent; tests leave it None and settle by hand.
Every documented outcome can be played (`transfer_outcome`): "otp" (held until
`POST /transfer/finalize_transfer` with `ledger.transfer_otp`), "success_at_once" (the answer to the
transfer is already `success`), "received", and the settling ones success, failed, reversed,
abandoned, blocked, rejected. Bank list entries carry Paystack's `supports_transfer`/`is_deleted`
flags and the cursor is opaque.
"""

import asyncio
import base64
import json
import re
import secrets

from models.foundation.paystack import sign
from server.paystack_standin_base import ApiHandler, now_iso, post_signed

# A few of Paystack's Nigerian banks (name, code, slug), enough to pick from in development.
BANKS = [
    ("Access Bank", "044", "access-bank"),
    ("First Bank of Nigeria", "011", "first-bank-of-nigeria"),
    ("Guaranty Trust Bank", "058", "guaranty-trust-bank"),
    ("Kuda Bank", "50211", "kuda-bank"),
    ("Moniepoint MFB", "50515", "moniepoint-mfb-ng"),
    ("OPay Digital Services (OPay)", "999992", "paycom"),
    ("United Bank For Africa", "033", "united-bank-for-africa"),
    ("Zenith Bank", "057", "zenith-bank"),
]
BANK_CODES = {code for _, code, _ in BANKS}
# Listed by Paystack but unable to receive transfers: one that does not take them, one deleted.
NO_TRANSFER_BANKS = [
    ("Paystack-Titan Pay-with-Bank Only", "100039", "titan-pay-with-bank", False, False),
    ("Defunct Savings Bank", "090999", "defunct-savings-bank", True, True),
]
# Resolved names for development; an account number ending in 0000 resolves to nobody.
HOLDERS = ["EMEKA CHUKWUDI OKONKWO", "TUNDE ADEBAYO BAKARE", "AMINA BELLO YUSUF", "CHIOMA NKEM EZE"]
SETTLED = ("success", "failed", "reversed", "abandoned", "blocked", "rejected")
# Paystack: "a lowercase alphanumeric string with only -,_ symbols allowed" (openapi
# components/schemas/TransferBase.yaml; its `minimum: 16` is taken as a length).
TRANSFER_REFERENCE = re.compile(r"^[a-z0-9_-]{16,100}$")
FAILURE_CAUSES = {
    "failed": "Account could not be credited",
    "abandoned": "The OTP was never entered",
    "blocked": "Transfer blocked by the receiving bank",
    "rejected": "Transfer rejected",
    "reversed": "Transfer reversed by the receiving bank",
}


def bank_list():
    """Paystack's List Banks entries (openapi components/schemas/MiscellaneousListBanksResponseArray.yaml)."""
    rows = [(name, code, slug, True, False) for name, code, slug in BANKS] + NO_TRANSFER_BANKS
    return [
        {
            "id": i + 1,
            "name": name,
            "slug": slug,
            "code": code,
            "longcode": "",
            "gateway": None,
            "pay_with_bank": False,
            "supports_transfer": supports,
            "available_for_direct_debit": False,
            "active": True,
            "is_deleted": deleted,
            "country": "Nigeria",
            "currency": "NGN",
            "type": "nuban",
            "createdAt": "2016-07-14T10:04:29.000Z",
            "updatedAt": "2024-01-10T08:00:00.000Z",
        }
        for i, (name, code, slug, supports, deleted) in enumerate(rows)
    ]


def _cursor(offset):
    return base64.urlsafe_b64encode(f"YmFuazo{offset}".encode()).decode().rstrip("=")


def _offset(cursor):
    """The offset behind an opaque cursor, or None when it is not one of ours."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    return int(text[7:]) if text.startswith("YmFuazo") and text[7:].isdigit() else None


def holder_name(account_number):
    return HOLDERS[int(account_number) % len(HOLDERS)]


def resolvable(account_number, bank_code):
    return (
        isinstance(account_number, str)
        and len(account_number) == 10
        and account_number.isdigit()
        and bank_code in BANK_CODES
        and not account_number.endswith("0000")
    )


def settle_transfer(ledger, reference, status):
    """Move a transfer to any of Paystack's statuses; returns the data Paystack would send. The cause
    of a failure is in `gateway_response` and `failures`; `reason` stays the narration we sent."""
    transfer = ledger.transfers[reference]
    transfer["status"], transfer["updatedAt"] = status, now_iso()
    if status == "success":
        transfer["transferred_at"] = transfer["updatedAt"]
    elif status in FAILURE_CAUSES:
        transfer["gateway_response"] = FAILURE_CAUSES[status]
        transfer["failures"] = [{"message": FAILURE_CAUSES[status]}]
    return dict(transfer)


def transfer_webhook(ledger, reference, event=None):
    """(raw body, signature) of the `transfer.*` webhook for this transfer's current status."""
    data = dict(ledger.transfers[reference])
    raw = json.dumps({"event": event or f"transfer.{data['status']}", "data": data}).encode()
    return raw, sign(raw, ledger.secret_key)


async def send_transfer_webhook(ledger, reference, event=None):
    raw, signature = transfer_webhook(ledger, reference, event)
    return await post_signed(ledger, raw, signature, label=f"{event or 'transfer'} for {reference}")


async def _settle_later(ledger, reference, status):
    await asyncio.sleep(ledger.transfer_delay)
    if ledger.transfers.get(reference, {}).get("status") in ("pending", "received"):
        settle_transfer(ledger, reference, status)
        await send_transfer_webhook(ledger, reference)


class BankListHandler(ApiHandler):
    def get(self):
        if not self.authorized():
            return
        banks = bank_list()
        try:
            per_page = max(1, int(self.get_query_argument("perPage", "50")))
        except ValueError:
            return self.answer(400, False, "Invalid pagination")
        cursor = self.get_query_argument("next", "")
        start = _offset(cursor) if cursor else 0
        if start is None:
            return self.answer(400, False, "Invalid cursor")
        following = start + per_page
        self.answer(
            200,
            True,
            "Banks retrieved",
            banks[start:following],
            meta={
                "next": _cursor(following) if following < len(banks) else None,
                "previous": _cursor(max(0, start - per_page)) if start else None,
                "perPage": per_page,
            },
        )


class ResolveHandler(ApiHandler):
    def get(self):
        if not self.authorized():
            return
        number = self.get_query_argument("account_number", "")
        bank_code = self.get_query_argument("bank_code", "")
        if not resolvable(number, bank_code):
            return self.answer(422, False, "Could not resolve account name. Check parameters or try again.")
        self.answer(
            200,
            True,
            "Account number resolved",
            {"account_number": number, "account_name": holder_name(number), "bank_id": 1},
        )


class RecipientHandler(ApiHandler):
    def post(self):
        if not self.authorized():
            return
        body = self.json_object()
        if body is None:
            return self.answer(400, False, "Invalid JSON")
        number, bank_code = body.get("account_number"), body.get("bank_code")
        if body.get("type") != "nuban" or not body.get("name"):
            return self.answer(400, False, "Recipient type and name are required")
        if not resolvable(number, bank_code):
            return self.answer(400, False, "Account number is invalid")
        # Paystack answers the same recipient for the same account details.
        code = next(
            (
                c
                for c, r in self.ledger.recipients.items()
                if (r["details"]["account_number"], r["details"]["bank_code"]) == (number, bank_code)
            ),
            None,
        )
        if code is None:
            code = f"RCP_{secrets.token_hex(7)}"
            self.ledger.recipients[code] = {
                "active": True,
                "currency": body.get("currency") or "NGN",
                "name": body["name"],
                "recipient_code": code,
                "type": "nuban",
                "id": len(self.ledger.recipients) + 1,
                "details": {
                    "account_number": number,
                    "account_name": holder_name(number),
                    "bank_code": bank_code,
                    "bank_name": dict((c, n) for n, c, _ in BANKS)[bank_code],
                },
            }
        self.answer(201, True, "Transfer recipient created successfully", self.ledger.recipients[code])


class TransferHandler(ApiHandler):
    def post(self):
        if not self.authorized():
            return
        body = self.json_object()
        if body is None:
            return self.answer(400, False, "Invalid JSON")
        amount, reference, recipient = body.get("amount"), body.get("reference"), body.get("recipient")
        if body.get("source") != "balance":
            return self.answer(400, False, "Invalid transfer source")
        if not isinstance(amount, int) or amount <= 0:
            return self.answer(400, False, "Invalid amount")
        if recipient not in self.ledger.recipients:
            return self.answer(400, False, "Recipient specified is invalid")
        if not isinstance(reference, str) or not TRANSFER_REFERENCE.match(reference):
            return self.answer(
                400, False, "Invalid transfer reference: a lowercase alphanumeric string with only -,_ symbols allowed"
            )
        if reference in self.ledger.transfers:
            return self.answer(400, False, "Duplicate Transfer Reference")
        self.ledger.transfers[reference] = {
            "id": len(self.ledger.transfers) + 1,
            "domain": "test",
            "integration": 1,
            "source": "balance",
            "amount": amount,
            "currency": body.get("currency") or "NGN",
            "reason": body.get("reason") or "",
            "reference": reference,
            "status": "pending",
            "transfer_code": f"TRF_{secrets.token_hex(7)}",
            "recipient": self.ledger.recipients[recipient],
            "transferred_at": None,
            "failures": None,
            "source_details": None,
            "titan_code": None,
            "gateway_response": None,
            "session": {"provider": None, "id": None},
            "createdAt": now_iso(),
            "updatedAt": now_iso(),
        }
        outcome = self.ledger.transfer_outcome
        if outcome in ("otp", "received"):
            settle_transfer(self.ledger, reference, outcome)
        elif outcome == "success_at_once":
            settle_transfer(self.ledger, reference, "success")
        elif outcome in SETTLED:
            asyncio.get_running_loop().create_task(_settle_later(self.ledger, reference, self.ledger.transfer_outcome))
        data = {key: value for key, value in self.ledger.transfers[reference].items() if key != "recipient"}
        self.answer(
            200, True, "Transfer has been queued", {**data, "recipient": self.ledger.recipients[recipient]["id"]}
        )


class TransferVerifyHandler(ApiHandler):
    def get(self, reference):
        if not self.authorized():
            return
        if reference not in self.ledger.transfers:
            return self.answer(404, False, "Transfer not found")
        self.answer(200, True, "Transfer retrieved", dict(self.ledger.transfers[reference]))


class FinalizeHandler(ApiHandler):
    """Finalize an `otp` transfer (openapi paths/transfer_finalize_transfer.yaml): the OTP is
    `ledger.transfer_otp`; once taken the transfer is pending, then settles as `otp_outcome`."""

    def post(self):
        if not self.authorized():
            return
        body = self.json_object() or {}
        code, otp = body.get("transfer_code"), body.get("otp")
        if not isinstance(code, str) or not isinstance(otp, str):
            return self.answer(400, False, "transfer_code and otp are required")
        transfer = next((t for t in self.ledger.transfers.values() if t["transfer_code"] == code), None)
        if transfer is None:
            return self.answer(404, False, "Transfer not found")
        if transfer["status"] != "otp":
            return self.answer(400, False, "Transfer is not currently awaiting OTP")
        if otp != self.ledger.transfer_otp:
            return self.answer(400, False, "Invalid OTP")
        settle_transfer(self.ledger, transfer["reference"], self.ledger.otp_outcome)
        data = {key: value for key, value in transfer.items() if key != "recipient"}
        self.answer(200, True, "Transfer has been queued", {**data, "recipient": transfer["recipient"]["id"]})


def transfer_routes(ledger, prefix=""):
    args = {"ledger": ledger}
    return [
        (rf"{prefix}/bank", BankListHandler, args),
        (rf"{prefix}/bank/resolve", ResolveHandler, args),
        (rf"{prefix}/transferrecipient", RecipientHandler, args),
        (rf"{prefix}/transfer", TransferHandler, args),
        (rf"{prefix}/transfer/verify/(?P<reference>[^/]+)", TransferVerifyHandler, args),
        (rf"{prefix}/transfer/finalize_transfer", FinalizeHandler, args),
    ]
