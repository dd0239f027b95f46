"""The RQ worker of `python -m server worker`: jobs run in this process, one after another.

RQ's default Worker forks a work-horse per job, and each horse opens its own PostgreSQL connection
and SMTP connection: about 30 ms of overhead on jobs that take a few. This worker forks nothing, so
the database pool, the SMTP connection (workers/email.py) and the imported code are reused.

What the fork bought is kept otherwise: a job that raises is retried by RQ as before; a worker
that dies mid-job leaves the job in RQ's started registry, and once its heartbeat expires the next
worker's maintenance (every MAINTENANCE_SECONDS) retries it. Every job is idempotent, so a retried
batch does again only what it had not done.
"""
from rq import SimpleWorker

from models.db import database

MAINTENANCE_SECONDS = 60  # RQ's default is 10 minutes: a dead worker's batch would wait that long


class PipelineWorker(SimpleWorker):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("maintenance_interval", MAINTENANCE_SECONDS)
        super().__init__(*args, **kwargs)

    def execute_job(self, job, queue):
        # A pooled connection per job: checked on checkout, so a PostgreSQL restart costs one retry.
        with database.connection_context():
            return super().execute_job(job, queue)
