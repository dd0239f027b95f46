"""The websocket registry of one web process, and its Redis pub/sub feed.

Workers publish each push to `serviceman:<db>:user:<id>`; every web process holds one pattern
subscription and writes to the sockets it has for that user. Writes never await, so a slow or
dead socket cannot hold up pushes to the others (ping timeouts close dead ones).

The same connection follows `serviceman:<db>:listing`, where any process announces a commit that may
change the public listing: this process's built servicemen pages are then forgotten (handlers/web/
listing_cache.py), and so are they whenever the feed (re)subscribes or drops, as news may have been missed.
For the same reason every socket's session is looked up again when the feed (re)subscribes: an ended
session announced while it was down closes its sockets then.
"""

import asyncio
import json
import logging
from collections import OrderedDict, defaultdict

import tornado.ioloop

from handlers.web.executor import run_sync
from models.actions.listing import advance_generation
from models.actions.sessions import SESSION_ENDED, users_at_versions
from models.foundation import metrics
from models.foundation.redis_clients import connect_async
from workers.transport import listing_channel, user_channel

from .sync_watch import SyncWatch

log = logging.getLogger("serviceman.hub")
FEED_READY_TIMEOUT = 5
# A SESSION_ENDED push (models/actions/sessions.py) closes the user's older sockets with this code.
CLOSE_SESSION_ENDED = 4003
# A web process that shuts down (a deploy) closes every socket with 1012, Service Restart: clients
# reconnect at once, to another process, and resume.
CLOSE_SERVICE_RESTART = 1012
# Users whose sessions ended recently, remembered so a socket that was authenticating at that very
# moment is refused too; bounded, the window it covers is milliseconds long.
ENDED_REMEMBERED = 10_000
# Sockets' sessions are looked up this many at a time when the feed comes back (_recheck_sessions).
RECHECK_BATCH = 500
# A booking changed for this user (workers/sync_hints.py): wakes their sync long-polls, never sent to sockets.
SYNC_HINT = "sync"
# Keep-alive: every socket is pinged once per WS_PING_SECONDS and closed when the previous ping went
# unanswered. One timer for the whole hub, a slot of the sockets per tick, instead of Tornado's ping
# task per socket (a task and its timer for each of 10,000 sockets: bench/README.md).
PING_SLOTS = 20


