"""Mobile sync: what changed for a user since a cursor, in one call (`GET /api/sync/`, issue 24).

Three streams, each ordered by a change stamp written with the change:
    notifications  new rows for the user             Notification.created_at
    read           rows that became read             Notification.read_at
    requests       the user's bookings that changed  ServiceRequest.updated_at (status, money, dates)

Why not "id > last id": ids and stamps are taken before their transaction commits, so on PostgreSQL
a row with a smaller stamp (or id) can become visible after a larger one was already served. A
watermark that jumps past it would lose it. So the cursor keeps, per stream, a watermark `w` that
trails the read by LAG (which bounds the time between a stamp and its commit, clock skew between
processes included), and the keys (stream, id, stamp) of what it already served at or after `w`.
A call reads every row with stamp >= w, leaves out the ones the cursor has served, and the next
watermark is max(w, start of this read - LAG):
- nothing lost: a row not yet committed when this read began has stamp > start - LAG (it commits
  within LAG of its stamp), so it is >= the next watermark and the next call reads it;
- nothing repeated: a row served here and still >= the next watermark is in the next cursor's keys.
Paging (has_more) never moves a watermark past the last row served. The keys are few: only rows
served within the last LAG seconds (usually none, so a quiet cursor is ~40 bytes).
A row committed more than LAG after its stamp (a transaction stalled that long) could be missed.
On PostgreSQL no one wait stalls our transactions that long: a lock is waited for at most 4 s and a
transaction left idle for 5 s is ended by the server (models/db.py SESSION_OPTIONS). SQLite runs one writer at a time,
which takes the database as its transaction begins (IMMEDIATE): rows stamped inside commit in order.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import peewee

from models.foundation.clock import utcnow
from models.foundation.errors import ApiError, ValidationFailed

from ..notifications import Notification
from ..service_requests import RequestStatus, ServiceRequest
from ..users import Role, User
from .notifications import unread_count_for
from .sessions import SessionKey, user_at_version

LAG = timedelta(seconds=10)
RETENTION = timedelta(days=7)  # a cursor older than this answers 410: start again with a snapshot
PAGE = {"n": 100, "r": 500, "q": 100}  # rows per stream per call; has_more says there are more
SNAPSHOT_NOTIFICATIONS = 20
CLOSED = (RequestStatus.COMPLETED, RequestStatus.CANCELLED)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# "1", then the three watermarks (n, r, q), or one when they are equal (a quiet cursor's usual case: 12
# characters instead of 34, sent twice by every poll), then the keys served at or after them.
_CURSOR = re.compile(r"^1\.[0-9a-z]{1,13}(\.[0-9a-z]{1,13}\.[0-9a-z]{1,13})?(\.[nrq][0-9a-z]{1,13}-[0-9a-z]{1,13})*$")
MAX_SEEN = 2000


class CursorExpired(ApiError):
    status, code = 410, "cursor_expired"
    message = "This sync cursor is too old to continue from; call GET /api/sync/ without `since` for a new snapshot."


def _us(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _moment(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _b36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if not number:
            return out


@dataclass
class Cursor:
    """Per stream a watermark (microseconds since the epoch) and the keys served at or after it."""

    marks: dict[str, int]
    seen: set[tuple[str, int, int]] = field(default_factory=set)  # {(stream, id, stamp in µs)}

    def encode(self) -> str:
        marks = {self.marks[s] for s in "nrq"}
        parts = ["1", *(_b36(self.marks[s]) for s in ("n" if len(marks) == 1 else "nrq"))]
        parts += [f"{s}{_b36(i)}-{_b36(t)}" for s, i, t in sorted(self.seen)]
        return ".".join(parts)

    @classmethod
    def decode(cls, text: str) -> Cursor:
        if not is_cursor(text):
            raise ValidationFailed.on("since", "Not a cursor this server gave; start again without `since`.")
        parts = text.split(".")
        count = 3 if len(parts) > 3 and "-" not in parts[3] else 1  # (_CURSOR: marks have no "-", keys do)
        values = [int(p, 36) for p in parts[1 : 1 + count]]
        marks = dict(zip("nrq", values * (3 // count), strict=True))
        seen: set[tuple[str, int, int]] = set()
        for item in parts[1 + count :]:
            ident, stamp = item[1:].split("-")
            seen.add((item[0], int(ident, 36), int(stamp, 36)))
        return cls(marks, seen)


def is_cursor(text: str) -> bool:
    """Whether `text` has the shape of a cursor this server gives (decode() checks it again)."""
    return len(text) <= 40_000 and bool(_CURSOR.match(text))


def keyless(cursor_text: str) -> bool:
    """Whether a cursor carries no keys (its stream quiet for longer than the lag): it stays the same
    until something changes, so "nothing new" may be remembered for it."""
    return "-" not in cursor_text


def _requests_of(user: User) -> peewee.ModelSelect[ServiceRequest]:
    """The bookings whose changes the user follows, deleted ones included (they changed too)."""
    query = ServiceRequest.select(
        ServiceRequest.id,
        ServiceRequest.status,
        ServiceRequest.updated_at,
        ServiceRequest.booking_fee,
        ServiceRequest.estimate_amount,
        ServiceRequest.final_cost,
        ServiceRequest.is_emergency,
        ServiceRequest.booking_date,
        ServiceRequest.is_deleted,
    )
    if user.role == Role.CLIENT:
        return query.where(ServiceRequest.client == user.id)
    if user.role == Role.SERVICEMAN:
        return query.where(
            (ServiceRequest.primary_serviceman == user.id) | (ServiceRequest.backup_serviceman == user.id)
        )
    return query  # admins follow the whole queue


def _streams(user: User) -> dict[str, tuple[Any, Any, Callable[[Any], datetime]]]:
    own = Notification.select().where(Notification.user == user.id)
    reads = Notification.select(Notification.id, Notification.read_at).where(Notification.user == user.id)
    return {
        "n": (own, Notification.created_at, lambda row: row.created_at),
        "r": (reads, Notification.read_at, lambda row: row.read_at),
        "q": (_requests_of(user), ServiceRequest.updated_at, lambda row: row.updated_at),
    }


@dataclass
class SyncResult:
    cursor: str
    notifications: list[Any]
    read: list[int]
    requests: list[Any]
    unread_count: int | None
    has_more: bool

    @property
    def empty(self) -> bool:
        return not (self.notifications or self.read or self.requests)


def sync(
    user: User, since: str | None = None, now: datetime | None = None, count_when_empty: bool = True
) -> SyncResult:
    """Everything that changed for `user` since the cursor `since`, or a snapshot without one. With
    nothing new the cursor is `since` itself (so is its ETag), and the unread count is read only if
    `count_when_empty` (a 304 does not need it)."""
    now = now or utcnow()
    if since is None:
        return _snapshot(user, now)
    cursor = Cursor.decode(since)
    if min(cursor.marks.values()) < _us(now - RETENTION):
        raise CursorExpired()
    floor = _us(now - LAG)
    served: dict[str, list[Any]] = {}
    marks: dict[str, int] = {}
    seen: set[tuple[str, int, int]] = set()
    has_more = False
    for stream, (query, stamp_field, stamp_of) in _streams(user).items():
        mark = cursor.marks[stream]
        known = {(s, i, t) for s, i, t in cursor.seen if s == stream}
        rows = list(
            query.where(stamp_field >= _moment(mark))
            .order_by(stamp_field, query.model.id)
            .limit(PAGE[stream] + len(known) + 1)
        )
        fresh = [r for r in rows if (stream, r.id, _us(stamp_of(r))) not in known]
        more = len(fresh) > PAGE[stream] or len(rows) == PAGE[stream] + len(known) + 1
        fresh = fresh[: PAGE[stream]]
        new_mark = max(mark, floor)
        if more:
            has_more = True
            new_mark = min(new_mark, _us(stamp_of(fresh[-1]))) if fresh else mark
        marks[stream] = new_mark
        keys = known | {(stream, r.id, _us(stamp_of(r))) for r in fresh}
        seen |= {k for k in keys if k[2] >= new_mark}
        served[stream] = fresh
    if not any(served.values()):
        # Nothing new: the same cursor (its ETag), so a poll with If-None-Match answers 304; unless keys it
        # carries fell behind the lag, then once a smaller cursor (a quiet one has no keys: ~40 bytes).
        unchanged = seen == cursor.seen
        return SyncResult(
            since if unchanged else Cursor(marks, seen).encode(),
            [],
            [],
            [],
            unread_count_for(user.id) if count_when_empty or not unchanged else None,
            False,
        )
    if len(seen) > MAX_SEEN:  # a burst bigger than any page: keep the cursor bounded
        raise CursorExpired()
    return SyncResult(
        Cursor(marks, seen).encode(),
        served["n"],
        [r.id for r in served["r"]],
        served["q"],
        unread_count_for(user.id),
        has_more,
    )


def sync_for_session(
    session: SessionKey, since: str | None = None, count_when_empty: bool = True
) -> tuple[User, SyncResult]:
    """`sync` for the user of `session` (user id, version, dashboard session), read in the same trip:
    NotAuthenticated if that session ended. A long-poll woken by a change needs both at once."""
    user = user_at_version(*session)
    return user, sync(user, since, count_when_empty=count_when_empty)


def _snapshot(user: User, now: datetime) -> SyncResult:
    """The latest notifications (oldest first), the open bookings, and a cursor continuing from now."""
    floor = _us(now - LAG)
    latest = list(
        Notification.select()
        .where(Notification.user == user.id)
        .order_by(Notification.created_at.desc(), Notification.id.desc())
        .limit(SNAPSHOT_NOTIFICATIONS)
    )
    latest.reverse()
    open_requests = list(
        _requests_of(user)
        .where(ServiceRequest.status.not_in(CLOSED), ServiceRequest.is_deleted == False)
        .order_by(ServiceRequest.updated_at, ServiceRequest.id)
        .limit(PAGE["q"])
    )
    recent_reads = list(
        Notification.select(Notification.id, Notification.read_at).where(
            Notification.user == user.id, Notification.read_at >= _moment(floor)
        )
    )
    # Whatever this snapshot shows from the last LAG seconds is marked served, the rest is past the marks.
    seen = {("n", n.id, _us(n.created_at)) for n in latest if _us(n.created_at) >= floor}
    seen |= {("r", n.id, _us(n.read_at)) for n in recent_reads}
    seen |= {("q", r.id, _us(r.updated_at)) for r in open_requests if _us(r.updated_at) >= floor}
    cursor = Cursor({"n": floor, "r": floor, "q": floor}, seen)
    return SyncResult(
        cursor.encode(), latest, [n.id for n in recent_reads], open_requests, unread_count_for(user.id), False
    )
