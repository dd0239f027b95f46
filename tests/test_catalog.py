"""Catalog: categories (public list, admin management) and the servicemen who offer them."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from models import ApprovalStatus, Category, RequestStatus, ServicemanProfile
from models.money import Rating

from .factories import CategoryFactory, ClientFactory, ServicemanFactory, ServiceRequestFactory

S = RequestStatus
CATEGORY_FIELDS = {"id", "name", "description", "is_active"}
SERVICEMAN_FIELDS = {
    "id",
    "full_name",
    "rating",
    "rating_count",
    "jobs_completed",
    "bio",
    "years_of_experience",
    "category_ids",
    "is_available",
    "active_jobs",
}
RATING_FIELDS = {"id", "service_request_id", "serviceman_id", "rating", "review", "created_at"}


def names(response):
    return [item["name"] for item in response.data["results"]]


def card_ids(response):
    return [item["id"] for item in response.data["results"]]


# --- categories: public list ----------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_categories_list_shows_active_ones_only(api):
    CategoryFactory(name="Plumbing")
    CategoryFactory(name="Electrical")
    CategoryFactory(name="Old trade", is_active=False)

    response = await api.get("/api/categories/")

    assert response.status == 200, response
    assert names(response) == ["Electrical", "Plumbing"]
    assert response.data["count"] == 2
    assert all(set(item) == CATEGORY_FIELDS for item in response.data["results"])
    assert all(item["is_active"] is True for item in response.data["results"])


@pytest.mark.gen_test
async def test_categories_list_is_paginated(api):
    for name in ("A", "B", "C", "D", "E"):
        CategoryFactory(name=name)

    first = await api.get("/api/categories/?page_size=2")
    third = await api.get("/api/categories/?page_size=2&page=3")
    beyond = await api.get("/api/categories/?page_size=2&page=9")

    assert (first.data["count"], names(first)) == (5, ["A", "B"])
    assert first.data["previous"] is None and "page=2" in first.data["next"]
    assert (names(third), third.data["next"]) == (["E"], None)
    assert "page=2" in third.data["previous"]
    assert beyond.status == 200 and beyond.data["results"] == []


@pytest.mark.gen_test
async def test_categories_list_needs_no_sign_in_and_page_size_is_capped(api, client_user):
    assert (await api.get("/api/categories/", user=client_user)).status == 200
    assert (await api.get("/api/categories/?page_size=101")).status == 422


# --- categories: admin management -----------------------------------------------------------------------


@pytest.mark.gen_test
async def test_admin_creates_a_category(api, admin_user):
    response = await api.post(
        "/api/categories/", {"name": "  Carpentry ", "description": "Doors, cabinets."}, user=admin_user
    )

    assert response.status == 201, response
    assert set(response.data) == CATEGORY_FIELDS
    assert (response.data["name"], response.data["description"], response.data["is_active"]) == (
        "Carpentry",
        "Doors, cabinets.",
        True,
    )
    stored = Category.get_by_id(response.data["id"])
    assert (stored.name, stored.is_active) == ("Carpentry", True)
    assert "Carpentry" in names(await api.get("/api/categories/"))


@pytest.mark.gen_test
async def test_duplicate_category_name_is_422(api, admin_user):
    CategoryFactory(name="Painting")

    same = await api.post("/api/categories/", {"name": "Painting"}, user=admin_user)
    padded = await api.post("/api/categories/", {"name": " Painting "}, user=admin_user)

    for response in (same, padded):
        assert response.status == 422, response
        assert list(response.data["error"]["fields"]) == ["name"]
    assert Category.select().where(Category.name == "Painting").count() == 1


@pytest.mark.gen_test
async def test_create_category_validates_the_name(api, admin_user):
    missing = await api.post("/api/categories/", {"description": "no name"}, user=admin_user)
    empty = await api.post("/api/categories/", {"name": ""}, user=admin_user)

    assert missing.status == 422 and "name" in missing.data["error"]["fields"]
    assert empty.status == 422 and "name" in empty.data["error"]["fields"]
    assert Category.select().count() == 0


@pytest.mark.gen_test
async def test_admin_patches_a_category(api, admin_user, category):
    response = await api.patch(
        f"/api/categories/{category.id}/",
        {"name": "Plumbing & Gas", "description": "Pipes and cookers."},
        user=admin_user,
    )

    assert response.status == 200, response
    assert (response.data["id"], response.data["name"], response.data["description"]) == (
        category.id,
        "Plumbing & Gas",
        "Pipes and cookers.",
    )
    assert Category.get_by_id(category.id).name == "Plumbing & Gas"


@pytest.mark.gen_test
async def test_patch_only_changes_the_fields_sent(api, admin_user):
    category = CategoryFactory(name="Tiling", description="Floors.")

    response = await api.patch(f"/api/categories/{category.id}/", {"description": "Floors and walls."}, user=admin_user)

    assert response.status == 200, response
    assert (response.data["name"], response.data["description"]) == ("Tiling", "Floors and walls.")


@pytest.mark.gen_test
async def test_empty_patch_changes_nothing(api, admin_user):
    category = CategoryFactory(name="Tiling", description="Floors.")

    response = await api.patch(f"/api/categories/{category.id}/", {}, user=admin_user)

    assert response.status == 200, response
    assert (response.data["name"], response.data["description"], response.data["is_active"]) == (
        "Tiling",
        "Floors.",
        True,
    )


@pytest.mark.gen_test
async def test_patch_to_a_taken_name_is_422(api, admin_user):
    CategoryFactory(name="Roofing")
    category = CategoryFactory(name="Gutters")

    response = await api.patch(f"/api/categories/{category.id}/", {"name": "Roofing"}, user=admin_user)

    assert response.status == 422, response
    assert list(response.data["error"]["fields"]) == ["name"]
    assert Category.get_by_id(category.id).name == "Gutters"


@pytest.mark.gen_test
async def test_patch_can_reactivate_a_category(api, admin_user):
    category = CategoryFactory(is_active=False)

    response = await api.patch(f"/api/categories/{category.id}/", {"is_active": True}, user=admin_user)

    assert response.status == 200 and response.data["is_active"] is True, response
    assert card_ids(await api.get("/api/categories/")) == [category.id]


@pytest.mark.gen_test
async def test_delete_deactivates_and_keeps_the_row(api, admin_user, category):
    booked = ServiceRequestFactory(category=category)

    response = await api.delete(f"/api/categories/{category.id}/", user=admin_user)

    assert response.status == 200, response
    assert response.data["is_active"] is False
    stored = Category.get_by_id(category.id)  # still there: past bookings point at it
    assert stored.is_active is False
    assert booked.category_id == category.id
    assert (await api.get("/api/categories/")).data["count"] == 0
    assert (await api.get(f"/api/categories/{category.id}/servicemen/")).status == 404


@pytest.mark.gen_test
async def test_unknown_category_is_404_for_admin_actions(api, admin_user):
    assert (await api.patch("/api/categories/999999/", {"name": "X"}, user=admin_user)).status == 404
    assert (await api.delete("/api/categories/999999/", user=admin_user)).status == 404


@pytest.mark.gen_test
async def test_category_management_is_for_admins_only(api, client_user, serviceman, category):
    for user in (client_user, serviceman):
        created = await api.post("/api/categories/", {"name": "Sneaky"}, user=user)
        patched = await api.patch(f"/api/categories/{category.id}/", {"name": "Sneaky"}, user=user)
        deleted = await api.delete(f"/api/categories/{category.id}/", user=user)
        for response in (created, patched, deleted):
            assert response.status == 403, (user.role, response)
            assert response.error_code == "permission_denied"
    assert (await api.post("/api/categories/", {"name": "Sneaky"})).status == 401
    stored = Category.get_by_id(category.id)
    assert (stored.name, stored.is_active) == (category.name, True)
    assert Category.select().count() == 1


# --- servicemen of a category ---------------------------------------------------------------------------


@pytest.fixture
def trade():
    # Users and profiles are created in different numbers first, so user ids and profile ids differ.
    ClientFactory(), ClientFactory(), ClientFactory()
    return CategoryFactory(name="Electrical")


@pytest.mark.gen_test
async def test_category_lists_only_approved_active_servicemen(api, trade):
    listed = ServicemanFactory(profile__categories=[trade])
    for status in (ApprovalStatus.PENDING_APPROVAL, ApprovalStatus.REJECTED, ApprovalStatus.SUSPENDED):
        ServicemanFactory(profile__categories=[trade], profile__approval_status=status)
    ServicemanFactory(profile__categories=[trade], is_active=False)
    ServicemanFactory(profile__categories=[CategoryFactory()])  # another trade

    response = await api.get(f"/api/categories/{trade.id}/servicemen/")

    assert response.status == 200, response
    assert card_ids(response) == [listed.id]
    assert response.data["count"] == 1


@pytest.mark.gen_test
async def test_category_servicemen_fields_follow_the_contract(api, trade):
    other = CategoryFactory()
    user = ServicemanFactory(
        first_name="Ada",
        last_name="Obi",
        profile__categories=[other, trade],
        profile__bio="Wiring since 2009.",
        profile__years_of_experience=15,
        profile__rating=Decimal("4.50"),
        profile__rating_count=8,
        profile__jobs_completed=31,
        profile__is_available=False,
    )
    profile = ServicemanProfile.get(ServicemanProfile.user == user.id)
    assert profile.id != user.id  # otherwise this test could not tell them apart

    response = await api.get(f"/api/categories/{trade.id}/servicemen/")

    [card] = response.data["results"]
    assert set(card) == SERVICEMAN_FIELDS
    assert card == {
        "id": user.id,
        "full_name": "Ada Obi",
        "rating": "4.50",
        "rating_count": 8,
        "jobs_completed": 31,
        "bio": "Wiring since 2009.",
        "years_of_experience": 15,
        "category_ids": sorted([trade.id, other.id]),
        "is_available": False,
        "active_jobs": 0,
    }


@pytest.mark.gen_test
async def test_active_jobs_counts_requests_where_primary_or_backup_in_active_statuses(api, trade):
    user = ServicemanFactory(profile__categories=[trade])
    for status in S.ACTIVE_FOR_SERVICEMAN:  # 7 active
        ServiceRequestFactory(status=status, primary_serviceman=user)
    for status in (S.PENDING_PAYMENT, S.PENDING_ADMIN_ASSIGNMENT, S.COMPLETED_BY_SERVICEMAN, S.COMPLETED, S.CANCELLED):
        ServiceRequestFactory(status=status, primary_serviceman=user)
    ServiceRequestFactory(status=S.ASSIGNED, backup_serviceman=user)  # backup: counted, the job may fall to them
    ServiceRequestFactory(status=S.COMPLETED, backup_serviceman=user)  # finished: not counted
    ServiceRequestFactory(status=S.ASSIGNED, preferred_serviceman=user)  # preferred only: not counted
    ServiceRequestFactory(status=S.ASSIGNED, primary_serviceman=user, is_deleted=True)
    idle = ServicemanFactory(profile__categories=[trade])

    listed = await api.get(f"/api/categories/{trade.id}/servicemen/")
    profile = await api.get(f"/api/servicemen/{user.id}/")

    active = {card["id"]: card["active_jobs"] for card in listed.data["results"]}
    assert active == {user.id: 8, idle.id: 0}
    assert profile.data["active_jobs"] == 8


@pytest.mark.gen_test
async def test_category_servicemen_ordering(api, trade):
    top_rated = ServicemanFactory(
        profile__categories=[trade],
        profile__rating=Decimal("4.90"),
        profile__rating_count=10,
        profile__jobs_completed=3,
    )
    busiest = ServicemanFactory(
        profile__categories=[trade],
        profile__rating=Decimal("4.10"),
        profile__rating_count=40,
        profile__jobs_completed=90,
    )
    middle = ServicemanFactory(
        profile__categories=[trade],
        profile__rating=Decimal("4.50"),
        profile__rating_count=5,
        profile__jobs_completed=20,
    )
    middle_more_reviews = ServicemanFactory(
        profile__categories=[trade],
        profile__rating=Decimal("4.50"),
        profile__rating_count=12,
        profile__jobs_completed=1,
    )

    default = await api.get(f"/api/categories/{trade.id}/servicemen/")
    by_rating = await api.get(f"/api/categories/{trade.id}/servicemen/?ordering=-rating")
    by_jobs = await api.get(f"/api/categories/{trade.id}/servicemen/?ordering=-jobs_completed")

    expected_by_rating = [top_rated.id, middle_more_reviews.id, middle.id, busiest.id]
    assert card_ids(default) == expected_by_rating
    assert card_ids(by_rating) == expected_by_rating
    assert card_ids(by_jobs) == [busiest.id, middle.id, top_rated.id, middle_more_reviews.id]


@pytest.mark.gen_test
async def test_category_servicemen_bad_ordering_is_422(api, trade):
    response = await api.get(f"/api/categories/{trade.id}/servicemen/?ordering=rating")

    assert response.status == 422, response
    assert "ordering" in response.data["error"]["fields"]


@pytest.mark.gen_test
async def test_category_servicemen_are_paginated(api, trade):
    made = [ServicemanFactory(profile__categories=[trade], profile__jobs_completed=n) for n in range(3)]

    first = await api.get(f"/api/categories/{trade.id}/servicemen/?ordering=-jobs_completed&page_size=2")
    second = await api.get(f"/api/categories/{trade.id}/servicemen/?ordering=-jobs_completed&page_size=2&page=2")

    assert first.data["count"] == 3
    assert card_ids(first) + card_ids(second) == [made[2].id, made[1].id, made[0].id]


@pytest.mark.gen_test
async def test_unknown_or_inactive_category_servicemen_is_404(api):
    inactive = CategoryFactory(is_active=False)
    ServicemanFactory(profile__categories=[inactive])

    for category_id in (inactive.id, 999999):
        response = await api.get(f"/api/categories/{category_id}/servicemen/")
        assert response.status == 404, response
        assert response.error_code == "not_found"


# --- serviceman profile and ratings ---------------------------------------------------------------------


@pytest.mark.gen_test
async def test_serviceman_profile(api, trade):
    user = ServicemanFactory(
        first_name="Tunde", last_name="Bello", profile__categories=[trade], profile__jobs_completed=4
    )

    response = await api.get(f"/api/servicemen/{user.id}/")

    assert response.status == 200, response
    assert set(response.data) == SERVICEMAN_FIELDS
    assert (response.data["id"], response.data["full_name"], response.data["jobs_completed"]) == (
        user.id,
        "Tunde Bello",
        4,
    )
    assert response.data["category_ids"] == [trade.id]


@pytest.mark.gen_test
async def test_serviceman_profile_is_404_unless_approved_and_active(api, trade, client_user):
    hidden = [
        ServicemanFactory(profile__categories=[trade], profile__approval_status=status)
        for status in (ApprovalStatus.PENDING_APPROVAL, ApprovalStatus.REJECTED, ApprovalStatus.SUSPENDED)
    ]
    hidden.append(ServicemanFactory(profile__categories=[trade], is_active=False))

    for user_id in [u.id for u in hidden] + [client_user.id, 999999]:
        assert (await api.get(f"/api/servicemen/{user_id}/")).status == 404, user_id
        assert (await api.get(f"/api/servicemen/{user_id}/ratings/")).status == 404, user_id


@pytest.mark.gen_test
async def test_serviceman_profile_is_addressed_by_user_id_not_profile_id(api, trade):
    user = ServicemanFactory(profile__categories=[trade])
    profile = ServicemanProfile.get(ServicemanProfile.user == user.id)

    by_profile_id = await api.get(f"/api/servicemen/{profile.id}/")

    assert profile.id != user.id
    assert by_profile_id.status == 404 or by_profile_id.data["id"] != user.id


@pytest.mark.gen_test
async def test_serviceman_ratings_newest_first(api, serviceman, client_user):
    rated = []
    for stars, review, days_ago in ((5, "Superb work.", 3), (3, "Late but fine.", 1), (4, "Good.", 2)):
        request = ServiceRequestFactory(client=client_user, status=S.COMPLETED, primary_serviceman=serviceman)
        rated.append(
            Rating.create(
                service_request=request,
                serviceman=serviceman,
                client=client_user,
                rating=stars,
                review=review,
                created_at=datetime.now(UTC) - timedelta(days=days_ago),
            )
        )
    elsewhere = ServicemanFactory()
    Rating.create(
        service_request=ServiceRequestFactory(status=S.COMPLETED, primary_serviceman=elsewhere),
        serviceman=elsewhere,
        client=client_user,
        rating=1,
        review="Not this one.",
    )

    response = await api.get(f"/api/servicemen/{serviceman.id}/ratings/")

    assert response.status == 200, response
    results = response.data["results"]
    assert [r["review"] for r in results] == ["Late but fine.", "Good.", "Superb work."]
    assert all(set(r) == RATING_FIELDS for r in results)
    assert {r["serviceman_id"] for r in results} == {serviceman.id}
    assert [r["rating"] for r in results] == [3, 4, 5]
    assert results[0]["service_request_id"] == rated[1].service_request_id


@pytest.mark.gen_test
async def test_serviceman_without_ratings_has_an_empty_list(api, serviceman):
    response = await api.get(f"/api/servicemen/{serviceman.id}/ratings/")

    assert response.status == 200, response
    assert response.data == {"count": 0, "next": None, "previous": None, "results": []}


@pytest.mark.gen_test
@pytest.mark.parametrize("flag", [0, 1, "false", "yes", None])
async def test_a_body_boolean_is_true_or_false_only(api, admin_user, category, flag):
    response = await api.patch(f"/api/categories/{category.id}/", {"is_active": flag}, user=admin_user)

    assert response.status == 422 and "is_active" in response.data["error"]["fields"]
    assert (await api.get(f"/api/categories/{category.id}/servicemen/")).status == 200  # still active
