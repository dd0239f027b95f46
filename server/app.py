"""The application factory: one Tornado Application serving the API, websockets, docs and health."""
import logging

import tornado.ioloop
import tornado.web

from handlers.base import NotFoundHandler
from models import bind
from server import executor
from server.hub import Hub
from server.openapi import build_spec
from server.routes import route_table, tornado_routes
from workers import runtime
from workers.transport import EmbeddedTransport, RedisTransport

log = logging.getLogger("serviceman")
EMBEDDED_SWEEP_MS = 30_000


def configure_logging(level):
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")


def init_error_reporting(settings):
    if settings.sentry_dsn:
        import sentry_sdk

        sentry_sdk.init(dsn=settings.sentry_dsn, environment=settings.env, send_default_pii=False)


def make_transport(settings, hub):
    """Redis when REDIS_URL is set; otherwise every stage runs in this process."""
    if settings.redis_url:
        return RedisTransport(settings.redis_url)
    return EmbeddedTransport(hub)


def make_app(settings, bind_database=True, transport=None):
    if bind_database:
        bind(settings.database_url, settings.db_pool_size)
    executor.configure(settings.db_pool_size)
    hub = Hub(settings.redis_url)
    runtime.configure(settings, transport or make_transport(settings, hub))
    routes = route_table()
    return tornado.web.Application(
        tornado_routes(routes),
        config=settings,
        hub=hub,
        openapi=build_spec(routes),
        default_handler_class=NotFoundHandler,
        compress_response=True,
        xheaders=True,
        websocket_ping_interval=20,
        websocket_ping_timeout=20,
    )


def start_embedded_sweep(settings):
    """Embedded mode has no dispatcher process, so the web process sweeps the outbox itself."""
    if settings.redis_url:
        return None
    from workers.outbox import requeue_unsent_emails, sweep_outbox

    async def sweep():
        try:
            await executor.run_sync(sweep_outbox)
            await executor.run_sync(requeue_unsent_emails)
        except Exception:
            log.exception("outbox sweep failed")

    callback = tornado.ioloop.PeriodicCallback(sweep, EMBEDDED_SWEEP_MS)
    callback.start()
    return callback
