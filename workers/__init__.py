"""The notification pipeline: outbox publishing, the stream dispatcher, and the delivery jobs.

Stages are plain functions taking ids (deliver_events, send_emails: idempotent batches); only the
transport between them (workers/transport.py) differs between Redis mode and the embedded
single-process mode.
"""
