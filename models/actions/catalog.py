"""Browsing: categories, the servicemen who offer them, public profiles and reviews."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

import peewee

from models.foundation.errors import NotFound, ValidationFailed
from models.transport import Transport

from ..catalog import Category, category_name_key
from ..db import database
from ..money import Rating
from ..service_requests import RequestStatus, ServiceRequest
from ..users import ApprovalStatus, ServicemanCategory, ServicemanProfile, User
from .listing import listing_changed

# Sorted on the listing copy carried by each category link (models/actions/listing.py), in the
# order of its indexes; the profile id breaks ties, as it always has.
SERVICEMAN_ORDERINGS = {
    "-rating": (ServicemanCategory.rating.desc(), ServicemanCategory.rating_count.desc()),
    "-jobs_completed": (ServicemanCategory.jobs_completed.desc(),),
}


def active_categories() -> peewee.ModelSelect[Category]:
    return Category.select().where(Category.is_active == True).order_by(Category.name)


def _category(category_id: int, active_only: bool = False) -> Category:
    query = Category.select().where(Category.id == category_id)
    if active_only:
        query = query.where(Category.is_active == True)
    category = query.first()
    if category is None:
        raise NotFound("No such category.")
    return category


def create_category(name: str, description: str = "") -> Category:
    try:
        with database.atomic():
            return Category.create(name=name.strip(), description=description)
    except peewee.IntegrityError as exc:
        raise ValidationFailed.on("name", "A category with this name already exists.") from exc


def update_category(transport: Transport | None, category_id: int, **changes: Any) -> Category:
    category = _category(category_id)
    if "name" in changes:
        changes["name"] = changes["name"].strip()
        changes["name_key"] = category_name_key(changes["name"])
    if not changes:  # an empty PATCH is valid and changes nothing (an empty UPDATE is an SQL error)
        return category
    try:
        with database.atomic():
            Category.update(**changes).where(Category.id == category.id).execute()
    except peewee.IntegrityError as exc:
        raise ValidationFailed.on("name", "A category with this name already exists.") from exc
    listing_changed(transport)  # an inactive category lists nobody
    return _category(category_id)


def deactivate_category(transport: Transport | None, category_id: int) -> Category:
    """Deactivated, not deleted: past bookings still point at it."""
    return update_category(transport, category_id, is_active=False)


def _listed_servicemen() -> peewee.ModelSelect[ServicemanProfile]:
    """Approved, active servicemen with their user row joined (no N+1 on names)."""
    return (
        ServicemanProfile.select(ServicemanProfile, User)
        .join(User)
        .where(ServicemanProfile.approval_status == ApprovalStatus.APPROVED, User.is_active == True)
    )


def active_job_counts(user_ids: Iterable[int]) -> dict[int, int]:
    """{serviceman user id: requests they are primary or backup on, in a status that keeps them busy}:
    one query of two grouped halves, however many servicemen (a missing id has none)."""
    counts: dict[int, int] = {}
    primary, backup = (
        ServiceRequest.select(role, peewee.fn.COUNT(ServiceRequest.id))
        .where(
            role.in_(list(user_ids)),
            ServiceRequest.status.in_(RequestStatus.ACTIVE_FOR_SERVICEMAN),
            ServiceRequest.is_deleted == False,
        )
        .group_by(role)
        for role in (ServiceRequest.primary_serviceman, ServiceRequest.backup_serviceman)
    )
    for user_id, count in (primary + backup).tuples():  # UNION ALL: one round trip for both roles
        counts[user_id] = counts.get(user_id, 0) + count
    return counts


def serviceman_availability(user_ids: Iterable[int | None]) -> dict[int, dict[str, Any]]:
    """{user id: {id, name, is_available, active_jobs}} for these servicemen, in three queries in all."""
    ids = {user_id for user_id in user_ids if user_id is not None}
    if not ids:
        return {}
    profiles = ServicemanProfile.select(ServicemanProfile, User).join(User).where(ServicemanProfile.user.in_(ids))
    active = active_job_counts(ids)
    return {
        p.user_id: {
            "id": p.user_id,
            "name": p.user.full_name,
            "is_available": p.is_available,
            "active_jobs": active.get(p.user_id, 0),
        }
        for p in profiles
    }


def availability_warnings(chosen: Mapping[str, int | None]) -> list[str]:
    """What to tell whoever chose these servicemen (`{"preferred": user id}`, `{"primary": .., "backup": ..}`)
    while they are unavailable or busy. Choosing them stays allowed: the admin weighs it."""
    load = serviceman_availability(chosen.values())
    warnings = []
    for role, user_id in chosen.items():
        serviceman = load.get(user_id) if user_id is not None else None
        if serviceman is None:
            continue
        if not serviceman["is_available"]:
            warnings.append(f"The {role} serviceman is not available at the moment.")
        if serviceman["active_jobs"]:
            jobs = serviceman["active_jobs"]
            warnings.append(f"The {role} serviceman already has {jobs} active job{'s' if jobs > 1 else ''}.")
    return warnings


def _cards(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Cards from plain rows (`profile_id`, `user_id`, names and the public profile fields), with
    category ids and active job counts in two more queries in all, returning tuples: building Peewee
    models for these rows cost more CPU than the queries themselves (bench/README.md)."""
    categories: dict[int, list[int]] = {}
    active: dict[int, int] = {}
    if rows:
        links = cast(
            Iterable[tuple[int, int]],
            ServicemanCategory.select(ServicemanCategory.profile, ServicemanCategory.category)
            .where(ServicemanCategory.profile.in_([r["profile_id"] for r in rows]))
            .order_by(ServicemanCategory.category)
            .tuples(),
        )
        for profile_id, category_id in links:
            categories.setdefault(profile_id, []).append(category_id)
        active = active_job_counts([r["user_id"] for r in rows])
    return [
        {
            "id": r["user_id"],
            "full_name": f"{r['first_name']} {r['last_name']}".strip(),
            "rating": r["rating"],
            "rating_count": r["rating_count"],
            "jobs_completed": r["jobs_completed"],
            "bio": r["bio"],
            "years_of_experience": r["years_of_experience"],
            "category_ids": categories.get(r["profile_id"], []),
            "is_available": r["is_available"],
            "active_jobs": active.get(r["user_id"], 0),
        }
        for r in rows
    ]


