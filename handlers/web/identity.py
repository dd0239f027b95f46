"""Who a request or a socket is, looked up coalesced: the sign-ins of one loop iteration share one
thread hop and one query (handlers/web/coalesce.py). Nothing is cached, so a deactivation or an ended
session is refused by the very next batch, as by a lookup of its own.
"""

from handlers.web.coalesce import BatchLoader
from models.actions.notifications import active_users_with_unread
from models.actions.sessions import users_at_versions

_users = BatchLoader(users_at_versions)
_sockets = BatchLoader(active_users_with_unread)


async def user_at_version(user_id, version, web_session=None):
    """The active user whose session `version` still is, and whose dashboard session `web_session`
    (the cookie's; None for tokens) was not signed out (else NotAuthenticated), as a User of this
    caller's own: handlers may change and save it, and another request of the same batch must not
    see that."""
    user = await _users.load((user_id, version, web_session))
    own = type(user)(__no_default__=True, **user.__data__)  # as Peewee builds a row it read
    own._dirty.clear()
    return own


async def socket_user(user_id, version, web_session=None):
    """(user, unread count) for a socket's "ready", or NotAuthenticated. The user is shared by the
    batch's sockets of that account, which only read it."""
    return await _sockets.load((user_id, version, web_session))
