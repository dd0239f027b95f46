"""The public servicemen page's answers, kept for a moment by each web process.

The page is the same for every visitor and is read far more often than it changes, so a built
answer is served again until the listing changes or `LISTING_CACHE_SECONDS` pass, whichever comes
first. A change committed by this process is seen at once: each answer is stored with the listing
generation read *before* its queries ran (models/actions/listing.py), and a generation bumped after
any commit that may change the listing makes every older answer a miss. In Redis mode a change
committed by another process is announced on Redis and moves this process's generation too
(handlers/web/hub.py); answers are kept only while that feed is subscribed, so `LISTING_CACHE_SECONDS`
only bounds what an unheard announcement (Redis failing) or a change made outside the application
can leave behind.
"""

import asyncio
import time
from collections import OrderedDict

from models.actions.listing import listing_generation

# Bounded by size, the least recently stored going first: every distinct URL is a key, and a
# client may invent as many as it likes.
MAX_BYTES = 8 * 1024 * 1024


class ListingCache:
    """get/put on the event loop's thread; the generation may move on any thread."""

    def __init__(
        self, seconds, max_bytes=MAX_BYTES, clock=time.monotonic, generation=listing_generation, can_keep=lambda: True
    ):
        self.seconds = seconds
        self.can_keep = can_keep  # whether changes committed elsewhere would reach this process now
        self.max_bytes = max_bytes
        self.clock = clock
        self.generation = generation
        self._entries = OrderedDict()  # key -> (generation, expires at, body)
        self.size = 0  # bytes of the bodies kept
        self._building = {}  # key -> (generation, the build's task)

    async def fetch(self, key, build):
        """The kept body, or the one `build()` (a coroutine function) makes. Requests that miss
        together share one build, so an expiry under load costs one build, not one per request."""
        body = self.get(key)
        if body is not None:
            return body
        generation = self.generation()
        building = self._building.get(key)
        if building is None or building[0] != generation:
            building = (generation, asyncio.ensure_future(build()))
            self._building[key] = building
            building[1].add_done_callback(lambda task: self._built(key, generation, task))
        return await building[1]

    def _built(self, key, generation, task):
        if self._building.get(key, (None, None))[1] is task:
            del self._building[key]
        if not task.cancelled() and task.exception() is None:
            self.put(key, generation, task.result())

    def get(self, key):
        entry = self._entries.get(key)
        if entry is None:
            return None
        generation, expires, body = entry
        if generation != self.generation() or self.clock() >= expires:
            self._drop(key)
            return None
        return body

    def put(self, key, generation, body):
        """Keep `body` if nothing changed since `generation` was read, before the body was built."""
        if self.seconds <= 0 or generation != self.generation() or len(body) > self.max_bytes or not self.can_keep():
            return
        self._drop(key)
        self._entries[key] = (generation, self.clock() + self.seconds, body)
        self.size += len(body)
        while self.size > self.max_bytes:
            self._drop(next(iter(self._entries)))

    def _drop(self, key):
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.size -= len(entry[2])
