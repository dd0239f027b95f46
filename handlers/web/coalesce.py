"""Coalesced lookups: the keys many coroutines ask for during one event-loop iteration go to the
pool as ONE call of a batch function (one thread hop, one query) instead of one call each. While
`max_in_flight` batches are in the pool the next one keeps collecting (up to `max_batch`) and goes
when one returns: under a storm of sign-ins, fewer and larger batches (bench/README.md), while one
slow batch does not hold up the others.

    users = BatchLoader(users_by_id)         # users_by_id(keys) -> {key: value or exception}
    user = await users.load(user_id)

Nothing is cached: every batch calls the function again, so what it reads is as fresh as a lookup
of its own would have been. Values are handed to every caller that asked for the same key in the
batch, so they should be immutable (or copied by the caller).
"""

import asyncio

from handlers.web.executor import run_sync


class MissingKey(LookupError):
    """The batch function's answer had nothing for a key it was given."""


class BatchLoader:
    def __init__(self, batch_fn, *, max_batch=200, max_in_flight=2, run=run_sync):
        """`max_batch` bounds one query's IN list; `run(fn, keys)` is awaited to call `batch_fn` off
        the loop (the domain pool by default)."""
        self.batch_fn = batch_fn
        self.max_batch = max_batch
        self.max_in_flight = max_in_flight
        self.run = run
        # Per event loop (tests and tools run several loops in turn): the batch being collected,
        # and how many batches are in the pool.
        self._collecting = {}
        self._in_flight = {}

    async def load(self, key):
        loop = asyncio.get_running_loop()
        waiting = self._collecting.get(loop)
        if waiting is None:
            waiting = self._collecting[loop] = {}
            # Runs after every callback already queued: everyone ready in this iteration joins.
            loop.call_soon(self._close_batch, loop, waiting)
        future = loop.create_future()
        waiting.setdefault(key, []).append(future)
        if len(waiting) >= self.max_batch:
            self._close_batch(loop, waiting, full=True)
        return await future

    def _close_batch(self, loop, waiting, full=False):
        if self._collecting.get(loop) is not waiting:
            return
        if self._in_flight.get(loop, 0) >= self.max_in_flight and not full:
            # Under load, keys keep joining while the pool answers the batches before: fewer,
            # larger batches. It is sent the moment one returns (a full one goes at once).
            return
        del self._collecting[loop]
        self._in_flight[loop] = self._in_flight.get(loop, 0) + 1
        loop.create_task(self._resolve(loop, waiting))

    async def _resolve(self, loop, waiting):
        try:
            await self._answer(waiting)
        finally:
            self._in_flight[loop] -= 1
            if not self._in_flight[loop]:
                del self._in_flight[loop]
            if loop in self._collecting:
                self._close_batch(loop, self._collecting[loop])

    async def _answer(self, waiting):
        try:
            answers = await self.run(self.batch_fn, list(waiting))
            if not isinstance(answers, dict):
                raise TypeError(f"a batch function must return a dict, got {type(answers).__name__}")
        except asyncio.CancelledError:
            for futures in waiting.values():
                for future in futures:
                    future.cancel()
            raise
        except Exception as exc:
            # A batch that failed as a whole fails its own callers only; later batches start afresh.
            for futures in waiting.values():
                _settle(futures, exc)
            return
        for key, futures in waiting.items():
            _settle(futures, answers[key] if key in answers else MissingKey(key))


def _settle(futures, outcome):
    for future in futures:
        if future.done():  # its caller was cancelled (a closed socket, a dropped request)
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