class Hub:
    def __init__(self, redis_url="", ping_seconds=20):
        self.sockets = defaultdict(dict)  # user id -> {socket: None}, oldest first
        self.redis_url = redis_url
        self.ping_seconds = ping_seconds
        self._ping_slots = [{} for _ in range(PING_SLOTS)]  # socket -> user id, each slot pinged in turn
        self._slot_of = {}  # socket -> its slot
        self._next_slot = 0
        self._tick = 0
        self._pinger = None
        self.loop = None
        self._feed = None
        self._subscribed = None
        self._ended = OrderedDict()  # user id -> the session version its sessions ended at
        self.open_sockets = set()  # every socket past its handshake, signed in or not yet
        self.closing = False  # set by close_sockets(): a socket opened from then on is closed at once
        self._all_closed = None
        self._signed_out = OrderedDict()  # dashboard sessions signed out recently (their ids)
        self._rechecking = None  # the sessions lookup after the feed (re)subscribed
        # Every message of a user's channel also reaches their sync long-polls (handlers/web/sync_watch.py).
        self.watch = SyncWatch(lambda: self.loop is not None and self.hears_listing_changes)

    def attach(self):
        """The loop pushes are delivered on, once a sync request needs them without any socket open."""
        if self.loop is None:
            self.loop = tornado.ioloop.IOLoop.current()
        self.follow()

    def follow(self):
        """Start following the Redis feed (Redis mode), if not yet; returns at once."""
        if self.redis_url and self._feed is None:
            self.loop = tornado.ioloop.IOLoop.current()
            self._subscribed = asyncio.Event()
            self._feed = asyncio.ensure_future(self._follow_redis())

    @property
    def hears_listing_changes(self):
        """Whether every change committed by another process now reaches this one (always, alone)."""
        return not self.redis_url or (self._subscribed is not None and self._subscribed.is_set())

    async def add(self, user_id, socket):
        """Register a socket; returns once pushes for it can arrive (the Redis feed is subscribed),
        so a client told "ready" misses nothing published afterwards."""
        self.loop = tornado.ioloop.IOLoop.current()
        self.sockets[user_id][socket] = None
        self._keep_alive(socket, user_id)
        if not self.redis_url:
            return
        self.follow()
        if self._subscribed.is_set():
            return  # the common case: no wait_for (a task and a timer) per socket
        try:
            await asyncio.wait_for(self._subscribed.wait(), FEED_READY_TIMEOUT)
        except TimeoutError:
            log.warning("Redis push feed not subscribed yet; the client can resume to catch up")

    def opened(self, socket):
        """A socket finished its handshake; False when the process is shutting down (close it)."""
        if self.closing:
            return False
        if socket not in self.open_sockets:
            metrics.socket_opened()
        self.open_sockets.add(socket)
        return True

    def closed(self, socket):
        if socket in self.open_sockets:
            metrics.socket_closed()
        self.open_sockets.discard(socket)
        if self._all_closed is not None and not self.open_sockets:
            self._all_closed.set()

    async def close_sockets(self, timeout):
        """Close every socket with 1012 and wait (at most `timeout` seconds) until each has finished
        its closing handshake, so every client reads the code; returns how many had not."""
        self.closing = True
        self.watch.wake_all()  # held sync long-polls answer now (their loop sees `closing`)
        self._all_closed = asyncio.Event()
        for socket in list(self.open_sockets):
            socket.restart_close()
        if self.open_sockets:
            try:
                await asyncio.wait_for(self._all_closed.wait(), max(0.0, timeout))
            except TimeoutError:
                pass
        return len(self.open_sockets)

    def remove(self, user_id, socket):
        sockets = self.sockets.get(user_id)
        if sockets is not None:
            sockets.pop(socket, None)
            if not sockets:
                del self.sockets[user_id]
        slot = self._slot_of.pop(socket, None)
        if slot is not None:
            self._ping_slots[slot].pop(socket, None)

    def _keep_alive(self, socket, user_id):
        if socket in self._slot_of or self.ping_seconds <= 0:
            return
        self._slot_of[socket] = slot = self._next_slot
        self._next_slot = (slot + 1) % PING_SLOTS
        self._ping_slots[slot][socket] = user_id
        if self._pinger is None:
            self._pinger = tornado.ioloop.PeriodicCallback(self._ping_slot, self.ping_seconds * 1000 / PING_SLOTS)
            self._pinger.start()

    def _ping_slot(self):
        """Ping this tick's sockets; `socket.keep_alive()` closes one whose last ping went unanswered,
        which leaves the registry at once (no push is written to it while it closes)."""
        slot = self._ping_slots[self._tick]
        self._tick = (self._tick + 1) % PING_SLOTS
        for socket, user_id in list(slot.items()):
            if not socket.keep_alive():
                self.remove(user_id, socket)

    def oldest_beyond(self, user_id, limit):
        """The user's oldest sockets past the newest `limit`, to be closed."""
        sockets = list(self.sockets.get(user_id, ()))
        return sockets[: max(0, len(sockets) - limit)]

    def connected(self, user_id):
        return len(self.sockets.get(user_id, ()))

    def deliver_local(self, user_id, message):
        self.watch.changed(user_id)
        if message.get("type") == SYNC_HINT:
            return
        if message.get("type") == SESSION_ENDED:
            if "web_session" in message:
                return self.end_web_session(user_id, message["web_session"], message.get("reason", ""))
            return self.end_sessions(user_id, message["session_version"], message.get("reason", ""))
        sockets = list(self.sockets.get(user_id, ()))
        for socket in sockets:
            socket.send(message)
        metrics.pushed(len(sockets))

    def end_sessions(self, user_id, version, reason):
        """Close the user's sockets authenticated before `version`: out of the registry first, so
        not one more push reaches them (sockets opened with newer tokens stay)."""
        self._ended[user_id] = max(version, self._ended.pop(user_id, 0))
        while len(self._ended) > ENDED_REMEMBERED:
            self._ended.popitem(last=False)
        for socket in list(self.sockets.get(user_id, ())):
            if socket.session_version < version:
                self.remove(user_id, socket)
                socket.end_session(CLOSE_SESSION_ENDED, f"session ended: {reason}"[:120])

    def end_web_session(self, user_id, web_session, reason):
        """Close the sockets one dashboard session's cookie opened (signed out); the user's others stay."""
        self._signed_out[web_session] = None
        while len(self._signed_out) > ENDED_REMEMBERED:
            self._signed_out.popitem(last=False)
        for socket in list(self.sockets.get(user_id, ())):
            if getattr(socket, "web_session", None) == web_session:
                self.remove(user_id, socket)
                socket.end_session(CLOSE_SESSION_ENDED, f"session ended: {reason}"[:120])

    def session_ended(self, user_id, session_version, web_session=None):
        return session_version < self._ended.get(user_id, 0) or (
            web_session is not None and web_session in self._signed_out
        )

    def push_threadsafe(self, user_id, message):
        """From any thread (embedded pipeline): deliver on the loop that owns the sockets."""
        if self.loop is not None:  # every message: sync polls and their "nothing new" memory follow them all
            self.loop.add_callback(self.deliver_local, user_id, message)

    async def _follow_redis(self):
        prefix = user_channel(self.redis_url, "")
        while True:
            client = connect_async(self.redis_url)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.psubscribe(prefix + "*")
                    await pubsub.subscribe(listing_channel(self.redis_url))
                    await self._confirmed(pubsub, {"psubscribe", "subscribe"})
                    advance_generation()  # whatever was announced before now went unheard
                    self._subscribed.set()
                    self._rechecking = asyncio.ensure_future(self._recheck_sessions())  # so were ended sessions
                    async for item in pubsub.listen():
                        if item.get("type") == "message":  # the listing channel
                            advance_generation()
                        elif item.get("type") == "pmessage":
                            user_id = int(item["channel"].decode()[len(prefix) :])
                            self.deliver_local(user_id, json.loads(item["data"]))
            except asyncio.CancelledError:
                raise
            except Exception:
                self._subscribed.clear()
                advance_generation()
                log.warning("lost the Redis push feed; reconnecting", exc_info=True)
                await asyncio.sleep(1)  # back off before reconnecting to a Redis that is down
            finally:
                await client.aclose()

    async def _recheck_sessions(self):
        """Once the feed is (re)subscribed: a session that ended while it was down was announced
        unheard, so every socket's session is looked up again and the ended ones' sockets closed."""
        held = [
            (user_id, socket, (user_id, socket.session_version, getattr(socket, "web_session", None)))
            for user_id, sockets in list(self.sockets.items())
            for socket in list(sockets)
            if getattr(socket, "session_version", None) is not None
        ]
        keys = sorted({key for _, _, key in held}, key=str)
        answers = {}
        try:
            for start in range(0, len(keys), RECHECK_BATCH):
                answers.update(await run_sync(users_at_versions, keys[start : start + RECHECK_BATCH]))
        except Exception:
            log.warning("could not recheck the sessions of open sockets", exc_info=True)
            return
        for user_id, socket, key in held:
            if isinstance(answers.get(key), Exception) and socket in self.sockets.get(user_id, ()):
                self.remove(user_id, socket)
                socket.end_session(CLOSE_SESSION_ENDED, "session ended")

    @staticmethod
    async def _confirmed(pubsub, kinds):
        """Wait for Redis to confirm the subscriptions: only then are later publishes ours."""
        kinds = set(kinds)
        for _ in range(10):
            message = await pubsub.get_message(timeout=1.0)
            if message:
                kinds.discard(message["type"])
            if not kinds:
                return
        raise ConnectionError("Redis did not confirm the push subscription")

    async def close(self):
        if self._pinger is not None:
            self._pinger.stop()
        if self._feed is not None:
            self._feed.cancel()
            try:
                await self._feed
            except (asyncio.CancelledError, Exception):
                pass
            self._feed = None
