"""GET /api/sync/: the mobile apps' catch-up, conditional poll and long-poll (issue 24).

The changes themselves are the domain's (models/actions/sync.py); this handler adds HTTP's side:
the cursor is the ETag, If-None-Match with nothing new is a bodiless 304 (from memory when this
process heard nothing for the user since it last read that cursor: handlers/web/sync_watch.py), and
`wait` holds a request with nothing new until the user's channel carries a message or time runs out.
A held request whose session ends (sign-out everywhere, password change, deactivation) answers 401 at once.

A poll answered 304 from memory reads no row at all, not even its user's: the token (or cookie) is
checked as everywhere, and the memory is kept per session, for the session that was last read from
the database with that cursor. A session's end is a message on the user's channel (as it closes their
sockets), and any message forgets the user's memory, so from that instant every poll of theirs goes to
the database again and an ended session is 401. A 304 reveals nothing but "nothing new".
"""

import asyncio

import tornado.ioloop

from models.actions import sync
from models.foundation import log_context
from models.foundation.errors import ValidationFailed

from .base import SIGNED_IN, BaseHandler, endpoint
from .schemas.sync import SyncQuerySchema, SyncSchema

# What a 304 does not need (no body to sniff, frame or script); fewer bytes on a metered network.
BODY_ONLY_HEADERS = (
    "Content-Security-Policy",
    "X-Frame-Options",
    "X-Content-Type-Options",
    "Referrer-Policy",
    "X-Request-ID",
)
IF_NONE_MATCH = "If-None-Match"
DESCRIPTION = (
    "Without `since`: a snapshot (the latest notifications, the caller's open bookings, or the whole open queue "
    "for admins) and a `cursor`. With `since=<cursor>`: exactly what changed since, for the caller: new "
    "notifications (oldest first), ids that became read on any device, the unread count, the bookings whose "
    "status, money or dates changed; `has_more` means call again at once. Nothing is missed or repeated across "
    "consecutive calls. The answer's ETag is its cursor: with `If-None-Match` and nothing new the answer is 304 "
    "without a body. Without `since`, an `If-None-Match` naming one ETag continues from that cursor, as "
    "`since` would (the cursor need not be sent twice). `wait=N` (0-25 s) holds a call with nothing new until "
    "something changes or N seconds pass. "
    "A cursor older than 7 days is 410 `cursor_expired`: start again without `since`."
)


def _entity_tags(header):
    return {tag.strip().removeprefix("W/").strip('"') for tag in header.split(",")} if header else set()


def _polled_cursor(since, tags):
    """The cursor a poll continues from: `since`, or without it the one entity tag it names (a previous
    answer's ETag); None for a snapshot."""
    if since is not None or not tags:
        return since
    tag = next(iter(tags)) if len(tags) == 1 else None
    if tag is None or not sync.is_cursor(tag):
        raise ValidationFailed.on(IF_NONE_MATCH, "Without `since`, one entity tag: the ETag of a previous sync answer.")
    return tag


class SyncHandler(BaseHandler):
    # For the OpenAPI document (server/openapi.py): the conditional request and its answers.
    header_parameters = (
        {
            "in": "header",
            "name": IF_NONE_MATCH,
            "required": False,
            "description": "The previous answer's ETag (its cursor, quoted): with nothing new the answer is 304. "
            "Without `since` it also stands in for `since`.",
            "schema": {"type": "string", "example": '"1.lwx0q2bk4g"'},
        },
    )
    response_headers = {"ETag": {"description": "The answer's cursor, quoted.", "schema": {"type": "string"}}}
    not_modified = "Nothing new since the cursor named by If-None-Match: no body."

    @endpoint(
        operation_id="getSync",
        roles=SIGNED_IN,
        summary="What changed for the caller since a cursor (mobile sync)",
        query=SyncQuerySchema,
        response=SyncSchema(),
        errors=(401, 410),
        tags=("notifications",),
        description=DESCRIPTION,
    )
    async def get(self):
        # Without `since` the ETag stands in for it: a poll need not send its cursor twice.
        since, wait = _polled_cursor(self.query.get("since"), self.tags), self.query["wait"]
        known = since is not None and since in self.tags
        hub, watch, loop = self.hub, self.hub.watch, tornado.ioloop.IOLoop.current()
        deadline = loop.time() + wait
        while True:
            if known and watch.is_quiet(self.session, since):
                result = None  # nothing new, known without a query
            else:
                mark = min(watch.mark(), self.auth_mark)  # anything heard since the session was read counts
                if self.user is None:  # admitted from memory, or woken: the session is read with the changes
                    self.current_user_obj, result = await self.run(
                        sync.sync_for_session, self.session, since, count_when_empty=not known
                    )
                else:
                    result = await self.run(sync.sync, self.user, since, count_when_empty=not known)
                if since is not None and result.empty and result.cursor == since and sync.keyless(since):
                    # (a cursor with keys is read again until it sheds them, a lag after its last change)
                    watch.remember_quiet(self.session, since, mark)
            remaining = deadline - loop.time()
            quiet = result is None or (result.empty and result.cursor == since)
            if quiet and remaining > 0 and not hub.closing:
                self._held = asyncio.ensure_future(watch.wait(self.session[0], remaining))
                try:
                    await self._held
                except asyncio.CancelledError:
                    return  # the client went away (on_connection_close): nobody to answer
                # The session is read again with the changes (401 now if it ended meanwhile), or, when
                # nothing came and memory still answers, not at all (a 304, as on admission).
                self.auth_mark, self.current_user_obj = watch.mark(), None
                continue
            break
        if result is None or (known and result.cursor == since):
            return self._not_modified(since)
        self.set_header("ETag", f'"{result.cursor}"')
        await self.respond(result)

    @property
    def hub(self):
        hub = self.application.settings["hub"]
        hub.attach()
        return hub

    async def _authenticate(self):
        """A conditional poll that memory answers is admitted on its token alone (see the module's
        docstring); `self.user` stays None until the database is read. Any other call reads it."""
        self.session = self._presented_session()
        self.tags = _entity_tags(self.request.headers.get(IF_NONE_MATCH))
        self.auth_mark = self.hub.watch.mark()  # before the read: a message from now on makes it stale
        if self._answerable_from_memory():
            log_context.user_id.set(self.session[0])
            return None
        return await super()._authenticate()

    def _answerable_from_memory(self):
        try:
            since = _polled_cursor(self.get_query_argument("since", None), self.tags)
        except ValidationFailed:
            return False  # answered as a 422 once the query is read
        hub = self.hub
        return since in self.tags and not hub.session_ended(*self.session) and hub.watch.is_quiet(self.session, since)

    def on_connection_close(self):
        held = getattr(self, "_held", None)
        if held is not None:
            held.cancel()  # a held poll's client hung up: stop holding it (its memory goes now)
        super().on_connection_close()

    def _not_modified(self, cursor):
        for name in BODY_ONLY_HEADERS:
            self.clear_header(name)
        self.set_header("ETag", f'"{cursor}"')
        self.set_status(304)
        self.finish()


default_handlers = [(r"/api/sync/", SyncHandler)]
