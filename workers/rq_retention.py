"""Orphaned RQ job records: a job hash (`rq:job:<id>`) that no queue and no registry holds any more and
that has no expiry stays in Redis for ever (a worker killed between two of RQ's steps, a registry
entry lost with a Redis failover). Finished jobs (result_ttl=0) and failed ones (failure_ttl) expire by
themselves, and a job waiting, running, retrying or deferred is always in a queue or a registry; so a
record with neither, untouched for ORPHAN_AFTER_SECONDS, is one nobody will ever run or read.

The queues and registries are read twice, before and after the scan, and only a job found in neither
reading is deleted: a job moving between two of them while the first was read is never taken for an
orphan.
"""

import logging
from datetime import UTC, datetime

from rq.exceptions import NoSuchJobError
from rq.job import Job

log = logging.getLogger("serviceman.retention")

ORPHAN_AFTER_SECONDS = 3600  # far beyond a job's longest run (RQ's timeout) or retry wait (15 min)
JOB_KEY_PREFIX = "rq:job:"
_TIMESTAMPS = (b"last_heartbeat", b"ended_at", b"started_at", b"enqueued_at", b"created_at")


def _registries(queue):
    return (
        queue.started_job_registry,
        queue.finished_job_registry,
        queue.failed_job_registry,
        queue.deferred_job_registry,
        queue.scheduled_job_registry,
        queue.canceled_job_registry,
    )


def _held_job_ids(queues):
    held = set()
    for queue in queues:
        held.update(queue.get_job_ids())
        for registry in _registries(queue):
            held.update(registry.get_job_ids(cleanup=False))  # cleaning up is the workers' maintenance
    return held


def _last_touched(redis, key):
    """The latest of the job's timestamps, or None when it has none readable."""
    latest = None
    for value in redis.hmget(key, _TIMESTAMPS):
        if not value:
            continue
        try:
            stamp = datetime.fromisoformat(value.decode().replace("Z", "+00:00"))
        except ValueError:
            continue
        stamp = stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
        latest = stamp if latest is None or stamp > latest else latest
    return latest


def _orphan_candidates(redis, queues, now, older_than):
    held = _held_job_ids(queues)
    for key in redis.scan_iter(match=f"{JOB_KEY_PREFIX}*", count=1000):
        job_id = key.decode()[len(JOB_KEY_PREFIX) :]
        if ":" in job_id or job_id in held:  # rq:job:<id>:dependents and the like are not job records
            continue
        if redis.ttl(key) != -1:  # expiring by itself (or gone meanwhile)
            continue
        touched = _last_touched(redis, key)
        if touched is not None and (now - touched).total_seconds() < older_than:
            continue
        yield job_id


def delete_orphaned_jobs(redis, queues, now=None, older_than=ORPHAN_AFTER_SECONDS):
    """Delete the records of jobs in no queue and no registry; how many were deleted."""
    now = now or datetime.now(UTC)
    deleted = 0
    candidates = set(_orphan_candidates(redis, queues, now, older_than))
    for job_id in candidates - _held_job_ids(queues):  # not one that moved while we looked
        try:
            Job.fetch(job_id, connection=redis).delete(remove_from_queue=False)
        except NoSuchJobError:
            continue
        except Exception:  # a record RQ cannot read (a function since renamed...) is still an orphan
            redis.delete(f"{JOB_KEY_PREFIX}{job_id}")
        deleted += 1
    if deleted:
        log.info("deleted %d orphaned RQ job records", deleted)
    return deleted
