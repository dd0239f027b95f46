"""handlers/web/coalesce.py: lookups made during one loop iteration share one batch call; each caller
gets its own answer or its own error, and a failing batch fails only its own callers."""

import asyncio
import threading

import pytest

from handlers.web.coalesce import BatchLoader, MissingKey


class Recorder:
    """A batch function that records the keys of each call, answered from a thread like run_sync."""

    def __init__(self, answer=None):
        self.calls = []
        self.answer = answer or (lambda keys: {key: key * 10 for key in keys})

    def __call__(self, keys):
        self.calls.append(list(keys))
        return self.answer(keys)


async def in_a_thread(fn, keys):
    return await asyncio.to_thread(fn, keys)


def loader(fn, **kwargs):
    return BatchLoader(fn, run=in_a_thread, **kwargs)


async def gather(loader_, keys):
    return await asyncio.gather(*(loader_.load(key) for key in keys), return_exceptions=True)


def test_concurrent_loads_make_one_batch_call_and_each_caller_gets_its_own_value():
    fn = Recorder()
    results = asyncio.run(gather(loader(fn), range(50)))
    assert fn.calls == [list(range(50))]
    assert results == [key * 10 for key in range(50)]


def test_loads_from_coroutines_that_await_first_still_join_the_batch_of_their_iteration():
    fn = Recorder()
    users = loader(fn)

    async def after_a_tick(key):
        await asyncio.sleep(0)
        return await users.load(key)

    async def go():
        return await asyncio.gather(*(after_a_tick(key) for key in range(20)))

    assert asyncio.run(go()) == [key * 10 for key in range(20)]
    assert fn.calls == [list(range(20))]


def test_a_key_asked_twice_in_one_batch_is_looked_up_once_and_answers_both():
    fn = Recorder()
    results = asyncio.run(gather(loader(fn), [7, 3, 7]))
    assert fn.calls == [[7, 3]]
    assert results == [70, 30, 70]


def test_an_exception_for_one_key_fails_only_that_keys_callers():
    fn = Recorder(lambda keys: {key: ValueError(f"bad {key}") if key == 2 else key for key in keys})
    results = asyncio.run(gather(loader(fn), [1, 2, 3, 2]))
    assert [r for r in results if not isinstance(r, Exception)] == [1, 3]
    assert [str(r) for r in results if isinstance(r, Exception)] == ["bad 2", "bad 2"]
    assert len(fn.calls) == 1


def test_a_key_missing_from_the_answer_fails_its_caller_with_missing_key():
    fn = Recorder(lambda keys: {key: key for key in keys if key != 5})
    results = asyncio.run(gather(loader(fn), [4, 5]))
    assert results[0] == 4
    assert isinstance(results[1], MissingKey)


def test_a_batch_that_raises_fails_its_callers_only_and_the_next_batch_works():
    def answer(keys):
        if "boom" in keys:
            raise RuntimeError("database down")
        return {key: key.upper() for key in keys}

    fn = Recorder(answer)
    users = loader(fn, max_batch=2)

    async def go():
        # max_batch 2: ["a", "boom"] and ["b", "c"] are two batches in the same iteration.
        same_iteration = await gather(users, ["a", "boom", "b", "c"])
        later = await gather(users, ["d"])
        return same_iteration, later

    same_iteration, later = asyncio.run(go())
    assert [type(r) for r in same_iteration[:2]] == [RuntimeError, RuntimeError]
    assert same_iteration[2:] == ["B", "C"]
    assert later == ["D"]
    assert fn.calls == [["a", "boom"], ["b", "c"], ["d"]]


def test_a_batch_function_that_answers_no_dict_fails_its_callers_with_type_error():
    results = asyncio.run(gather(loader(Recorder(lambda keys: [1])), [1]))
    assert isinstance(results[0], TypeError)


def test_max_batch_bounds_each_call():
    fn = Recorder()
    results = asyncio.run(gather(loader(fn, max_batch=4), range(10)))
    assert results == [key * 10 for key in range(10)]
    assert [len(keys) for keys in fn.calls] == [4, 4, 2]


def test_nothing_is_cached_each_batch_calls_the_function_again():
    version = {"n": 1}
    fn = Recorder(lambda keys: {key: version["n"] for key in keys})
    users = loader(fn)

    async def go():
        first = await users.load("u")
        version["n"] = 2  # e.g. the account was deactivated meanwhile
        return first, await users.load("u")

    assert asyncio.run(go()) == (1, 2)
    assert len(fn.calls) == 2


