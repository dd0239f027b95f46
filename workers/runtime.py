"""The process's pipeline state, and the database helpers the pipeline's stages share.

`Pipeline` is what a process runs its pipeline with: the settings, the transport and the Paystack
client. The composition root (server/app.py, server/__main__.py) builds it once at start-up, hands
its transport down to the domain calls that announce or queue something, and installs it here for
the stages: RQ jobs are entered with ids only, so a job reads this process's pipeline back through
`settings()`, `transport()` and `paystack()`. Domain code (models/) never reads it: it is given the
transport it needs.
"""

import logging

import peewee

from models.db import database
from models.foundation.paystack import PaystackClient

log = logging.getLogger("serviceman.pipeline")


class Pipeline:
    """The settings, transport (None: events wait in the outbox for the sweep) and Paystack client a
    process's pipeline runs with."""

    def __init__(self, settings, transport, paystack=None):
        self.settings, self.transport, self.paystack = settings, transport, paystack


_installed = Pipeline(None, None)  # until the composition root installs this process's own


def install(pipeline):
    """Make `pipeline` the one this process's stages and jobs run with; returns it."""
    global _installed
    _installed = pipeline
    return pipeline


def configure(settings, transport, paystack=None):
    """Install a pipeline of these settings and transport (tests, benchmarks); returns the transport."""
    return install(Pipeline(settings, transport, paystack)).transport


def installed():
    return _installed


def reset():
    """Forget the transport (tests, shutdown): later events stay in the outbox for the sweep."""
    _installed.transport = None


def settings():
    return _installed.settings


def transport():
    return _installed.transport


def paystack():
    """The process's Paystack client (periodic reconciliation jobs); built from the settings if the
    composition root installed none."""
    if _installed.paystack is None:
        _installed.paystack = PaystackClient(_installed.settings)
    return _installed.paystack


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
