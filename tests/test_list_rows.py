"""The booking and notification lists dump plain rows (handlers/schemas/rows.py): the JSON must be
byte for byte what the documented schemas make of model instances, on every kind of value."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from marshmallow import Schema, fields, post_dump

from handlers.notifications import NotificationListOut
from handlers.schemas.common import paginate
from handlers.schemas.notifications import NotificationSchema
from handlers.schemas.rows import RowDumper, with_rows
from handlers.schemas.service_requests import ServiceRequestSchema
from handlers.service_requests import RequestListOut
from models import Notification, RequestStatus, ServiceRequest
from models.actions import booking, notifications

from .factories import AdminFactory, ClientFactory, ServicemanFactory, ServiceRequestFactory

S = RequestStatus
WHEN = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)


def as_json(data):
    return json.dumps(data)


def varied_requests(client, serviceman, backup):
    """Nulls and values in every nullable column, odd decimals, non-ASCII text, both flags."""
    return [
        ServiceRequestFactory(client=client, created_at=WHEN),
        ServiceRequestFactory(
            client=client,
            status=S.AWAITING_CLIENT_APPROVAL,
            preferred_serviceman=serviceman,
            primary_serviceman=serviceman,
            backup_serviceman=backup,
            is_emergency=True,
            auto_flagged_emergency=True,
            booking_fee=Decimal("5000"),
            estimate_amount=Decimal("15000.5"),
            markup_percentage=Decimal("12.345"),
            final_cost=Decimal("16852.31"),
            estimate_notes="Joint \u201ccorroded\u201d \u20a6",
            address='Ọ̀rọ̀ Street, Ìbàdàn "quoted" \\ back',
            description="line\nbreak\ttab",
            created_at=WHEN - timedelta(days=400),
            updated_at=WHEN + timedelta(microseconds=1),
        ),
        ServiceRequestFactory(
            client=client,
            status=S.COMPLETED,
            primary_serviceman=serviceman,
            backup_serviceman=None,
            estimate_amount=Decimal("0"),
            final_cost=Decimal("0.01"),
            markup_percentage=Decimal("0"),
            created_at=WHEN.replace(microsecond=0),
        ),
    ]


def varied_notifications(user, request):
    return [
        Notification.create(
            user=user,
            notification_type="request_created",
            title="Booking received",
            message="We received it.",
            payload={},
            created_at=WHEN,
        ),
        Notification.create(
            user=user,
            notification_type="serviceman_assigned",
            title='Ọmọ \u20a6 "x"',
            message="a\nb",
            service_request=request,
            is_read=True,
            sent_to_email=True,
            email_sent_at=WHEN + timedelta(seconds=1),
            created_at=WHEN - timedelta(days=1),
            payload={"serviceman_ids": [3, 4], "nested": {"b": None, "a": 1.5}, "ok": True, "name": "Tunde \u00e9"},
        ),
    ]


def test_booking_rows_dump_as_the_schema_dumps_instances():
    client, serviceman, backup = ClientFactory(), ServicemanFactory(), ServicemanFactory()
    varied_requests(client, serviceman, backup)
    query = booking.list_requests(client)
    dumper = RequestListOut.row_dumper

    from_rows = dumper.dump(dumper.fetch(query))

    assert as_json(from_rows) == as_json(ServiceRequestSchema().dump(list(query), many=True))
    assert len(from_rows) == 3 and list(from_rows[0]) == list(ServiceRequestSchema().fields)


def test_notification_rows_dump_as_the_schema_dumps_instances():
    client = ClientFactory()
    varied_notifications(client, ServiceRequestFactory(client=client))
    query = notifications.list_notifications(client)
    dumper = NotificationListOut.row_dumper

    from_rows = dumper.dump(dumper.fetch(query))

    assert as_json(from_rows) == as_json(NotificationSchema().dump(list(query), many=True))
    assert [n["service_request_id"] is None for n in from_rows] == [True, False]


@pytest.mark.parametrize(
    "rows, page, size",
    [
        (0, 1, 20),
        (0, 2, 20),  # nothing at all; past the end of nothing
        (3, 1, 20),
        (3, 1, 3),
        (3, 2, 3),  # one short page; exactly full; the empty page after it
        (7, 2, 3),
        (7, 3, 3),
        (7, 4, 3),  # a full middle page; the short last one; past the end
    ],
)
def test_pages_of_rows_match_the_schema_pages(rows, page, size):
    client, admin = ClientFactory(), AdminFactory()
    for i in range(rows):
        ServiceRequestFactory(client=client, created_at=WHEN - timedelta(minutes=i))
    ServiceRequestFactory(client=ClientFactory(), created_at=WHEN)  # not the client's
    ServiceRequestFactory(client=client, created_at=WHEN, is_deleted=True)  # never listed

    def page_of(schema, user):
        return paginate(
            booking.list_requests(user),
            schema,
            {"page": page, "page_size": size},
            lambda number: f"/api/requests/?page={number}",
        )

    for user in (client, admin):
        assert as_json(page_of(RequestListOut, user)) == as_json(page_of(ServiceRequestSchema(), user))
    assert page_of(RequestListOut, client)["count"] == rows


def test_the_filters_and_order_hold_on_the_rows_path():
    client = ClientFactory()
    for i, status in enumerate([S.PENDING_PAYMENT, S.ASSIGNED, S.PENDING_PAYMENT, S.ASSIGNED]):
        ServiceRequestFactory(client=client, status=status, is_emergency=i % 2 == 0, created_at=WHEN)
    query = booking.list_requests(client, status=S.ASSIGNED)

    listed = paginate(query, RequestListOut, {"page": 1, "page_size": 20}, str)["results"]

    assert [r["id"] for r in listed] == [r.id for r in query]
    assert [r["id"] for r in listed] == sorted((r["id"] for r in listed), reverse=True)  # same time: id breaks it
    assert {r["status"] for r in listed} == {S.ASSIGNED}


def test_a_query_of_another_model_is_refused():
    with pytest.raises(TypeError, match="Notification query"):
        RequestListOut.row_dumper.select(Notification.select())


def test_what_the_rows_cannot_reproduce_fails_when_declared():
    class WithMethod(Schema):
        id = fields.Integer()
        label = fields.Method("make_label")

        def make_label(self, obj):
            return f"#{obj.id}"

    class WithNested(Schema):
        id = fields.Integer()
        client = fields.Nested(ServiceRequestSchema)

    class WithHook(ServiceRequestSchema):
        @post_dump
        def tweak(self, data, **kwargs):
            return data

    class NotAColumn(Schema):
        id = fields.Integer()
        warnings = fields.List(fields.String())

    class UnknownAttribute(Schema):
        id = fields.Integer()
        total = fields.Integer()

    for schema in (WithMethod, WithNested, WithHook, NotAColumn):
        with pytest.raises(TypeError, match="not supported|dump hooks"):
            RowDumper(schema(), ServiceRequest)
    with pytest.raises(TypeError, match="no column"):
        RowDumper(UnknownAttribute(), ServiceRequest)


def test_renamed_and_restricted_fields_follow_the_schema():
    request = ServiceRequestFactory(final_cost=Decimal("12.5"))
    schema = ServiceRequestSchema(only=("id", "final_cost", "client_id"))
    schema.fields["final_cost"].data_key = "cost"
    dumper = with_rows(schema, ServiceRequest).row_dumper

    assert dumper.dump(dumper.fetch(ServiceRequest.select())) == [
        {"id": request.id, "client_id": request.client_id, "cost": "12.50"}
    ]
    assert dumper.dump(dumper.fetch(ServiceRequest.select())) == schema.dump(ServiceRequest.select(), many=True)


@pytest.mark.gen_test
async def test_each_listed_booking_is_its_detail(api, admin_user):
    """End to end: the list's items equal what the detail endpoint (the schema's own dump) answers."""
    client, serviceman, backup = ClientFactory(), ServicemanFactory(), ServicemanFactory()
    varied_requests(client, serviceman, backup)
    ServiceRequestFactory(client=ClientFactory())

    for user in (client, admin_user, serviceman):
        listed = await api.get("/api/requests/", user=user)
        assert listed.status == 200
        for item in listed.data["results"]:
            detail = await api.get(f"/api/requests/{item['id']}/", user=user)
            assert detail.data == item
    assert (await api.get("/api/requests/", user=client)).data["count"] == 3
    assert (await api.get("/api/requests/", user=serviceman)).data["count"] == 2
    assert (await api.get("/api/requests/", user=admin_user)).data["count"] == 4


@pytest.mark.gen_test
async def test_listed_notifications_are_what_a_read_answers(api):
    """The read endpoint dumps the instance with the schema; the list must say the same of it."""
    client = ClientFactory()
    varied_notifications(client, ServiceRequestFactory(client=client))
    listed = (await api.get("/api/notifications/", user=client)).data["results"]

    for item in listed:
        read = await api.post(f"/api/notifications/{item['id']}/read/", user=client)
        assert read.data == {**item, "is_read": True}


def test_a_column_that_converts_what_it_stores_is_converted_first():
    """A JSON column is text in the database: dumped by a String it must be the loaded value's text."""
    client = ClientFactory()
    varied_notifications(client, ServiceRequestFactory(client=client))
    schema = Schema.from_dict({"id": fields.Integer(), "payload": fields.String(), "is_read": fields.Boolean()})()
    dumper = with_rows(schema, Notification).row_dumper
    query = Notification.select().order_by(Notification.id)

    assert dumper.dump(dumper.fetch(query)) == schema.dump(query, many=True)
    assert dumper.dump(dumper.fetch(query))[1]["payload"].startswith("{'")
