"""`GET /ws/`: live notifications for the signed-in user.

First message `{"type": "auth", "token": "<access>"}` within 10 seconds (or the dashboard's signed
session cookie, handlers/web/sessions.py, from this server's own Origin or an allowed one); optional
`{"type": "resume", "since": <id>}` replays what was missed.
"""

import json
import logging

import tornado.ioloop
import tornado.websocket
from tornado.iostream import StreamBufferFullError

from handlers.web import identity, sessions
from handlers.web.executor import run_sync
from handlers.web.hub import CLOSE_SERVICE_RESTART, CLOSE_SESSION_ENDED
from models.actions.notifications import notification_message, notifications_since
from models.actions.sessions import user_at_version
from models.foundation import tokens
from models.foundation.errors import ApiError, NotAuthenticated, ServiceUnavailable

from .base import API_CSP, set_security_headers
from .inputs import parse_json

log = logging.getLogger("serviceman.ws")

AUTH_DEADLINE_SECONDS = 10
CLOSE_UNAUTHENTICATED = 4001
CLOSE_AUTH_TIMEOUT = 4008
CLOSE_BAD_MESSAGE = 4400
CLOSE_TOO_MANY_SOCKETS = 4029
CLOSE_TRY_AGAIN_LATER = 1013  # the database cannot be reached: the client reconnects with backoff
# Clients only ever send tiny control messages; anything bigger is closed by Tornado with 1009.
MAX_MESSAGE_BYTES = 4096
# A socket whose client stops reading may buffer this much; past it the socket is dropped (the
# client reconnects and resumes), so one slow reader never holds memory or pushes hostage.
MAX_BUFFERED_BYTES = 1024 * 1024


def _replay(user_id, session_version, web_session, since):
    """The notifications since `since`, or None if the socket's session has ended meanwhile."""
    try:
        user = user_at_version(user_id, session_version, web_session)
    except NotAuthenticated:
        return None
    return [notification_message(n) for n in notifications_since(user.id, since)]


