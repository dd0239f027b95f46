"""The public servicemen listing: each category link carries a copy of its serviceman's listed state,
rating, rating count and completed jobs (see ServicemanCategory). Every change of one of those is
followed, in its own transaction, by `refresh_listing(user_id)`: approval moves, deactivation,
new categories, a completed job, a rating.

The listing generation moves on after every commit that may change a public card (handlers/web/
listing_cache.py keeps built pages until it does): every committed workflow or account event
(assignments and job states change `active_jobs`; vetting, completion and ratings the rest: the
composition root makes `listing_changed` an after-commit hook), and `listing_changed(transport)` after
the changes that record no event (profile edits, deactivation, categories). In Redis mode the
committing process also tells every web process, through the transport it is given (handlers/web/
hub.py follows the channel).
"""

import logging
import threading

from models.transport import Transport

from ..users import ApprovalStatus, ServicemanCategory, ServicemanProfile, User

log = logging.getLogger("serviceman.listing")

_generation = 0
_bump = threading.Lock()  # any domain thread may commit a change


def listing_changed(transport: Transport | None) -> None:
    """Called after the commit: a page built from what was read before it is no longer served, here
    or (through the transport, Redis mode; None: no pipeline) in any other web process."""
    advance_generation()
    if transport is None:
        return
    try:
        transport.announce_listing_changed()
    except Exception:
        # The change is committed; other web processes show it once their pages expire.
        log.warning("could not tell the other web processes that the listing changed", exc_info=True)


def advance_generation() -> None:
    """This process forgets its built pages: a change committed here or elsewhere, or news of
    changes elsewhere possibly missed (handlers/web/hub.py, while its Redis feed was down)."""
    global _generation
    with _bump:
        _generation += 1


def listing_generation() -> int:
    return _generation


def refresh_listing(user_id: int | None) -> int:
    """Copy the serviceman's current values onto all their category links (a no-op for others).
    Read after the caller's own UPDATE in the same transaction, so it copies what will commit."""
    profile = (
        ServicemanProfile.select(ServicemanProfile, User).join(User).where(ServicemanProfile.user == user_id).first()
    )
    if profile is None:
        return 0
    return (
        ServicemanCategory.update(
            listed=profile.approval_status == ApprovalStatus.APPROVED and profile.user.is_active,
            rating=profile.rating,
            rating_count=profile.rating_count,
            jobs_completed=profile.jobs_completed,
        )
        .where(ServicemanCategory.profile == profile.id)
        .execute()
    )
