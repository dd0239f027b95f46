"""Dashboard notifications over REST; every change of read state is pushed as a new unread count."""

from models.actions import notifications
from models.notifications import Notification
from workers.delivery import push_unread_count

from .base import SIGNED_IN, BaseHandler, endpoint
from .schemas.notifications import MarkedSchema, NotificationListQuerySchema, NotificationSchema, UnreadCountSchema
from .schemas.rows import with_rows
from .web.idempotent import AFTER

TAGS = ("notifications",)
NotificationListOut = with_rows(NotificationSchema(), Notification)


def _mark_one(transport, user, notification_id):
    notification = notifications.mark_read(user, notification_id)
    push_unread_count(transport, user.id)
    return notification


def _mark_all(transport, user):
    updated = notifications.mark_all_read(user)
    push_unread_count(transport, user.id)
    return {"updated": updated, "count": 0}


class NotificationListHandler(BaseHandler):
    @endpoint(
        operation_id="listNotifications",
        roles=SIGNED_IN,
        summary="Own notifications, newest first",
        query=NotificationListQuerySchema,
        response=NotificationListOut,
        paginated=True,
        errors=(401, 422),
        tags=TAGS,
    )
    async def get(self):
        await self.respond(notifications.list_notifications(self.user, self.query.get("is_read")))


class NotificationReadHandler(BaseHandler):
    @endpoint(
        operation_id="markNotificationRead",
        roles=SIGNED_IN,
        summary="Mark one notification read",
        response=NotificationSchema(),
        errors=(401, 404),
        tags=TAGS,
        idempotency=AFTER,
    )
    async def post(self, notification_id):
        await self.respond(await self.run(_mark_one, self.transport, self.user, int(notification_id)))


class NotificationReadAllHandler(BaseHandler):
    @endpoint(
        operation_id="markAllNotificationsRead",
        roles=SIGNED_IN,
        summary="Mark every notification read",
        response=MarkedSchema(),
        errors=(401,),
        tags=TAGS,
        idempotency=AFTER,
    )
    async def post(self):
        await self.respond(await self.run(_mark_all, self.transport, self.user))


class UnreadCountHandler(BaseHandler):
    @endpoint(
        operation_id="getUnreadCount",
        roles=SIGNED_IN,
        summary="How many notifications are unread",
        response=UnreadCountSchema(),
        errors=(401,),
        tags=TAGS,
    )
    async def get(self):
        await self.respond({"count": await self.run(notifications.unread_count, self.user)})


default_handlers = [
    (r"/api/notifications/", NotificationListHandler),
    (r"/api/notifications/read-all/", NotificationReadAllHandler),
    (r"/api/notifications/unread-count/", UnreadCountHandler),
    (r"/api/notifications/(?P<notification_id>\d+)/read/", NotificationReadHandler),
]