class NotificationSocketHandler(tornado.websocket.WebSocketHandler):
    @property
    def hub(self):
        return self.application.settings["hub"]

    @property
    def config(self):
        return self.application.settings["config"]

    def set_default_headers(self):
        set_security_headers(self, self.config, API_CSP)  # on the handshake's 101 (or its refusal)

    def check_origin(self, origin):
        # Token auth proves identity by itself; the cookie path checks Origin in open().
        return True

    async def open(self):
        self.user = None
        self.ended = False
        self._deadline = None
        self._held = None  # pushes that arrive while the account is being checked, sent after "ready"
        self._user_id = None
        self._pong_due = False
        if not self.hub.opened(self):  # this process is shutting down: reconnect to another
            return self.restart_close()
        try:
            await self._open()
        except ServiceUnavailable:
            self.close(CLOSE_TRY_AGAIN_LATER, "service unavailable; reconnect later")

    async def _open(self):
        # A browser sends the cookie to any page's socket: it counts only from our own pages' origins.
        if sessions.has_session_cookie(self) and sessions.same_origin(self, self.request.headers.get("Origin", "")):
            session = sessions.read_session(self)
            if session is None:
                return self.close(CLOSE_UNAUTHENTICATED, "invalid or expired session")
            await self._sign_in(*session)
        else:
            self._deadline = tornado.ioloop.IOLoop.current().call_later(
                AUTH_DEADLINE_SECONDS, self.close, CLOSE_AUTH_TIMEOUT, "authentication timed out"
            )

    async def on_message(self, raw):
        if self.ended:
            return
        try:
            await self._on_message(raw)
        except ServiceUnavailable:
            self.close(CLOSE_TRY_AGAIN_LATER, "service unavailable; reconnect later")

    async def _on_message(self, raw):
        try:
            message = parse_json(raw)
            kind = message["type"]
        except (ApiError, TypeError, KeyError):
            return self.close(CLOSE_BAD_MESSAGE, "messages are JSON objects with a type")
        if kind == "auth" and self.user is None:
            token = message.get("token")
            await self._authenticate(token if isinstance(token, str) else "")
        elif self.user is None:
            self.close(CLOSE_UNAUTHENTICATED, "authenticate first")
        elif kind == "resume":
            since = message.get("since")
            if not isinstance(since, int) or isinstance(since, bool) or not 0 <= since < 2**63:
                return self.close(CLOSE_BAD_MESSAGE, "resume needs an integer since")
            items = await run_sync(_replay, self.user.id, self.session_version, self.web_session, since)
            if items is None or self.hub.session_ended(self.user.id, self.session_version, self.web_session):
                return self.end_session(CLOSE_SESSION_ENDED, "session ended")
            for item in items:
                self.send(item)
        elif kind == "ping":
            self.send({"type": "pong"})

    async def _authenticate(self, token):
        claims = tokens.decode(self.config, token, tokens.ACCESS)
        if claims is None:
            return self.close(CLOSE_UNAUTHENTICATED, "invalid or expired token")
        await self._sign_in(int(claims["sub"]), tokens.session_version(claims))

    async def _sign_in(self, user_id, session_version, web_session=None):
        """One query, shared with the sockets signing in alongside (handlers/web/identity.py). The socket
        is registered before the account check with its pushes held back: whatever commits after the
        unread count is pushed, and nothing reaches the client before the account and session are
        known good (an end of session meanwhile closes it)."""
        self._held, self._user_id, self.session_version = [], user_id, session_version
        self.web_session = web_session  # the dashboard session whose cookie opened it (None: a token)
        await self.hub.add(user_id, self)
        try:
            user, unread = await identity.socket_user(user_id, session_version, web_session)
        except NotAuthenticated as exc:
            self._held = None
            self.hub.remove(user_id, self)
            if exc.code == "session_ended":
                return self.close(CLOSE_SESSION_ENDED, "session ended; sign in again")
            return self.close(CLOSE_UNAUTHENTICATED, "account inactive")
        if self.ws_connection is None or self.ended:  # closed while we looked the user up
            self.hub.remove(user_id, self)
            return
        if self._deadline is not None:
            tornado.ioloop.IOLoop.current().remove_timeout(self._deadline)
        self.user = user
        self.ws_connection.stream.max_write_buffer_size = MAX_BUFFERED_BYTES
        if self.hub.session_ended(user_id, session_version, web_session):  # ended while we looked the user up
            self.hub.remove(user_id, self)
            return self.end_session(CLOSE_SESSION_ENDED, "session ended; sign in again")
        for oldest in self.hub.oldest_beyond(user_id, self.config.ws_max_sockets_per_user):
            self.hub.remove(user_id, oldest)  # at once: no push may reach it while it closes
            oldest.close(CLOSE_TOO_MANY_SOCKETS, "too many open sockets for this account; closed the oldest")
        held, self._held = self._held, None
        self.send({"type": "ready", "unread_count": unread})
        for message in held:
            self.send(message)

    def end_session(self, code, reason):
        """Closed because the user's sessions ended: nothing more is sent or answered."""
        self.ended = True
        self.close(code, reason)

    def restart_close(self):
        """The process is shutting down: nothing more is sent; the client reconnects elsewhere."""
        self.ended = True
        self.close(CLOSE_SERVICE_RESTART, "server restarting; reconnect")

    def send(self, message):
        if self.ended:
            return
        if self._held is not None:
            return self._held.append(message)
        try:
            self.write_message(json.dumps(message, default=str))
        except tornado.websocket.WebSocketClosedError:
            pass
        except StreamBufferFullError:
            log.warning("dropping a socket of user %s: its client is not reading", self.user.id)
            self.ws_connection.stream.close()

    def keep_alive(self):
        """The hub's ping, once per WS_PING_SECONDS (handlers/web/hub.py). False once the socket is done:
        closed now because the previous ping went unanswered (a client that vanished), or already closed."""
        if self._pong_due:
            self.close(reason="ping timed out")  # as Tornado's own keep-alive closes
            return False
        self._pong_due = True
        try:
            self.ping()
        except tornado.websocket.WebSocketClosedError:
            return False
        return True

    def on_pong(self, data):
        self._pong_due = False

    def on_close(self):
        self.hub.closed(self)
        if getattr(self, "_deadline", None) is not None:
            tornado.ioloop.IOLoop.current().remove_timeout(self._deadline)
        if getattr(self, "_user_id", None) is not None:
            self.hub.remove(self._user_id, self)


default_handlers = [(r"/ws/", NotificationSocketHandler)]
