"""Payout schemas: banks, the serviceman's payout account, the payout ledger, approvals, totals."""

from marshmallow import Schema, fields, validate

from models.payouts import PayoutStatus

from .common import Id, Integer, Money, PageQuerySchema

EXAMPLE_REFERENCE = "smpo-128-4f9c2a7d41e8b05c"
MAX_APPROVE = 100


def BankCode(**kwargs):
    return fields.String(
        validate=validate.Regexp(r"^[0-9A-Za-z]{1,20}$", error="Not a bank code."),
        metadata={"description": "Paystack's code for the bank (GET /api/banks/).", "example": "058"},
        **kwargs,
    )


def AccountNumber(**kwargs):
    return fields.String(
        validate=validate.Regexp(r"^[0-9]{10}$", error="A NUBAN account number has 10 digits."),
        metadata={
            "description": "The 10-digit NUBAN account number; only its last four digits are kept.",
            "example": "0123456789",
        },
        **kwargs,
    )


class BankSchema(Schema):
    name = fields.String(required=True, metadata={"example": "Guaranty Trust Bank"})
    code = fields.String(required=True, metadata={"example": "058"})


class BankListSchema(Schema):
    results = fields.List(
        fields.Nested(BankSchema),
        required=True,
        metadata={"description": "Nigerian banks Paystack can pay to (cached)."},
    )


class ResolveQuerySchema(Schema):
    bank_code = BankCode(required=True)
    account_number = AccountNumber(required=True)


class ResolvedAccountSchema(Schema):
    bank_code = fields.String(required=True, metadata={"example": "058"})
    bank_name = fields.String(required=True, metadata={"example": "Guaranty Trust Bank"})
    account_name = fields.String(
        required=True,
        metadata={"description": "The holder's name as the bank knows it.", "example": "EMEKA CHUKWUDI OKONKWO"},
    )
    account_number_masked = fields.String(required=True, metadata={"example": "******6789"})


class PayoutAccountCreateSchema(Schema):
    bank_code = BankCode(required=True)
    account_number = AccountNumber(required=True)
    account_name = fields.String(
        validate=validate.Length(min=1, max=200),
        metadata={
            "description": "Optional: the resolved name the serviceman confirmed; if the bank now names the account "
            "differently nothing is saved (409 account_name_mismatch).",
            "example": "EMEKA CHUKWUDI OKONKWO",
        },
    )


class PayoutAccountSchema(ResolvedAccountSchema):
    recipient_code = fields.String(
        required=True,
        metadata={"description": "Paystack's transfer recipient for this account.", "example": "RCP_2x5j67tnnw1t98k"},
    )
    updated_at = fields.DateTime(required=True, metadata={"example": "2026-11-20T09:34:12+00:00"})


class PayoutSchema(Schema):
    id = fields.Integer(metadata={"example": 31})
    serviceman_id = fields.Integer(metadata={"example": 12})
    service_request_id = fields.Integer(metadata={"example": 128})
    amount = Money(
        metadata={
            "description": "What the serviceman is owed: the agreed price less the markup.",
            "example": "19130.43",
        }
    )
    platform_share = Money(
        metadata={"description": "What the platform keeps of the agreed price.", "example": "2869.57"}
    )
    currency = fields.String(metadata={"example": "NGN"})
    status = fields.String(metadata={"enum": list(PayoutStatus.ALL), "example": PayoutStatus.OWED})
    transfer_reference = fields.String(
        metadata={
            "description": "The reference of the current (or next) transfer attempt; a retry re-uses it.",
            "example": EXAMPLE_REFERENCE,
        }
    )
    failure_reason = fields.String(
        metadata={"description": "Why the last attempt failed, or is waiting.", "example": ""}
    )
    approved_at = fields.DateTime(allow_none=True, metadata={"example": "2026-11-21T10:00:00+00:00"})
    sent_at = fields.DateTime(allow_none=True, metadata={"example": "2026-11-21T10:00:02+00:00"})
    paid_at = fields.DateTime(allow_none=True, metadata={"example": "2026-11-21T10:04:40+00:00"})
    created_at = fields.DateTime(metadata={"example": "2026-11-20T16:12:05+00:00"})


