"""Paystack over HTTP: the only code that speaks to it, and the only place money is in kobo.

Keys and the base URL come from settings only. Every call has a connect and a read timeout; a
network failure, a timeout, a 5xx or an answer that is not Paystack's `{status, message, data}`
shape raises PaystackUnavailable (the API answers 502), a clear refusal raises PaystackRefused.
"""

import hashlib
import hmac
import logging
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import requests

from models.foundation import metrics

if TYPE_CHECKING:
    from models.foundation.settings import Settings

log = logging.getLogger("serviceman.paystack")

CONNECT_TIMEOUT = 3.05  # seconds; the read timeout is PAYSTACK_TIMEOUT
SIGNATURE_HEADER = "x-paystack-signature"


class PaystackError(Exception):
    def __init__(self, message: str, status: int | None = None, body: object = None) -> None:
        super().__init__(message)
        self.message, self.status, self.body = message, status, body


class PaystackUnavailable(PaystackError):
    """Unreachable, too slow, 5xx or an unreadable answer: nothing is known about the outcome."""


class PaystackRefused(PaystackError):
    """Paystack answered and said no (4xx with `status: false`), e.g. an unknown reference."""


def to_kobo(naira: Decimal | int | str) -> int:
    return int((Decimal(naira) * 100).to_integral_exact())


def from_kobo(kobo: int | str) -> Decimal:
    return (Decimal(int(kobo)) / 100).quantize(Decimal("0.01"))


def sign(raw_body: bytes, secret: str) -> str:
    """Paystack's webhook signature: HMAC-SHA512 of the raw body, hex."""
    return hmac.new(secret.encode(), raw_body, hashlib.sha512).hexdigest()


def signature_is_valid(raw_body: bytes, signature: str | None, secret: str) -> bool:
    if not secret or not signature:
        return False
    return hmac.compare_digest(sign(raw_body, secret), signature.strip().lower())


