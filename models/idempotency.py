"""Idempotency keys: what a client's retried POST, PATCH or DELETE must answer instead of acting again.

One row per (user, key), kept 24 hours. `state` says how far the first request got:
- `running`: claimed, nothing committed yet; `lease_until` bounds how long its owner may still be
  at work (a process killed mid-request leaves only a lease that expires, then a retry runs again);
- `applied`: the domain change committed, in the same transaction as this mark and a provisional
  answer rendered from its result (so a process killed between that commit and its answer leaves an
  answer to replay, never a second booking);
- `done`: the answer the client was sent (status and body), replayed byte for byte.
"""

import peewee

from .base import BaseModel, UTCDateTimeField
from .users import User


class IdempotencyState:
    RUNNING, APPLIED, DONE = "running", "applied", "done"


class IdempotencyKey(BaseModel):
    user = peewee.ForeignKeyField(User, backref="+", on_delete="CASCADE")
    key = peewee.CharField(max_length=255)
    fingerprint = peewee.CharField(max_length=64)  # SHA-256 of method, path and body
    state = peewee.CharField(max_length=10, default=IdempotencyState.RUNNING)
    owner = peewee.CharField(max_length=32)  # a random token of the request holding the lease
    lease_until = UTCDateTimeField()
    status_code = peewee.IntegerField(null=True)
    body = peewee.TextField(null=True)
    created_at = UTCDateTimeField()
    expires_at = UTCDateTimeField()

    class Meta:
        indexes = ((("user", "key"), True),)