class AdminPayoutSchema(PayoutSchema):
    """A payout in the admins' ledger (its own name: each paginated item type is listed by one path)."""


class PayoutListQuerySchema(PageQuerySchema):
    status = fields.String(validate=validate.OneOf(PayoutStatus.ALL), metadata={"example": PayoutStatus.OWED})


class AdminPayoutListQuerySchema(PayoutListQuerySchema):
    serviceman_id = Integer(metadata={"example": 12})


class ApprovePayoutsSchema(Schema):
    payout_ids = fields.List(
        Id(), required=True, validate=validate.Length(min=1, max=MAX_APPROVE), metadata={"example": [31, 32]}
    )


class FinalizeTransferSchema(Schema):
    otp = fields.String(
        required=True,
        validate=validate.Regexp(r"^[0-9]{4,8}$", error="The OTP is 4 to 8 digits."),
        metadata={"description": "The OTP Paystack sent to the business's phone.", "example": "928783"},
    )


class PayoutResultsSchema(Schema):
    results = fields.List(
        fields.Nested(PayoutSchema),
        required=True,
        metadata={"description": "The payouts as they stand after Paystack answered."},
    )


class TransferSchema(Schema):
    id = fields.Integer(metadata={"example": 40})
    payout_id = fields.Integer(metadata={"example": 31})
    reference = fields.String(metadata={"example": EXAMPLE_REFERENCE})
    amount = Money(metadata={"example": "19130.43"})
    recipient_code = fields.String(metadata={"example": "RCP_2x5j67tnnw1t98k"})
    status = fields.String(metadata={"enum": list(PayoutStatus.ALL), "example": PayoutStatus.PAID})
    paystack_status = fields.String(metadata={"example": "success"})
    transfer_code = fields.String(metadata={"example": "TRF_1ptvuv321ahaa7q"})
    failure_reason = fields.String(metadata={"example": ""})
    created_at = fields.DateTime(metadata={"example": "2026-11-21T10:00:00+00:00"})
    updated_at = fields.DateTime(metadata={"example": "2026-11-21T10:04:40+00:00"})


class TransferListSchema(Schema):
    results = fields.List(
        fields.Nested(TransferSchema),
        required=True,
        metadata={"description": "Every transfer attempt of the payout, oldest first."},
    )


class StatusTotalSchema(Schema):
    count = fields.Integer(required=True, metadata={"example": 4})
    amount = Money(required=True, metadata={"example": "76521.74"})


class PayoutTotalsSchema(Schema):
    currency = fields.String(required=True, metadata={"example": "NGN"})
    owed = fields.Nested(StatusTotalSchema, required=True)
    approved = fields.Nested(
        StatusTotalSchema,
        required=True,
        metadata={"description": "Approved, transfer sent but not yet acknowledged by Paystack."},
    )
    in_transit = fields.Nested(StatusTotalSchema, required=True)
    paid = fields.Nested(StatusTotalSchema, required=True)
    completed_jobs = fields.Integer(
        required=True, metadata={"description": "Payouts recorded (completed jobs).", "example": 23}
    )
    agreed_prices = Money(
        required=True, metadata={"description": "The agreed prices of those jobs.", "example": "506000.00"}
    )
    servicemen_share = Money(required=True, metadata={"example": "440000.00"})
    platform_margin = Money(
        required=True,
        metadata={"description": "The platform's share of those prices (the markup kept).", "example": "66000.00"},
    )
    margin_percentage = Money(
        required=True,
        allow_none=True,
        metadata={"description": "platform_margin ÷ agreed_prices × 100; null with no jobs.", "example": "13.04"},
    )
