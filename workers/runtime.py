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
    from .sync_hints import announce

    _state.update(settings=settings, transport=transport)
    on_event_committed(publish_committed)
    # Whatever process commits an event (web, worker, cron) tells the web processes' listing caches.
    on_event_committed(listing_changed)
    on_event_committed(announce)  # wakes the request's people's sync long-polls (issue 24)
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


def release_connection(discard=False):
    """Give this thread's database connection back to the pool; `discard` closes it for good (it
    failed in an outage: a restarted server would refuse it on its next use), and with it the idle
    ones, which died in the same outage."""
    db = database.obj
    if db is None or db.is_closed():
        return
    try:
        if discard and hasattr(db, "manual_close"):
            db.manual_close()
            db.close_idle()
        else:
            db.close()
    except Exception:  # a connection that cannot even be closed is gone anyway
        log.debug("closing the database connection failed", exc_info=True)


def ping_database():
    """One round trip on a connection from the pool; raises while the database is unreachable."""
    import peewee

    try:
        database.execute(peewee.Select(columns=[peewee.Value(1)]))
    except Exception:
        release_connection(discard=True)
        raise
    release_connection()


def close_all_connections():
    """Close every pooled connection of this process (before a fork: a child must open its own)."""
    db = database.obj
    if db is None:
        return
    if hasattr(db, "close_all"):
        db.close_all()
    else:
        db.close()
