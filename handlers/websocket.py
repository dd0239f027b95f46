"""`GET /ws/`: live notifications for the signed-in user.

First message `{"type": "auth", "token": "<access>"}` within 10 seconds (or the dashboard's session
cookie from an allowed Origin); optional `{"type": "resume", "since": <id>}` replays what was missed.
"""
import json
import logging

import tornado.ioloop
import tornado.websocket
from tornado.iostream import StreamBufferFullError

from models.actions.notifications import active_user_with_unread, notifications_since
from server import tokens
from server.errors import ApiError, NotAuthenticated
from server.executor import run_sync

from .inputs import parse_json

from .base import API_CSP, set_security_headers

log = logging.getLogger("serviceman.ws")

AUTH_DEADLINE_SECONDS = 10
SESSION_COOKIE = "serviceman_access"
CLOSE_UNAUTHENTICATED = 4001
CLOSE_AUTH_TIMEOUT = 4008
CLOSE_BAD_MESSAGE = 4400
CLOSE_TOO_MANY_SOCKETS = 4029
# Clients only ever send tiny control messages; anything bigger is closed by Tornado with 1009.
MAX_MESSAGE_BYTES = 4096
# A socket whose client stops reading may buffer this much; past it the socket is dropped (the
# client reconnects and resumes), so one slow reader never holds memory or pushes hostage.
MAX_BUFFERED_BYTES = 1024 * 1024


def _replay(user, since):
    from workers.delivery import notification_message

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
        self._deadline = None
        self._held = None  # pushes that arrive while the account is being checked, sent after "ready"
        self._user_id = None
        cookie_token = self.get_cookie(SESSION_COOKIE)
        origin = self.request.headers.get("Origin", "")
        if cookie_token and origin in self.config.cors_allowed_origins:
            await self._authenticate(cookie_token)
        else:
            self._deadline = tornado.ioloop.IOLoop.current().call_later(
                AUTH_DEADLINE_SECONDS, self.close, CLOSE_AUTH_TIMEOUT, "authentication timed out")

    async def on_message(self, raw):
        try:
            message = parse_json(raw)
            kind = message["type"]
        except (ApiError, TypeError, KeyError):
            return self.close(CLOSE_BAD_MESSAGE, "messages are JSON objects with a type")
        if kind == "auth" and self._user_id is None:
            token = message.get("token")
            await self._authenticate(token if isinstance(token, str) else "")
        elif self.user is None and kind != "auth":  # a repeated auth while the first is checked waits
            self.close(CLOSE_UNAUTHENTICATED, "authenticate first")
        elif kind == "resume":
            since = message.get("since")
            if not isinstance(since, int) or isinstance(since, bool) or not 0 <= since < 2 ** 63:
                return self.close(CLOSE_BAD_MESSAGE, "resume needs an integer since")
            for item in await run_sync(_replay, self.user, since):
                self.send(item)
        elif kind == "ping":
            self.send({"type": "pong"})

    async def _authenticate(self, token):
        claims = tokens.decode(self.config, token, tokens.ACCESS)
        if claims is None:
            return self.close(CLOSE_UNAUTHENTICATED, "invalid or expired token")
        # Registered before the account check, with pushes held back: whatever is committed after the
        # count below is pushed, and nothing reaches the client before the account is known good.
        self._held, self._user_id = [], int(claims["sub"])
        await self.hub.add(self._user_id, self)
        try:
            user, unread = await run_sync(active_user_with_unread, self._user_id)
        except NotAuthenticated:
            self._held = None
            self.hub.remove(self._user_id, self)
            return self.close(CLOSE_UNAUTHENTICATED, "account inactive")
        if self.ws_connection is None:  # closed while we looked the user up
            self.hub.remove(self._user_id, self)
            return
        if self._deadline is not None:
            tornado.ioloop.IOLoop.current().remove_timeout(self._deadline)
        self.user = user
        self.ws_connection.stream.max_write_buffer_size = MAX_BUFFERED_BYTES
        for oldest in self.hub.oldest_beyond(user.id, self.config.ws_max_sockets_per_user):
            self.hub.remove(user.id, oldest)  # at once: no push may reach it while it closes
            oldest.close(CLOSE_TOO_MANY_SOCKETS, "too many open sockets for this account; closed the oldest")
        held, self._held = self._held, None
        self.send({"type": "ready", "unread_count": unread})
        for message in held:
            self.send(message)

    def send(self, message):
        if self._held is not None:
            return self._held.append(message)
        try:
            self.write_message(json.dumps(message, default=str))
        except tornado.websocket.WebSocketClosedError:
            pass
        except StreamBufferFullError:
            log.warning("dropping a socket of user %s: its client is not reading", self.user.id)
            self.ws_connection.stream.close()

    def on_close(self):
        if getattr(self, "_deadline", None) is not None:
            tornado.ioloop.IOLoop.current().remove_timeout(self._deadline)
        if getattr(self, "_user_id", None) is not None:
            self.hub.remove(self._user_id, self)


default_handlers = [(r"/ws/", NotificationSocketHandler)]
