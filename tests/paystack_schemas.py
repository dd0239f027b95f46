"""Paystack's API as Paystack documents it: one small schema per request and answer the project uses,
and per webhook event it handles, written down from Paystack's public documentation.

Sources: Paystack's OpenAPI document (github.com/PaystackOSS/openapi, `src/assets/openapi/paths/*.yaml`
and `src/assets/openapi/components/schemas/*.yaml`, cited per schema below) and its webhook pages
(https://paystack.com/docs/payments/webhooks/, https://paystack.com/docs/payments/refunds/,
https://paystack.com/docs/transfers/single-transfers/). Only the fields the project sends or reads are
written down (plus what makes a shape recognisable); everything else may be there or not.

The schemas are JSON-Schema-like dicts checked by `check()` below (a few dozen lines, so no
dependency): `type` (a JSON type name or a tuple of them), `required`, `properties`, `items`, `enum`,
`pattern`, `nullable`, `additionalProperties: False`. `check()` returns a list of problems, empty when
the value fits.
"""

import re

STR, INT, BOOL, OBJ, ARR = "string", "integer", "boolean", "object", "array"
_PY = {STR: str, INT: int, BOOL: bool, OBJ: dict, ARR: list, "number": (int, float)}


def check(schema, value, where="$"):
    """Every way `value` does not fit `schema` (an empty list when it fits)."""
    if value is None:
        return [] if schema.get("nullable") else [f"{where}: null where {schema.get('type', 'a value')} is documented"]
    problems = []
    kinds = schema.get("type")
    if kinds is not None:
        kinds = kinds if isinstance(kinds, tuple) else (kinds,)
        fits = any(isinstance(value, _PY[k]) and not (k in (INT, "number") and isinstance(value, bool)) for k in kinds)
        if not fits:
            return [f"{where}: {type(value).__name__} {value!r:.60} where {'/'.join(kinds)} is documented"]
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if "pattern" in schema and isinstance(value, str) and not re.fullmatch(schema["pattern"], value):
        problems.append(f"{where}: {value!r} does not match {schema['pattern']}")
    if isinstance(value, dict):
        for name in schema.get("required", ()):
            if name not in value:
                problems.append(f"{where}: `{name}` is missing")
        properties = schema.get("properties", {})
        for name, sub in properties.items():
            if name in value:
                problems += check(sub, value[name], f"{where}.{name}")
        if schema.get("additionalProperties") is False:
            problems += [f"{where}: `{name}` is not documented" for name in value if name not in properties]
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            problems += check(schema["items"], item, f"{where}[{index}]")
    return problems


def obj(required=(), nullable=False, closed=False, **properties):
    """An object schema: `required` names, then each documented property's schema."""
    schema = {"type": OBJ, "required": list(required), "properties": properties}
    if nullable:
        schema["nullable"] = True
    if closed:
        schema["additionalProperties"] = False
    return schema


def s(**extra):
    return {"type": STR, **extra}


def i(**extra):
    return {"type": INT, **extra}


def b(**extra):
    return {"type": BOOL, **extra}


def nullable(schema=None):
    return {**(schema or {}), "nullable": True}


def envelope(data, meta=None):
    """Paystack's success envelope `{status: true, message, data[, meta]}`."""
    schema = obj(("status", "message", "data"), status=b(enum=[True]), message=s(), data=data)
    if meta is not None:
        schema["properties"]["meta"] = meta
        schema["required"].append("meta")
    return schema


# components/schemas/Error.yaml: `status` false, a message; `type` and `code` tag the error (code is one
# of validation_error, processor_error, api_error); `meta.nextStep` a hint.
ERROR = obj(
    ("status", "message", "type", "code"),
    status=b(enum=[False]),
    message=s(),
    type=s(),
    code=s(enum=["validation_error", "processor_error", "api_error"]),
    meta=obj(nextStep=s()),
)

