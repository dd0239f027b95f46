"""Process-wide pipeline state: the settings and the transport this process uses.

The web process, the dispatcher and RQ workers each call configure() once at start-up; jobs read
it back, so job functions only take ids.
"""
import logging

from models.db import database

log = logging.getLogger("serviceman.pipeline")
_state = {}


def configure(settings, transport):
    from models.actions.listing import listing_changed
    from models.workflow import on_event_committed

    from .outbox import publish_committed

    _state.update(settings=settings, transport=transport)
    on_event_committed(publish_committed)
    # Whatever process commits an event (web, worker, cron) tells the web processes' listing caches.
    on_event_committed(listing_changed)
    return transport


def reset():
    """Forget the transport (tests, shutdown): later events stay in the outbox for the sweep."""
    _state.pop("transport", None)


def settings():
    return _state["settings"]


def transport():
    return _state.get("transport")


def run_job(fn, *args):
    """Run one stage function with its own database connection."""
    with database.connection_context():
        return fn(*args)