def test_a_cancelled_caller_does_not_disturb_the_others():
    release = threading.Event()
    fn = Recorder(lambda keys: release.wait(5) and {key: key for key in keys})
    users = loader(fn)

    async def go():
        first, second = asyncio.ensure_future(users.load(1)), asyncio.ensure_future(users.load(1))
        await asyncio.sleep(0.05)  # the batch is running in its thread
        first.cancel()
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await first
        return await second

    assert asyncio.run(go()) == 1
    assert fn.calls == [[1]]


def test_one_loader_serves_several_event_loops_in_turn():
    fn = Recorder()
    users = loader(fn)
    assert asyncio.run(gather(users, [1, 2])) == [10, 20]
    assert asyncio.run(gather(users, [3])) == [30]
    assert fn.calls == [[1, 2], [3]]


def test_by_default_the_batch_runs_on_the_domain_pool_with_a_connection(database):
    from handlers.web.executor import run_sync

    threads = []
    fn = Recorder(lambda keys: threads.append(threading.current_thread().name) or {key: key for key in keys})
    assert BatchLoader(fn).run is run_sync
    assert asyncio.run(gather(BatchLoader(fn), [1, 2])) == [1, 2]
    assert threads and threads[0].startswith("domain")


class Gated(Recorder):
    """A batch function whose calls (recorded as they start) wait until the test opens the gate."""

    def __init__(self):
        super().__init__()
        self.gate = threading.Event()

    def __call__(self, keys):
        self.calls.append(list(keys))
        self.gate.wait(5)
        return self.answer(keys)


async def asked(users, *keys):
    """Loads of `keys` started, and time for their batch to reach the pool (or to be held back)."""
    loads = [asyncio.ensure_future(users.load(key)) for key in keys]
    await asyncio.sleep(0.05)
    return loads


def test_keys_asked_while_the_pool_is_busy_wait_and_go_together_when_a_batch_returns():
    fn = Gated()
    users = loader(fn, max_in_flight=1)

    async def go():
        first = await asked(users, 1)
        later = [asyncio.ensure_future(users.load(key)) for key in (2, 3)]
        await asyncio.sleep(0)
        more = asyncio.ensure_future(users.load(4))  # a later loop iteration: still joins
        await asyncio.sleep(0.05)
        assert fn.calls == [[1]]  # [2, 3, 4] waits for the batch in the pool
        fn.gate.set()
        return await asyncio.gather(*first, *later, more)

    assert asyncio.run(go()) == [10, 20, 30, 40]
    assert fn.calls == [[1], [2, 3, 4]]


def test_a_full_batch_goes_at_once_even_while_another_is_in_the_pool():
    fn = Gated()
    users = loader(fn, max_batch=2, max_in_flight=1)

    async def go():
        first = await asked(users, 1)
        full = await asked(users, 2, 3)
        assert fn.calls == [[1], [2, 3]]  # both in the pool at once
        fn.gate.set()
        return await asyncio.gather(*first, *full)

    assert asyncio.run(go()) == [10, 20, 30]


def test_below_max_in_flight_a_batch_goes_at_the_end_of_its_iteration():
    fn = Gated()
    users = loader(fn, max_in_flight=2)

    async def go():
        loads = await asked(users, 1) + await asked(users, 2)
        assert fn.calls == [[1], [2]]  # a slow batch holds up no other
        loads += await asked(users, 3)
        assert fn.calls == [[1], [2]]  # two in the pool: [3] waits
        fn.gate.set()
        return await asyncio.gather(*loads)

    assert asyncio.run(go()) == [10, 20, 30]
    assert fn.calls == [[1], [2], [3]]


def test_a_batch_that_fails_still_lets_the_next_one_go():
    answers = iter([RuntimeError("first fails"), None])

    def answer(keys):
        outcome = next(answers)
        if outcome:
            raise outcome
        return {key: key for key in keys}

    fn = Gated()
    fn.answer = answer
    users = loader(fn, max_in_flight=1)

    async def go():
        loads = await asked(users, 1) + await asked(users, 2)
        assert fn.calls == [[1]]  # [2] waits for the batch in the pool, and goes though that one fails
        fn.gate.set()
        return await asyncio.gather(*loads, return_exceptions=True)

    first, second = asyncio.run(go())
    assert isinstance(first, RuntimeError) and second == 2
