"""RQ stores a job as the dotted path of its function: the jobs already queued in Redis when a new
version is deployed (retries wait up to 15 minutes, failed jobs are kept a week, the cron scheduler
registers its jobs by path) run with the new code. Every path ever queued must still name a function;
renaming or moving a job keeps its old path importable (a forwarding name)."""

import pytest
from rq.utils import import_attribute

from models.actions import credentials
from workers.periodic import SCHEDULE
from workers.transport import job_function, job_path

# Every job path the released code has queued (the dispatcher, the delivery and email stages, the
# account emails, the periodic jobs). Add to this list; never remove from it.
QUEUED_JOB_PATHS = [
    "workers.delivery.deliver_events",
    "workers.delivery.deliver_event",
    "workers.delivery.send_emails",
    "workers.delivery.send_email",
    "workers.account_email.email_link_to_address",
    "workers.account_email.email_verification_link",
    "workers.periodic.reconcile_payments",
    "workers.periodic.reconcile_transfers",
    "workers.periodic.reconcile_refunds",
    "workers.periodic.send_booking_reminders",
    "workers.periodic.apply_retention",
]


@pytest.mark.parametrize("path", QUEUED_JOB_PATHS)
def test_a_job_path_once_queued_still_resolves(path):
    function = import_attribute(path)  # as an RQ worker does
    assert callable(function)
    assert job_function(path) is function  # as the embedded transport does


def test_the_jobs_queued_today_are_among_them():
    today = [credentials.EMAIL_LINK_JOB, credentials.VERIFICATION_LINK_JOB, *(job_path(job) for job, _ in SCHEDULE)]
    assert set(today) <= set(QUEUED_JOB_PATHS)


def test_emails_named_by_path_still_wait_in_the_email_queue():
    assert getattr(job_function("workers.delivery.send_emails"), "sends_email", False)
