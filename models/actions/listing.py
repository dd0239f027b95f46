"""The public servicemen listing: each category link carries a copy of its serviceman's listed state,
rating, rating count and completed jobs (see ServicemanCategory). Every change of one of those is
followed, in its own transaction, by `refresh_listing(user_id)`: approval moves, deactivation,
new categories, a completed job, a rating."""
from ..users import ApprovalStatus, ServicemanCategory, ServicemanProfile, User


def refresh_listing(user_id):
    """Copy the serviceman's current values onto all their category links (a no-op for others).
    Read after the caller's own UPDATE in the same transaction, so it copies what will commit."""
    profile = (ServicemanProfile.select(ServicemanProfile, User).join(User)
               .where(ServicemanProfile.user == user_id).first())
    if profile is None:
        return 0
    return ServicemanCategory.update(
        listed=profile.approval_status == ApprovalStatus.APPROVED and profile.user.is_active,
        rating=profile.rating, rating_count=profile.rating_count, jobs_completed=profile.jobs_completed,
    ).where(ServicemanCategory.profile == profile.id).execute()
