"""Each vetting state, reached the way it is in production (registration, then the admin's decisions
through the API), against what clients and admins can do with that serviceman: be listed in a
category, show a public profile, be booked as the preferred serviceman, be assigned or reassigned.
Only APPROVED servicemen may be any of these; PENDING_APPROVAL, REJECTED and SUSPENDED none."""

from datetime import timedelta

import pytest

from models import ApprovalStatus, RequestStatus, ServiceRequest
from models.foundation.clock import platform_today

from .factories import ClientFactory, ServicemanFactory, ServiceRequestFactory

# The decisions (through the API) that lead from a fresh application to each state.
PATHS = {
    "pending": ([], ApprovalStatus.PENDING_APPROVAL),
    "approved": (["approve"], ApprovalStatus.APPROVED),
    "rejected": (["reject"], ApprovalStatus.REJECTED),
    "suspended": (["approve", "suspend"], ApprovalStatus.SUSPENDED),
    "reinstated": (["approve", "suspend", "reinstate"], ApprovalStatus.APPROVED),
    "approved after a rejection": (["reject", "approve"], ApprovalStatus.APPROVED),
}


async def apply(api, admin, category, steps):
    registered = await api.post(
        "/api/auth/register/",
        {
            "email": "emeka@example.ng",
            "password": "Lekki-Pipes-2026",
            "first_name": "Emeka",
            "last_name": "Okonkwo",
            "phone": "+2348055550178",
            "role": "serviceman",
            "category_ids": [category.id],
        },
    )
    assert registered.status == 201, registered
    serviceman_id = registered.data["user"]["id"]
    for action in steps:
        body = {"reason": "Checked references."} if action in ("reject", "suspend") else {}
        response = await api.post(f"/api/admin/servicemen/{serviceman_id}/{action}/", body, user=admin)
        assert response.status == 200, (action, response)
    return serviceman_id


async def can_be_listed(api, category, serviceman_id):
    listed = await api.get(f"/api/categories/{category.id}/servicemen/")
    profile = await api.get(f"/api/servicemen/{serviceman_id}/")
    in_list = serviceman_id in [card["id"] for card in listed.data["results"]]
    assert in_list == (profile.status == 200), (listed, profile)
    assert profile.status in (200, 404)
    return in_list


async def can_be_booked(api, settings, category, serviceman_id):
    client = ClientFactory()
    response = await api.post(
        "/api/requests/",
        {
            "category_id": category.id,
            "serviceman_id": serviceman_id,
            "address": "7 Bode Thomas, Surulere",
            "booking_date": str(platform_today(settings.zone) + timedelta(days=5)),
            "description": "Ceiling fan makes a grinding noise.",
        },
        user=client,
    )
    if response.status == 422:
        assert list(response.data["error"]["fields"]) == ["serviceman_id"], response
        assert ServiceRequest.select().where(ServiceRequest.client == client.id).count() == 0
        return False
    assert response.status == 201 and response.data["preferred_serviceman_id"] == serviceman_id, response
    return True


async def can_be_assigned(api, admin, category, serviceman_id):
    backup = ServicemanFactory(profile__categories=[category])
    request = ServiceRequestFactory(category=category, status=RequestStatus.PENDING_ADMIN_ASSIGNMENT)
    response = await api.post(
        f"/api/admin/requests/{request.id}/assign/",
        {"primary_serviceman_id": serviceman_id, "backup_serviceman_id": backup.id},
        user=admin,
    )
    if response.status == 422:
        assert list(response.data["error"]["fields"]) == ["primary_serviceman_id"], response
        assert ServiceRequest.get_by_id(request.id).status == RequestStatus.PENDING_ADMIN_ASSIGNMENT
        return False
    assert response.status == 200 and response.data["primary_serviceman_id"] == serviceman_id, response
    return True


async def can_be_reassigned(api, admin, category, serviceman_id):
    primary, backup = (ServicemanFactory(profile__categories=[category]) for _ in range(2))
    request = ServiceRequestFactory(
        category=category, status=RequestStatus.ASSIGNED, primary_serviceman=primary, backup_serviceman=backup
    )
    response = await api.post(
        f"/api/admin/requests/{request.id}/reassign/", {"backup_serviceman_id": serviceman_id}, user=admin
    )
    if response.status == 422:
        assert list(response.data["error"]["fields"]) == ["backup_serviceman_id"], response
        assert ServiceRequest.get_by_id(request.id).backup_serviceman_id == backup.id
        return False
    assert response.status == 200 and response.data["backup_serviceman_id"] == serviceman_id, response
    return True


@pytest.mark.gen_test
@pytest.mark.parametrize("path", PATHS)
async def test_only_an_approved_serviceman_is_listed_booked_or_assigned(api, settings, admin_user, category, path):
    steps, state = PATHS[path]
    serviceman_id = await apply(api, admin_user, category, steps)
    applications = await api.get(f"/api/admin/servicemen/?status={state}", user=admin_user)
    assert serviceman_id in [a["id"] for a in applications.data["results"]], (path, state)
    allowed = state == ApprovalStatus.APPROVED

    assert await can_be_listed(api, category, serviceman_id) is allowed, path
    assert await can_be_booked(api, settings, category, serviceman_id) is allowed, path
    assert await can_be_assigned(api, admin_user, category, serviceman_id) is allowed, path
    assert await can_be_reassigned(api, admin_user, category, serviceman_id) is allowed, path
