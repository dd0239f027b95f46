"""GET /api/sync/: the mobile apps' catch-up, conditional poll and long-poll (issue 24).

The changes themselves are the domain's (models/actions/sync.py); this handler adds HTTP's side:
the cursor is the ETag, If-None-Match with nothing new is a bodiless 304 (from memory when this
process heard nothing for the user since it last read that cursor: handlers/web/sync_watch.py), and
`wait` holds a request with nothing new until the user's channel carries a message or time runs out.
A held request whose session ends (sign-out everywhere, password change, deactivation) answers 401 at once.
"""

import asyncio

import tornado.ioloop

from models.actions import sync

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
DESCRIPTION = (
    "Without `since`: a snapshot (the latest notifications, the caller's open bookings, or the whole open queue "
    "for admins) and a `cursor`. With `since=<cursor>`: exactly what changed since, for the caller: new "
    "notifications (oldest first), ids that became read on any device, the unread count, the bookings whose "
    "status, money or dates changed; `has_more` means call again at once. Nothing is missed or repeated across "
    "consecutive calls. The answer's ETag is its cursor: with `If-None-Match` and nothing new the answer is 304 "
    "without a body. `wait=N` (0-25 s) holds a call with nothing new until something changes or N seconds pass. "
    "A cursor older than 7 days is 410 `cursor_expired`: start again without `since`."
)


def _entity_tags(header):
    return {tag.strip().removeprefix("W/").strip('"') for tag in header.split(",")} if header else set()


class SyncHandler(BaseHandler):
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
        since, wait = self.query.get("since"), self.query["wait"]
        known = since is not None and since in _entity_tags(self.request.headers.get("If-None-Match"))
        hub = self.application.settings["hub"]
        hub.attach()
        watch, loop = hub.watch, tornado.ioloop.IOLoop.current()
        deadline = loop.time() + wait
        while True:
            if known and watch.is_quiet(self.user.id, since):
                result = None  # nothing new, known without a query
            else:
                mark = watch.mark()
                result = await self.run(sync.sync, self.user, since, count_when_empty=not known)
                if since is not None and result.empty and result.cursor == since and sync.keyless(since):
                    # (a cursor with keys is read again until it sheds them, a lag after its last change)
                    watch.remember_quiet(self.user.id, since, mark)
            remaining = deadline - loop.time()
            quiet = result is None or (result.empty and result.cursor == since)
            if quiet and remaining > 0 and not hub.closing:
                self._held = asyncio.ensure_future(watch.wait(self.user.id, remaining))
                try:
                    await self._held
                except asyncio.CancelledError:
                    return  # the client went away (on_connection_close): nobody to answer
                self.current_user_obj = await self._authenticate()  # 401 now if the session ended meanwhile
                continue
            break
        if result is None or (known and result.cursor == since):
            return self._not_modified(since)
        self.set_header("ETag", f'"{result.cursor}"')
        await self.respond(result)

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
