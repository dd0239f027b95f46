"""Money a client sends is accepted exactly as the contract documents it: a JSON string of ASCII digits
with two places ("5000.00"); the OpenAPI document states the same pattern for every such field.
Decimal()'s own grammar (exponents, spaces, a plus sign, any script's digits) is not the contract."""

import re

import pytest
import tornado.web
from marshmallow import ValidationError

from handlers.schemas.common import DecimalString
from models import RequestStatus, ServiceRequest
from server.routes import route_table

from .factories import ClientFactory, ServicemanFactory, ServiceRequestFactory

# Each was accepted before (1e3 as 1000.00, "٣٣" as 33.00) though the documented pattern forbids it.
OUTSIDE_THE_CONTRACT = [
    "1e3",
    "1E3",
    " 100.00 ",
    "100.00\n",
    "+100.00",
    "٣٣.٠٠",
    "٣٣",
    "１００.００",
    "100",
    "100.0",
    "100.000",
    "1_000.00",
    "0x10",
    1000,
    1000.5,
    "Infinity",
    "NaN",
    "-0e0",
]


def _money_fields():
    """(schema name, field name, field) for every decimal field a client sends."""
    seen = set()
    for route in route_table():
        if issubclass(route[1], tornado.web.StaticFileHandler):
            continue
        for method in ("get", "post", "patch", "put", "delete"):
            spec = getattr(getattr(route[1], method, None), "endpoint", None)
            for schema_cls in filter(None, (spec.body, spec.query) if spec else ()):
                for name, field in schema_cls().fields.items():
                    if isinstance(field, DecimalString) and not field.dump_only and (schema_cls, name) not in seen:
                        seen.add((schema_cls, name))
                        yield schema_cls.__name__, name, field


def test_every_money_field_refuses_what_the_documented_pattern_forbids():
    fields = list(_money_fields())
    assert {f"{schema}.{name}" for schema, name, _ in fields} >= {
        "EstimateSubmitSchema.amount",
        "ProposalSchema.proposed_amount",
        "CostApprovalSchema.final_cost",
        "ManualRefundSchema.amount",
        "MarkupSchema.markup_percentage",
    }
    for schema, name, field in fields:
        for value in OUTSIDE_THE_CONTRACT:
            if name == "markup_percentage" and value in ("100", "100.0"):
                continue  # a percentage is documented as "15" or "12.5" too
            with pytest.raises(ValidationError):
                field.deserialize(value)
                pytest.fail(f"{schema}.{name} accepted {value!r}")
        assert re.fullmatch(field.pattern, "15000.00")


@pytest.mark.gen_test
async def test_the_document_states_the_pattern_each_money_field_enforces(api):
    document = (await api.get("/api/schema/")).data
    estimate = document["components"]["schemas"]["EstimateSubmit"]["properties"]["amount"]
    assert estimate["type"] == "string" and estimate["pattern"] == r"^-?[0-9]+\.[0-9]{2}$"
    markup = document["components"]["schemas"]["Markup"]["properties"]["markup_percentage"]
    assert markup["pattern"] == r"^-?[0-9]+(\.[0-9]{1,2})?$"


@pytest.mark.gen_test
@pytest.mark.parametrize("amount", ["1e3", " 100.00 ", "٣٣.٠٠", "٣٣", 1000])
async def test_an_estimate_outside_the_pattern_is_422_and_changes_nothing(api, amount):
    serviceman = ServicemanFactory()
    request = ServiceRequestFactory(
        status=RequestStatus.ASSIGNED,
        client=ClientFactory(),
        primary_serviceman=serviceman,
        backup_serviceman=ServicemanFactory(),
    )
    response = await api.post(
        "/api/serviceman/submit-estimate/", {"service_request_id": request.id, "amount": amount}, user=serviceman
    )
    assert response.status == 422 and list(response.data["error"]["fields"]) == ["amount"], response
    stored = ServiceRequest.get_by_id(request.id)
    assert stored.status == RequestStatus.ASSIGNED and stored.estimate_amount is None
