"""Peewee models, one module per area. `ALL_MODELS` is in dependency order (create, migrate)."""

from .catalog import Category
from .db import bind, database, is_postgres
from .idempotency import IdempotencyKey, IdempotencyState
from .money import NegotiationStatus, Payment, PaymentStatus, PaymentType, PriceNegotiation, Rating
from .notifications import Notification
from .payouts import Payout, PayoutAccount, PayoutStatus, PayoutTransfer
from .refunds import Refund, RefundPolicy, RefundStatus
from .service_requests import TRANSITIONS, Event, RequestStatus, ServiceRequest, can_transition
from .users import ApprovalStatus, OneTimeToken, RefreshToken, Role, ServicemanCategory, ServicemanProfile, User

ALL_MODELS = [
    User,
    Category,
    ServicemanProfile,
    ServicemanCategory,
    RefreshToken,
    OneTimeToken,
    ServiceRequest,
    Event,
    Payment,
    PriceNegotiation,
    Rating,
    Refund,
    Notification,
    PayoutAccount,
    Payout,
    PayoutTransfer,
    IdempotencyKey,
]

__all__ = [
    "ALL_MODELS",
    "ApprovalStatus",
    "Category",
    "Event",
    "IdempotencyKey",
    "IdempotencyState",
    "NegotiationStatus",
    "Notification",
    "OneTimeToken",
    "Payment",
    "PaymentStatus",
    "PaymentType",
    "Payout",
    "PayoutAccount",
    "PayoutStatus",
    "PayoutTransfer",
    "PriceNegotiation",
    "Rating",
    "RefreshToken",
    "Refund",
    "RefundPolicy",
    "RefundStatus",
    "RequestStatus",
    "Role",
    "ServiceRequest",
    "ServicemanCategory",
    "ServicemanProfile",
    "TRANSITIONS",
    "User",
    "bind",
    "can_transition",
    "database",
    "is_postgres",
]
