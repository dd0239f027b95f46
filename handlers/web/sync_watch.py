"""What this web process knows of each user's changes, for `GET /api/sync/` (handlers/sync.py).

Fed by the hub (handlers/web/hub.py) with every message of a user's channel, the one that feeds the
websocket: a notification, an unread count, a booking's change (a "sync" hint, workers/sync_hints.py),
an ended session. Two uses:
- wake-ups: a held long-poll is a future resolved by the user's next message or by its timer, so the
  answer follows the commit as fast as a socket's push does;
- "nothing new" without a query: a cursor that read nothing new is remembered, for the session that
  read it (user id, session version, dashboard session), with the user's change count; while no
  message has come for that user since, the feed was heard throughout, and at most TRUST_SECONDS have
  passed, a poll of that session with that cursor and If-None-Match is a 304 from memory. The bound
  covers a change or a session's end whose announcement was lost (its process died between commit and
  publish): the database is read again at least that often.
"""

import time
from collections import OrderedDict

import tornado.ioloop

from models.foundation import metrics

TRUST_SECONDS = 30
MAX_REMEMBERED = 100_000  # cursors remembered quiet, least recently used dropped first
MAX_USERS = 200_000  # users with a change count; past it every count and cursor is forgotten at once


class SyncWatch:
    def __init__(self, hears_everything):
        self.hears_everything = hears_everything  # () -> whether every change now reaches this process
        self.tick = 0
        self.changes = {}  # user id -> tick of their latest message
        self.quiet = OrderedDict()  # (session, cursor) -> (tick when read, monotonic time when read)
        self.waiters = {}  # user id -> {future: None}

    def changed(self, user_id):
        self.tick += 1
        if len(self.changes) >= MAX_USERS:
            self.changes.clear()
            self.quiet.clear()
        self.changes[user_id] = self.tick
        for future in self.waiters.pop(user_id, ()):
            if not future.done():
                future.set_result(True)

    def wake_all(self):
        """Shutting down: every held poll answers now."""
        for waiting in list(self.waiters.values()):
            for future in waiting:
                if not future.done():
                    future.set_result(True)

    def mark(self):
        """Take before reading the database; give to `remember_quiet` after."""
        return self.tick

    def is_quiet(self, session, cursor):
        """`session`: (user id, session version, dashboard session id or None)."""
        entry = self.quiet.get((session, cursor))
        if entry is None or not self.hears_everything():
            return False
        tick, at = entry
        if self.changes.get(session[0], 0) > tick or time.monotonic() - at > TRUST_SECONDS:
            del self.quiet[(session, cursor)]
            return False
        self.quiet.move_to_end((session, cursor))
        return True

    def remember_quiet(self, session, cursor, mark):
        """`mark`: taken before the session and the cursor were read from the database."""
        if not self.hears_everything() or self.changes.get(session[0], 0) > mark:
            return  # a message arrived while the database was read: it may not be in that read
        self.quiet[(session, cursor)] = (mark, time.monotonic())
        self.quiet.move_to_end((session, cursor))
        while len(self.quiet) > MAX_REMEMBERED:
            self.quiet.popitem(last=False)

    async def wait(self, user_id, timeout):
        """Until the user's next message (True) or `timeout` seconds (False)."""
        loop = tornado.ioloop.IOLoop.current().asyncio_loop
        future = loop.create_future()
        self.waiters.setdefault(user_id, {})[future] = None
        timer = loop.call_later(timeout, lambda: future.done() or future.set_result(False))
        metrics.sync_poll_held(+1)
        try:
            return await future
        finally:
            metrics.sync_poll_held(-1)
            timer.cancel()
            waiting = self.waiters.get(user_id)
            if waiting is not None:
                waiting.pop(future, None)
                if not waiting:
                    del self.waiters[user_id]

    def held(self):
        return sum(len(w) for w in self.waiters.values())
