"""The process's pipeline, built once by the composition root (server/app.py for the web process,
server/__main__.py for the dispatcher, worker, cron and reconcile commands).

`start_pipeline` builds the Pipeline (settings, transport, Paystack client), installs it for the
stages and jobs (workers/runtime.py: RQ jobs are entered with ids only) and registers, once per
process, the after-commit hooks that announce every committed event: to the outbox (publish it), to
the listing caches, and to the sync long-polls of the request's people. The domain is handed the
pipeline's transport by its callers (handlers read it from the application); it reads no global for it.
"""

import functools

from models.workflow import on_event_committed
from workers import outbox, runtime, sync_hints


@functools.cache
def register_after_commit_hooks():
    """Once per process, whatever number of apps or pipelines it builds (tests build many)."""
    # Whatever process commits an event (web, worker, cron) tells the web processes' listing caches,
    # first: the embedded transport delivers the event in the publish itself.
    on_event_committed(outbox.announce_listing_changed)
    on_event_committed(outbox.publish_committed)
    on_event_committed(sync_hints.announce)  # wakes the sync long-polls of the request's people (issue 24)


def start_pipeline(settings, transport, paystack=None):
    """This process's pipeline; its transport None leaves committed events to the outbox sweep."""
    pipeline = runtime.install(runtime.Pipeline(settings, transport, paystack))
    register_after_commit_hooks()
    return pipeline
