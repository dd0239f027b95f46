"""Idempotency keys (the IETF httpapi draft "The Idempotency-Key HTTP Header Field", as Stripe does it):
a POST, PATCH or DELETE sent again with the same key by the same user gets the first answer back.

The first request with a key claims it (a row, unique per user and key) with a lease; a retry finds
the row and, by its state (models/idempotency.py), gets the stored answer, 409 while the first still
runs, or 422 when its body is not the first one's. The domain change and the `applied` mark commit in
one transaction (`applied()`, called inside it), so no retry can act a second time, even after the
process that ran the first was killed between its commit and its answer. Rows live 24 hours.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

import peewee

from models.foundation.clock import utcnow
from models.foundation.errors import Conflict, ValidationFailed

from ..db import database, for_update
from ..idempotency import IdempotencyKey
from ..idempotency import IdempotencyState as S

KEEP = timedelta(hours=24)
RETRY_AFTER_SECONDS = 1


class Claim:
    """This request holds the key: run, then `store()` the answer."""

    def __init__(self, row_id: int, owner: str) -> None:
        self.row_id, self.owner = row_id, owner


class Replay:
    """The stored answer of an earlier request with this key."""

    def __init__(self, status: int | None, body: str | None) -> None:
        self.status, self.body = status, body


class KeyInUse(Conflict):
    code = "idempotency_key_in_use"
    message = "A request with this Idempotency-Key is still being processed; retry after a moment."

    def __init__(self) -> None:
        super().__init__(headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


class KeyReused(ValidationFailed):
    code = "idempotency_key_reused"
    message = (
        "This Idempotency-Key was already used for a different request (another method, path or body); "
        "use a new key for a new request."
    )


def claim(user_id: int, key: str, fingerprint: str, *, lease: timedelta, now: datetime | None = None) -> Claim | Replay:
    """Claim `key` for a new request (Claim), or answer what an earlier one decided (Replay), or
    raise KeyInUse / KeyReused. `lease` (IDEMPOTENCY_LEASE_SECONDS) is how long the claim is this
    request's alone: a request outlives it only past every timeout it can meet (Paystack's, the
    database's); a retry arriving later runs again (its first never committed) or replays what the
    first committed."""
    now = now or utcnow()
    for _ in range(3):  # a concurrent claimer may insert between our read and our insert: read again
        with database.atomic():
            row = for_update(
                IdempotencyKey.select().where(IdempotencyKey.user == user_id, IdempotencyKey.key == key)
            ).first()
            if row is not None and row.expires_at <= now:
                row.delete_instance()
                row = None
            if row is None:
                owner = secrets.token_hex(16)
                try:
                    with database.atomic():  # a savepoint: a lost race leaves the transaction usable
                        created = IdempotencyKey.create(
                            user=user_id,
                            key=key,
                            fingerprint=fingerprint,
                            owner=owner,
                            lease_until=now + lease,
                            created_at=now,
                            expires_at=now + KEEP,
                        )
                except peewee.IntegrityError:
                    continue
                # Each user's expired keys go when they next use one (no sweep to run).
                IdempotencyKey.delete().where(
                    IdempotencyKey.user == user_id, IdempotencyKey.expires_at <= now
                ).execute()
                return Claim(created.id, owner)
            return _decide(row, fingerprint, now, lease)
    raise KeyInUse()


def _decide(row: IdempotencyKey, fingerprint: str, now: datetime, lease: timedelta) -> Claim | Replay:
    if row.fingerprint != fingerprint:
        raise KeyReused()
    if row.state == S.DONE or (row.state == S.APPLIED and row.body is not None and row.lease_until <= now):
        return Replay(row.status_code, row.body)
    if row.lease_until > now or row.state == S.APPLIED:
        raise KeyInUse()
    # The first request's process died before committing anything: this one runs in its place.
    row.owner, row.lease_until = secrets.token_hex(16), now + lease
    row.save()
    return Claim(row.id, row.owner)


def applied(claim_: Claim, status: int | None = None, body: str | None = None) -> None:
    """Inside the transaction of the domain change: mark the key applied, with the answer as rendered
    from the change (replayed if this process dies before storing the one it sends). A claim taken
    over by another request meanwhile (this one outlived its lease) raises, rolling the change back."""
    changes: dict[Any, Any] = {IdempotencyKey.state: S.APPLIED}
    if status is not None:
        changes.update({IdempotencyKey.status_code: status, IdempotencyKey.body: body})
    updated = (
        IdempotencyKey.update(changes)
        .where(IdempotencyKey.id == claim_.row_id, IdempotencyKey.owner == claim_.owner)
        .execute()
    )
    if updated != 1:
        raise KeyInUse()


def store(claim_: Claim, status: int, body: str | None) -> None:
    """The answer sent: replayed from now on. 5xx and 429 answers are not kept: the key is freed
    (unless the change committed), and the retry runs again."""
    owned = (IdempotencyKey.id == claim_.row_id) & (IdempotencyKey.owner == claim_.owner)
    if status >= 500 or status == 429:
        IdempotencyKey.delete().where(owned, IdempotencyKey.state == S.RUNNING).execute()
        return
    IdempotencyKey.update(state=S.DONE, status_code=status, body=body).where(owned).execute()
