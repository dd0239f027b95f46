"""The authorization matrix (issue 21, finding 11): every operation of the OpenAPI document, called as
each of six identities, over a world whose objects belong to client A.

Expected answers follow each operation's declared roles (`x-roles`, from its `@endpoint`): an
anonymous caller of a signed-in operation gets 401, a role the operation does not name gets 403, and
a caller of a role it names, asking for an object that is not theirs to see, gets 404 (never a 403
that would confirm the object exists). Bodies are the document's own examples with the world's ids,
so a call gets past validation to the object it names. No cell may answer 5xx, and no refused cell
may answer 2xx. One test per identity (its own fresh world), reporting every wrong cell at once.
"""

import json
from datetime import timedelta

import pytest

from models import ApprovalStatus, Event, Notification, Payout
from models.foundation.clock import utcnow
from models.money import Payment, PaymentStatus, PaymentType, PriceNegotiation
from models.service_requests import RequestStatus
from server.openapi import build_spec
from server.routes import route_table

from .factories import AdminFactory, CategoryFactory, ClientFactory, ServicemanFactory, ServiceRequestFactory
from .openapi_support import operations

# Identities refused every job and money action by their account standing, whatever the object.
REFUSED_BY_STANDING = {"applicant": "account_not_approved"}
IDENTITIES = ("anonymous", "client_a", "client_b", "serviceman", "applicant", "admin")
ROLE = {
    "client_a": "client",
    "client_b": "client",
    "serviceman": "serviceman",
    "applicant": "serviceman",
    "admin": "admin",
}
NO_SUCH_ID = 999999
OPERATIONS = operations()
DOCUMENT = build_spec(route_table())

# Who may see each of A's objects when an operation names it (in its path or its body); anyone else
# whose role the operation allows must get 404. The assigned serviceman works on A's request.
VISIBLE_TO = {
    "request_id": {"client_a", "serviceman", "admin"},
    "service_request_id": {"client_a", "serviceman", "admin"},
    "negotiation_id": {"client_a", "admin"},
    "notification_id": {"client_a"},
    "reference": {"client_a", "admin"},
}


class World:
    """Client A's booking, assigned to an approved serviceman and under negotiation, with its
    payment, notification and payout; client B, an applicant serviceman and an admin beside them."""

    def __init__(self):
        category = CategoryFactory()
        self.users = {
            "client_a": ClientFactory(),
            "client_b": ClientFactory(),
            "admin": AdminFactory(),
            "serviceman": ServicemanFactory(profile__categories=[category]),
            "applicant": ServicemanFactory(
                profile__categories=[category], profile__approval_status=ApprovalStatus.PENDING_APPROVAL
            ),
        }
        a, serviceman = self.users["client_a"], self.users["serviceman"]
        booking = ServiceRequestFactory(
            client=a,
            category=category,
            primary_serviceman=serviceman,
            status=RequestStatus.NEGOTIATING,
            estimate_amount="15000.00",
            markup_percentage="10.00",
            final_cost="16500.00",
        )
        payment = Payment.create(
            service_request=booking,
            payer=a,
            payment_type=PaymentType.BOOKING_FEE,
            amount="2000.00",
            paystack_reference=f"authz-{booking.id}-fee",
            status=PaymentStatus.SUCCESS,
            paid_at=utcnow() - timedelta(days=1),
        )
        negotiation = PriceNegotiation.create(
            service_request=booking, proposed_by=a, proposed_amount="14000.00", message="Can you do it for less?"
        )
        event = Event.create(
            type="request_created",
            service_request=booking,
            actor=a,
            published_at=utcnow(),
            to_status=RequestStatus.PENDING_PAYMENT,
            payload={"service_request_id": booking.id, "is_emergency": False},
        )
        notification = Notification.create(
            user=a,
            event=event,
            service_request=booking,
            title="New booking",
            notification_type="request_created",
            message="A booking was made.",
            payload={"service_request_id": booking.id, "is_emergency": False},
        )
        payout = Payout.create(
            serviceman=serviceman,
            service_request=booking,
            amount="15000.00",
            platform_share="1500.00",
            transfer_reference=f"smpo-{booking.id}-authz",
        )
        self.ids = {
            "request_id": booking.id,
            "service_request_id": booking.id,
            "negotiation_id": negotiation.id,
            "notification_id": notification.id,
            "reference": payment.paystack_reference,
            "payment_id": payment.id,
            "payout_id": payout.id,
            "payout_ids": [payout.id],
            "refund_id": NO_SUCH_ID,
            "user_id": a.id,
            "serviceman_id": serviceman.id,
            "primary_serviceman_id": serviceman.id,
            "backup_serviceman_id": self.users["applicant"].id,
            "category_id": category.id,
            "category_ids": [category.id],
        }

    def body(self, op):
        """The document's example body for `op`, with the world's ids in place of the examples'."""
        request_body = DOCUMENT["paths"][op.path][op.method.lower()].get("requestBody")
        if request_body is None:
            return None
        ref = request_body["content"]["application/json"]["schema"]["$ref"]
        properties = DOCUMENT["components"]["schemas"][ref.rsplit("/", 1)[-1]].get("properties", {})
        body = {name: spec["example"] for name, spec in properties.items() if "example" in spec}
        body.update({name: self.ids[name] for name in properties if name in self.ids})
        return body

    def named_objects(self, op, body):
        """The names of A's objects `op` would touch: its path parameters and the ids in its body."""
        return [name for name in (*op.path_parameters, *(body or {})) if name in VISIBLE_TO]


SIGNED_IN_ANSWERS = set(range(200, 500)) - {401}  # a valid token is never "not signed in"


def expected(op, who, names):
    """The statuses the cell may answer, or None for anything under 500 (an operation open to anyone)."""
    if not op.needs_sign_in:
        return None
    if who == "anonymous":
        return {401}
    if not op.allows(ROLE[who]):
        return {403}
    if any(who not in VISIBLE_TO[name] for name in names):
        # A serviceman whose standing forbids every job action is told so before any object is looked
        # up (models/actions/standing.py): that says nothing of the object either.
        return {404, 403} if who in REFUSED_BY_STANDING else {404}
    # Its own object, its role: the domain answers (a 403 may still say "only the other party answers").
    return SIGNED_IN_ANSWERS


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("who", IDENTITIES)
async def test_every_operation_answers_each_identity_as_its_roles_declare(api, who):
    world = World()
    token = None if who == "anonymous" else api.token(world.users[who])
    wrong = []
    for op in OPERATIONS:
        body = world.body(op)
        raw = None if op.method in ("GET", "DELETE") else json.dumps(body or {})
        response = await api.call(
            op.method, op.url(world.ids), raw=raw, token=token, headers={"Content-Type": "application/json"}
        )
        allowed = expected(op, who, world.named_objects(op, body))
        standing_refusal = response.status == 403 and response.error_code == REFUSED_BY_STANDING.get(who)
        if response.status == 403 and allowed == {404, 403} and not standing_refusal:
            allowed = {404}  # another user's object: only the standing refusal may come first
        if response.status >= 500 or (allowed is not None and response.status not in allowed):
            wanted = "any < 500" if allowed is None else "not 401" if allowed is SIGNED_IN_ANSWERS else allowed
            wrong.append(f"{op} as {who}: {response.status} {response.error_code} (expected {wanted})")
    assert not wrong, "\n".join(wrong)


def test_the_matrix_covers_the_whole_document():
    # 87 operations when the probe ran; one added later joins the matrix by itself.
    assert len(OPERATIONS) >= 87 and len(IDENTITIES) == 6
