"""After an event commits: tell the request's people that their sync may have news (issue 24).

A booking can change without a notification for everyone who follows it (the client is not told of
an assignment, the admins follow the whole queue), yet mobile apps long-polling `GET /api/sync/`
must wake up, and their "nothing new" memory must be forgotten. So every committed event of a
request pushes `{"type": "sync"}` on the channel of its client, its servicemen and the admins, the
same per-user channel that feeds the websocket (the hub wakes sync polls with it and never sends it
to a socket). Best effort: a hint lost with a dying process delays that news to the app's next poll
after the web process's trust window (handlers/web/sync_watch.py), it never loses it.
"""

import logging

from models.service_requests import Event, ServiceRequest
from models.users import Role, User

from . import runtime

log = logging.getLogger("serviceman.sync")
HINT = {"type": "sync"}


def announce(event_id):
    transport = runtime.transport()
    if transport is None:
        return
    try:
        request = (
            ServiceRequest.select(
                ServiceRequest.client, ServiceRequest.primary_serviceman, ServiceRequest.backup_serviceman
            )
            .join(Event, on=(Event.service_request == ServiceRequest.id))
            .where(Event.id == event_id)
            .first()
        )
        if request is None:
            return
        users = {request.client_id, request.primary_serviceman_id, request.backup_serviceman_id} - {None}
        users |= {u.id for u in User.select(User.id).where(User.role == Role.ADMIN, User.is_active == True)}
        transport.push_many([(user_id, HINT) for user_id in sorted(users)])
    except Exception:
        log.warning(
            "could not announce event %s to sync clients (their next poll still finds it)", event_id, exc_info=True
        )