class PaystackClient:
    def __init__(self, settings: "Settings", session: requests.Session | None = None) -> None:
        self.base_url = settings.paystack_api_url
        self.secret_key = settings.paystack_secret_key
        self.timeout = (CONNECT_TIMEOUT, settings.paystack_timeout)
        self.session = session or requests.Session()

    def _call(
        self,
        method: str,
        path: str,
        json: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        expect: type = dict,
        whole: bool = False,
        endpoint: str | None = None,
    ) -> Any:
        """`endpoint` names the call in metrics without its reference or id (`/transfer/verify/{reference}`)."""
        with metrics.timed_paystack_call(f"{method} {endpoint or path.split('?', 1)[0]}") as call:
            try:
                return self._request(method, path, json, params, expect, whole)
            except PaystackUnavailable:
                call.failed("unavailable")
                raise
            except PaystackRefused:
                call.failed("refused")
                raise

    def _request(
        self,
        method: str,
        path: str,
        json: dict[str, Any] | None,
        params: dict[str, Any] | None,
        expect: type,
        whole: bool,
    ) -> Any:
        url = f"{self.base_url}{path}"
        try:
            response = self.session.request(
                method,
                url,
                json=json,
                params=params,
                timeout=self.timeout,
                headers={"Authorization": f"Bearer {self.secret_key}", "Accept": "application/json"},
            )
        except requests.Timeout as exc:
            raise PaystackUnavailable(f"Paystack did not answer in time ({method} {path})") from exc
        except requests.RequestException as exc:
            raise PaystackUnavailable(f"Paystack could not be reached ({method} {path}): {type(exc).__name__}") from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 500 or not isinstance(body, dict) or "status" not in body:
            raise PaystackUnavailable(
                f"Paystack answered {response.status_code} to {method} {path}", status=response.status_code, body=body
            )
        if not body["status"] or response.status_code >= 400:
            raise PaystackRefused(str(body.get("message") or "refused"), status=response.status_code, body=body)
        if not isinstance(body.get("data"), expect):
            raise PaystackUnavailable(
                f"Paystack's answer to {method} {path} has no data", status=response.status_code, body=body
            )
        return body if whole else body["data"]

    def initialize(
        self,
        *,
        email: str,
        amount: Decimal,
        reference: str,
        currency: str,
        metadata: dict[str, Any],
        callback_url: str = "",
    ) -> dict[str, Any]:
        """Start a transaction for `amount` naira; returns Paystack's data
        (authorization_url, access_code, reference)."""
        payload = {
            "email": email,
            "amount": to_kobo(amount),
            "reference": reference,
            "currency": currency,
            "metadata": metadata,
        }
        if callback_url:
            payload["callback_url"] = callback_url
        return self._call("POST", "/transaction/initialize", json=payload)

    def verify(self, reference: str) -> dict[str, Any]:
        """The transaction as Paystack knows it (status, amount in kobo, currency, paid_at, ...)."""
        return self._call(
            "GET", f"/transaction/verify/{quote(reference, safe='')}", endpoint="/transaction/verify/{reference}"
        )

    # --- transfers (paying servicemen) ------------------------------------------------------------

    def list_banks(self, currency: str = "NGN", per_page: int = 100, max_pages: int = 10) -> list[dict[str, Any]]:
        """Every bank in `currency`: a list of {name, code, active, ...}, page by page (Paystack's cursor)."""
        banks: list[dict[str, Any]] = []
        params: dict[str, Any] = {"currency": currency, "perPage": per_page, "use_cursor": "true"}
        for _ in range(max_pages):
            body = self._call("GET", "/bank", params=params, expect=list, whole=True)
            banks += body["data"]
            cursor = (body.get("meta") or {}).get("next") if isinstance(body.get("meta"), dict) else None
            if not cursor:
                break
            params = {**params, "next": cursor}
        return banks

    def resolve_account(self, account_number: str, bank_code: str) -> dict[str, Any]:
        """The account's holder as the bank knows it: {account_number, account_name}."""
        return self._call("GET", "/bank/resolve", params={"account_number": account_number, "bank_code": bank_code})

    def create_recipient(
        self, *, name: str, account_number: str, bank_code: str, currency: str = "NGN"
    ) -> dict[str, Any]:
        """A transfer recipient for a NUBAN account; its `recipient_code` is what transfers are sent to."""
        return self._call(
            "POST",
            "/transferrecipient",
            json={
                "type": "nuban",
                "name": name,
                "account_number": account_number,
                "bank_code": bank_code,
                "currency": currency,
            },
        )

    def transfer(
        self, *, amount: Decimal, recipient: str, reference: str, reason: str, currency: str = "NGN"
    ) -> dict[str, Any]:
        """Send `amount` naira from the balance. Paystack refuses a reference it has seen, so a retry
        with the same reference can never pay twice."""
        return self._call(
            "POST",
            "/transfer",
            json={
                "source": "balance",
                "amount": to_kobo(amount),
                "recipient": recipient,
                "reference": reference,
                "reason": reason,
                "currency": currency,
            },
        )

    def verify_transfer(self, reference: str) -> dict[str, Any]:
        """The transfer as Paystack knows it (status pending, success, failed, reversed, ...)."""
        return self._call(
            "GET", f"/transfer/verify/{quote(reference, safe='')}", endpoint="/transfer/verify/{reference}"
        )

    def finalize_transfer(self, transfer_code: str, otp: str) -> dict[str, Any]:
        """Complete a transfer Paystack holds in status `otp` with the OTP sent to the business's phone
        (openapi: paths/transfer_finalize_transfer.yaml, body TransferFinalize {transfer_code, otp})."""
        return self._call("POST", "/transfer/finalize_transfer", json={"transfer_code": transfer_code, "otp": otp})

    # --- refunds (https://paystack.com/docs/api/refund/) ---------------------------------------------

    def create_refund(
        self, *, transaction: str | int, amount: Decimal, currency: str, merchant_note: str, customer_note: str = ""
    ) -> dict[str, Any]:
        """Ask Paystack to give back `amount` naira of a transaction (reference or id); returns the
        refund (id, status "pending", amount in kobo, ...). Paystack takes no idempotency key, so the
        caller puts its own reference in `merchant_note` and looks for it before asking again."""
        return self._call(
            "POST",
            "/refund",
            json={
                "transaction": transaction,
                "amount": to_kobo(amount),
                "currency": currency,
                "merchant_note": merchant_note,
                "customer_note": customer_note,
            },
        )

    def fetch_refund(self, refund_id: int | str) -> dict[str, Any]:
        return self._call("GET", f"/refund/{quote(str(refund_id), safe='')}", endpoint="/refund/{id}")

    def list_refunds(
        self, *, page: int = 1, per_page: int = 100, since: datetime | None = None, until: datetime | None = None
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """One page of the account's refunds, newest first: (refunds, meta). Paystack's List Refunds
        (openapi: paths/refund.yaml) takes `perPage`, `page`, `from` and `to` only; there is no filter
        by transaction, so a caller looking for one refund pages through a date window."""
        params: dict[str, Any] = {"perPage": per_page, "page": page}
        if since is not None:
            params["from"] = _iso(since)
        if until is not None:
            params["to"] = _iso(until)
        body = self._call("GET", f"/refund?{urlencode(params)}", expect=list, whole=True)
        return body["data"], body.get("meta") if isinstance(body.get("meta"), dict) else {}

    def retry_refund_with_customer_details(
        self, refund_id: int | str, *, currency: str, account_number: str, bank_id: int | str
    ) -> dict[str, Any]:
        """Give Paystack the customer's bank account for a refund in `needs-attention`
        (openapi: paths/refund_retry_with_customer_details_{id}.yaml, body RefundRetry)."""
        return self._call(
            "POST",
            f"/refund/retry_with_customer_details/{quote(str(refund_id), safe='')}",
            endpoint="/refund/retry_with_customer_details/{id}",
            json={
                "refund_account_details": {
                    "currency": currency,
                    "account_number": account_number,
                    "bank_id": str(bank_id),
                }
            },
        )


def _iso(moment: datetime) -> str:
    """A UTC ISO 8601 date-time as Paystack's `from`/`to` take it."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")