def serviceman_cards(profiles: Iterable[ServicemanProfile]) -> list[dict[str, Any]]:
    """Public serviceman dicts for profiles fetched with their user."""
    return _cards(
        [
            {
                "profile_id": p.id,
                "user_id": p.user_id,
                "first_name": p.user.first_name,
                "last_name": p.user.last_name,
                "rating": p.rating,
                "rating_count": p.rating_count,
                "jobs_completed": p.jobs_completed,
                "bio": p.bio,
                "years_of_experience": p.years_of_experience,
                "is_available": p.is_available,
            }
            for p in profiles
        ]
    )


def category_servicemen(category_id: int, ordering: str = "-rating") -> peewee.ModelSelect[ServicemanCategory]:
    """The active category's listed servicemen as (profile id,) rows, built without touching the
    database. The page's count and rows are index-only range scans of serviceman_category (the
    category joined by primary key: an inactive one lists nobody), run on the thread that paginates;
    one thread hop and one connection check-out for the whole page (bench/README.md)."""
    return (
        ServicemanCategory.select(ServicemanCategory.profile)
        .join(Category)
        .where(
            ServicemanCategory.category == category_id, ServicemanCategory.listed == True, Category.is_active == True
        )
        .order_by(*SERVICEMAN_ORDERINGS[ordering], ServicemanCategory.profile)
        .tuples()
    )


def listing_cards(rows: Iterable[tuple[int]], category_id: int | None = None) -> list[dict[str, Any]]:
    """Cards for a page of listing rows, in their order. An empty page of an unknown or inactive
    category (given `category_id`) is a 404. The profile and user are read again, so a card always
    shows current values and never a serviceman unlisted since the link's copy was made."""
    order = [profile_id for (profile_id,) in rows]
    if not order:
        if category_id is not None:
            _category(category_id, active_only=True)
        return []
    found = {
        row["profile_id"]: row
        for row in cast(
            Iterable[dict[str, Any]],
            _listed_servicemen()
            .select(
                ServicemanProfile.id.alias("profile_id"),
                ServicemanProfile.user.alias("user_id"),
                User.first_name,
                User.last_name,
                ServicemanProfile.rating,
                ServicemanProfile.rating_count,
                ServicemanProfile.jobs_completed,
                ServicemanProfile.bio,
                ServicemanProfile.years_of_experience,
                ServicemanProfile.is_available,
            )
            .where(ServicemanProfile.id.in_(order))
            .dicts(),
        )
    }
    return _cards([found[i] for i in order if i in found])


def serviceman(serviceman_id: int) -> dict[str, Any]:
    profile = _listed_servicemen().where(ServicemanProfile.user == serviceman_id).first()
    if profile is None:
        raise NotFound("No such serviceman.")
    return serviceman_cards([profile])[0]


def serviceman_ratings(serviceman_id: int) -> peewee.ModelSelect[Rating]:
    serviceman(serviceman_id)
    return (
        Rating.select().where(Rating.serviceman == serviceman_id).order_by(Rating.created_at.desc(), Rating.id.desc())
    )


def servicemen_by_status(status: str | None = None) -> peewee.ModelSelect[ServicemanProfile]:
    """Admin view of applications and servicemen, any approval status."""
    query = ServicemanProfile.select(ServicemanProfile, User).join(User)
    if status:
        query = query.where(ServicemanProfile.approval_status == status)
    return query.order_by(ServicemanProfile.id)
