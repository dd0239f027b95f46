"""`python -m server cron`: RQ's CronScheduler enqueues the periodic jobs (workers/periodic.py) on
their schedule; this loop replaces its `start()`, which dies on the first Redis error.

While Redis is down the loop waits with backoff (logged once per outage) and enqueues what fell due
as soon as Redis answers; its registration is renewed by the next heartbeat when Redis came back
empty. The jobs themselves need the database, not this process: a database outage is the workers'.
SIGTERM/SIGINT end the wait at once.
"""

import logging

from rq.cron import CronScheduler

from .outages import Outage, is_redis_outage

log = logging.getLogger("serviceman.cron")


def make_scheduler(transport, schedule):
    scheduler = CronScheduler(connection=transport.redis)
    for job, seconds in schedule:
        scheduler.register(job, queue_name=transport.queue.name, interval=seconds)
    return scheduler


def run_cron(transport, schedule, stopping, scheduler=None, backups=None):
    """Enqueue each job of `schedule` every its seconds until `stopping` is set; with `backups`
    (workers/backup.py's BackupSchedule) take a database backup whenever one falls due."""
    scheduler = scheduler or make_scheduler(transport, schedule)
    outage = Outage("Redis", log)
    registered = False
    log.info("cron %s: %d periodic jobs", scheduler.name, len(schedule))
    while not stopping():
        if backups is not None:
            backups.tick()  # in a thread of its own: Redis being down does not stop a backup
        try:
            if not registered:
                scheduler.register_birth()
                registered = True
            if scheduler.enqueue_jobs():
                scheduler.save()  # when each job last ran, for `rq cron` status
            scheduler.heartbeat()  # re-registers when Redis came back empty
        except Exception as exc:
            if not is_redis_outage(exc):
                raise
            outage.failed(exc)  # a job that fell due meanwhile is enqueued on the next round
            stopping.wait(outage.next_delay())
            continue
        outage.recovered()
        sleep = scheduler.calculate_sleep_interval()
        stopping.wait(sleep if backups is None else min(sleep, backups.seconds_until_due()))
    try:
        scheduler.register_death()
    except Exception as exc:
        if not is_redis_outage(exc):
            raise
    log.info("cron %s stopped", scheduler.name)