# Transaction references: "Only -, ., = and alphanumeric characters allowed" (TransactionInitialize.yaml).
TRANSACTION_REFERENCE = r"[A-Za-z0-9.=-]+"
# Transfer references: "a lowercase alphanumeric string with only -,_ symbols allowed", at least 16
# long (TransferBase.yaml).
TRANSFER_REFERENCE = r"[a-z0-9_-]{16,}"
CURRENCY = s(enum=["NGN", "GHS", "ZAR", "KES", "USD", "XOF"])
ISO_TIME = s(pattern=r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")

# --- transactions -----------------------------------------------------------------------------------

# paths/transaction_initialize.yaml, components/schemas/TransactionInitialize.yaml
INITIALIZE_REQUEST = obj(
    ("email", "amount"),
    email=s(),
    amount=i(),
    currency=CURRENCY,
    reference=s(pattern=TRANSACTION_REFERENCE),
    callback_url=s(),
    metadata={"type": OBJ},
)
# components/schemas/TransactionInitializeResponse.yaml
INITIALIZE_ANSWER = envelope(
    obj(("authorization_url", "access_code", "reference"), authorization_url=s(), access_code=s(), reference=s())
)
TRANSACTION_STATUSES = ["success", "failed", "abandoned", "reversed", "ongoing", "pending", "processing", "queued"]
# paths/transaction_verify_{reference}.yaml, components/schemas/TransactionFetchResponse.yaml: `amount`
# includes the fees when they are passed on to the customer; `requested_amount` is the price asked.
TRANSACTION = obj(
    (
        "id",
        "domain",
        "status",
        "reference",
        "amount",
        "gateway_response",
        "paid_at",
        "created_at",
        "channel",
        "currency",
        "metadata",
        "customer",
        "requested_amount",
    ),
    id=i(),
    domain=s(),
    status=s(enum=TRANSACTION_STATUSES),
    reference=s(pattern=TRANSACTION_REFERENCE),
    amount=i(),
    requested_amount=i(),
    gateway_response=s(),
    paid_at=nullable(ISO_TIME),
    created_at=ISO_TIME,
    channel=s(),
    currency=CURRENCY,
    metadata=nullable({"type": (OBJ, STR)}),
    fees=nullable(i()),
    customer=obj(("id", "email", "customer_code"), id=i(), email=s(), customer_code=s()),
)
VERIFY_ANSWER = envelope(TRANSACTION)
# https://paystack.com/docs/payments/webhooks/ (charge.success): the transaction, as verify shows it.
CHARGE_SUCCESS_EVENT = obj(("event", "data"), event=s(enum=["charge.success"]), data=TRANSACTION)

# --- refunds ------------------------------------------------------------------------------------------

REFUND_STATUSES = ["pending", "processing", "processed", "failed", "needs-attention"]
# components/schemas/RefundCreate.yaml: `transaction` is the reference (or id) of the transaction.
REFUND_CREATE_REQUEST = obj(
    ("transaction",), closed=True, transaction=s(), amount=i(), currency=CURRENCY, customer_note=s(), merchant_note=s()
)
# components/schemas/RefundCreateResponse.yaml: the transaction is an object here.
REFUND_CREATED = obj(
    (
        "transaction",
        "integration",
        "deducted_amount",
        "channel",
        "merchant_note",
        "customer_note",
        "status",
        "refunded_by",
        "expected_at",
        "currency",
        "domain",
        "amount",
        "fully_deducted",
        "id",
        "createdAt",
    ),
    transaction=obj(("id", "reference", "amount", "currency"), id=i(), reference=s(), amount=i(), currency=CURRENCY),
    integration=i(),
    deducted_amount=i(),
    merchant_note=s(),
    customer_note=s(),
    status=s(enum=REFUND_STATUSES),
    currency=CURRENCY,
    amount=i(),
    id=i(),
    createdAt=ISO_TIME,
)
REFUND_CREATE_ANSWER = envelope(REFUND_CREATED)
# components/schemas/RefundListResponseArray.yaml and RefundFetchResponse.yaml: `transaction` is the id.
REFUND = obj(
    (
        "integration",
        "transaction",
        "id",
        "domain",
        "currency",
        "amount",
        "status",
        "refunded_at",
        "merchant_note",
        "customer_note",
        "createdAt",
        "transaction_reference",
        "collect_account_number",
    ),
    integration=i(),
    transaction=i(),
    id=i(),
    currency=CURRENCY,
    amount=i(),
    status=s(enum=REFUND_STATUSES),
    refunded_at=nullable(ISO_TIME),
    merchant_note=s(),
    customer_note=s(),
    createdAt=ISO_TIME,
    transaction_reference=s(),
    collect_account_number=b(),
)
# paths/refund.yaml: query perPage, page, from, to (date-times); nothing else (no per-transaction filter).
REFUND_LIST_QUERY = obj(
    (), closed=True, perPage=s(pattern=r"\d+"), page=s(pattern=r"\d+"), **{"from": ISO_TIME, "to": ISO_TIME}
)
REFUND_LIST_META = obj(
    ("total", "skipped", "perPage", "page", "pageCount", "failedRefundCount"),
    closed=True,
    total=i(),
    skipped=i(),
    perPage=s(),
    page=i(),
    pageCount=i(),
    failedRefundCount=i(),
)
REFUND_LIST_ANSWER = envelope({"type": ARR, "items": REFUND}, REFUND_LIST_META)
REFUND_FETCH_ANSWER = envelope(REFUND)
# components/schemas/RefundRetry.yaml, RefundRetryAccountDetails.yaml: all three are strings.
REFUND_RETRY_REQUEST = obj(
    ("refund_account_details",),
    closed=True,
    refund_account_details=obj(
        ("currency", "account_number", "bank_id"),
        closed=True,
        currency=CURRENCY,
        account_number=s(pattern=r"\d{10}"),
        bank_id=s(pattern=r"\d+"),
    ),
)
# components/schemas/RefundRetryResponse.yaml
REFUND_RETRY_ANSWER = envelope(
    obj(
        ("id", "status", "amount", "currency", "merchant_note"),
        id={"type": "number"},
        status=s(enum=REFUND_STATUSES),
        amount={"type": "number"},
        currency=CURRENCY,
        merchant_note=s(),
    )
)
# https://paystack.com/docs/payments/refunds/ (refund.* events): the amount in kobo as a string; no
# refund id on refund.pending, refund.processing and refund.processed.
_REFUND_EVENT_DATA = dict(
    status=s(enum=REFUND_STATUSES),
    transaction_reference=s(),
    refund_reference=nullable(s()),
    amount=s(pattern=r"\d+"),
    currency=CURRENCY,
    customer=obj(("email",), email=s()),
    integration=i(),
    domain=s(),
)


def refund_event(status):
    data = obj(("status", "transaction_reference", "amount", "currency"), **_REFUND_EVENT_DATA)
    if status in ("pending", "processing", "processed"):
        data["additionalProperties"] = False
        data["properties"]["processor"] = s()
    else:
        data["properties"]["id"] = s(pattern=r"\d+")
    return obj(("event", "data"), event=s(enum=[f"refund.{status}"]), data=data)


# --- banks and transfers ------------------------------------------------------------------------------

# paths/bank.yaml: currency, perPage, use_cursor, next (the cursor, opaque).
BANK_LIST_QUERY = obj((), currency=CURRENCY, perPage=s(pattern=r"\d+"), use_cursor=s(enum=["true", "false"]), next=s())
# components/schemas/MiscellaneousListBanksResponseArray.yaml
BANK = obj(
    (
        "name",
        "slug",
        "code",
        "longcode",
        "gateway",
        "pay_with_bank",
        "supports_transfer",
        "active",
        "is_deleted",
        "country",
        "currency",
        "type",
        "id",
        "createdAt",
        "updatedAt",
    ),
    name=s(),
    slug=s(),
    code=s(),
    longcode=s(),
    gateway=nullable(s()),
    pay_with_bank=b(),
    supports_transfer=b(),
    active=b(),
    is_deleted=nullable(b()),
    country=s(),
    currency=CURRENCY,
    type=s(),
    id=i(),
)
BANK_LIST_ANSWER = envelope(
    {"type": ARR, "items": BANK},
    obj(("next", "previous", "perPage"), next=nullable(s()), previous=nullable(s()), perPage=i()),
)
# paths/bank_resolve.yaml
RESOLVE_QUERY = obj(("account_number", "bank_code"), closed=True, account_number=s(pattern=r"\d{10}"), bank_code=s())
RESOLVE_ANSWER = envelope(obj(("account_number", "account_name"), account_number=s(), account_name=s(), bank_id=i()))
# components/schemas/TransferRecipientCreate.yaml
RECIPIENT_REQUEST = obj(
    ("type", "name", "account_number", "bank_code"),
    type=s(enum=["nuban"]),
    name=s(),
    account_number=s(pattern=r"\d{10}"),
    bank_code=s(),
    currency=CURRENCY,
)
RECIPIENT = obj(
    ("active", "currency", "name", "recipient_code", "type", "id", "details"),
    active=b(),
    currency=CURRENCY,
    name=s(),
    recipient_code=s(pattern=r"RCP_\w+"),
    type=s(),
    id=i(),
    details=obj(
        ("account_number", "account_name", "bank_code", "bank_name"),
        account_number=s(),
        account_name=nullable(s()),
        bank_code=s(),
        bank_name=s(),
    ),
)
RECIPIENT_ANSWER = envelope(RECIPIENT)
TRANSFER_STATUSES = ["pending", "otp", "received", "success", "failed", "reversed", "abandoned", "blocked", "rejected"]
# components/schemas/TransferInitiate.yaml (TransferBase.yaml)
TRANSFER_REQUEST = obj(
    ("source", "amount", "recipient", "reference"),
    source=s(enum=["balance"]),
    amount=i(),
    recipient=s(pattern=r"RCP_\w+"),
    reference=s(pattern=TRANSFER_REFERENCE),
    reason=s(),
    currency=CURRENCY,
)
_TRANSFER = dict(
    amount=i(),
    currency=CURRENCY,
    domain=s(),
    failures=nullable({"type": (ARR, OBJ, STR)}),
    id=i(),
    integration=i(),
    reason=s(),
    reference=s(pattern=TRANSFER_REFERENCE),
    source=s(),
    status=s(enum=TRANSFER_STATUSES),
    transfer_code=s(pattern=r"TRF_\w+"),
    transferred_at=nullable(ISO_TIME),
    createdAt=ISO_TIME,
    updatedAt=ISO_TIME,
)
# components/schemas/TransferCreateResponse.yaml: `recipient` is the recipient's id here.
TRANSFER_CREATE_ANSWER = envelope(
    obj(
        (
            "amount",
            "currency",
            "reference",
            "source",
            "reason",
            "status",
            "failures",
            "transfer_code",
            "id",
            "integration",
            "recipient",
            "createdAt",
        ),
        recipient=i(),
        **_TRANSFER,
    )
)
# components/schemas/TransferVerifyResponse.yaml: `recipient` is the object; the cause of a failure is
# in `gateway_response` / `failures` (`reason` is the narration sent).
TRANSFER = obj(
    (
        "amount",
        "currency",
        "failures",
        "id",
        "integration",
        "reason",
        "reference",
        "source",
        "status",
        "transfer_code",
        "transferred_at",
        "recipient",
        "gateway_response",
        "createdAt",
        "updatedAt",
    ),
    recipient=RECIPIENT,
    gateway_response=nullable(s()),
    **_TRANSFER,
)
TRANSFER_VERIFY_ANSWER = envelope(TRANSFER)
# components/schemas/TransferFinalize.yaml
FINALIZE_REQUEST = obj(("transfer_code", "otp"), closed=True, transfer_code=s(pattern=r"TRF_\w+"), otp=s())
FINALIZE_ANSWER = TRANSFER_CREATE_ANSWER


def transfer_event(status):
    """https://paystack.com/docs/transfers/single-transfers/ (transfer.success/failed/reversed): the
    transfer, as verify shows it."""
    return obj(("event", "data"), event=s(enum=[f"transfer.{status}"]), data=TRANSFER)


# What the client sends, by (method, path prefix): the schema of its query and of its JSON body.
REQUESTS = {
    ("POST", "/transaction/initialize"): (None, INITIALIZE_REQUEST),
    ("GET", "/transaction/verify/"): (obj(closed=True), None),
    ("POST", "/refund"): (obj(closed=True), REFUND_CREATE_REQUEST),
    ("GET", "/refund"): (REFUND_LIST_QUERY, None),
    ("GET", "/refund/"): (obj(closed=True), None),
    ("POST", "/refund/retry_with_customer_details/"): (obj(closed=True), REFUND_RETRY_REQUEST),
    ("GET", "/bank"): (BANK_LIST_QUERY, None),
    ("GET", "/bank/resolve"): (RESOLVE_QUERY, None),
    ("POST", "/transferrecipient"): (obj(closed=True), RECIPIENT_REQUEST),
    ("POST", "/transfer"): (obj(closed=True), TRANSFER_REQUEST),
    ("GET", "/transfer/verify/"): (obj(closed=True), None),
    ("POST", "/transfer/finalize_transfer"): (obj(closed=True), FINALIZE_REQUEST),
}


def request_schema(method, path):
    """(query schema, body schema) for a request the client made; exact paths before prefixes."""
    if (method, path) in REQUESTS:
        return REQUESTS[(method, path)]
    matches = [key for key in REQUESTS if key[0] == method and key[1].endswith("/") and path.startswith(key[1])]
    if not matches:
        raise AssertionError(f"the client called {method} {path}, which no schema here documents")
    return REQUESTS[max(matches, key=lambda key: len(key[1]))]


def check_request(method, path, query, body):
    """Problems with one recorded request (from the stand-in's `ledger.requests`)."""
    query_schema, body_schema = request_schema(method, path)
    problems = check(query_schema, query, f"{method} {path} ?") if query_schema else []
    if body_schema is not None:
        problems += check(body_schema, body, f"{method} {path} body")
    elif body is not None:
        problems.append(f"{method} {path}: a body where none is documented")
    return problems
