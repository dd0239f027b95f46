"""Defects found by trying the product as a new user would: each message says what is really wrong,
and a category name is unique whatever its case."""

import pytest

from models import Category, RequestStatus, ServicemanProfile

from .contract_support import assert_error
from .factories import ServicemanFactory, ServiceRequestFactory


@pytest.mark.gen_test
async def test_a_category_name_is_unique_regardless_of_case(api, admin_user):
    assert (await api.post("/api/categories/", {"name": "Carpentry"}, user=admin_user)).status == 201
    for clash in ("carpentry", "CARPENTRY", "  Carpentry "):
        response = await api.post("/api/categories/", {"name": clash}, user=admin_user)
        assert assert_error(response, 422)["fields"] == {"name": ["A category with this name already exists."]}
    other = await api.post("/api/categories/", {"name": "Tiling"}, user=admin_user)
    response = await api.patch(f"/api/categories/{other.data['id']}/", {"name": "carPENtry"}, user=admin_user)
    assert_error(response, 422)
    assert sorted(c.name for c in Category.select()) == ["Carpentry", "Tiling"]
    # Renaming a category to another case of its own name is fine.
    response = await api.patch(f"/api/categories/{other.data['id']}/", {"name": "TILING"}, user=admin_user)
    assert response.status == 200 and response.data["name"] == "TILING"


@pytest.mark.gen_test
@pytest.mark.parametrize("action,word", [("suspend", "suspended"), ("reinstate", "reinstated"), ("reject", "rejected")])
async def test_vetting_refusals_name_the_action_in_plain_english(api, admin_user, action, word):
    serviceman = ServicemanFactory()
    ServicemanProfile.update(approval_status="REJECTED").where(ServicemanProfile.user == serviceman.id).execute()
    body = {"reason": "because"} if action in ("suspend", "reject") else None
    response = await api.post(f"/api/admin/servicemen/{serviceman.id}/{action}/", body, user=admin_user)
    message = assert_error(response, 409)["message"]
    assert message == f"A serviceman who is REJECTED cannot be {word}.", message


@pytest.mark.gen_test
async def test_a_cancelled_booking_says_it_is_cancelled(api, client_user, admin_user):
    request = ServiceRequestFactory(client=client_user, status=RequestStatus.CANCELLED)
    for user in (client_user, admin_user):
        response = await api.post(f"/api/requests/{request.id}/cancel/", {}, user=user)
        assert assert_error(response, 409, "invalid_transition")["message"] == "This booking is already cancelled."
    response = await api.patch(f"/api/requests/{request.id}/", {"address": "elsewhere"}, user=client_user)
    assert "cancelled" in assert_error(response, 409)["message"]
