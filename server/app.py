"""The application factory: one Tornado Application serving the API, websockets, docs and health."""
import logging

import tornado.ioloop
import tornado.web

from handlers import reset_page, websocket
from handlers.dashboard import dashboard_routes, dashboard_settings
from handlers.base import NotFoundHandler, UnknownHostHandler
from models import bind
from handlers.web import executor
from server.asyncapi import build_asyncapi
from handlers.web.hub import Hub
from handlers.web.listing_cache import ListingCache
from server import error_reporting
from server.openapi import build_spec
from server.paystack_standin import Ledger, standin_routes
from models.foundation.paystack import PaystackClient
from models.foundation.settings import LOCAL_CHECKOUT_PREFIX
from handlers.web.rate_limits import RateLimits
from server.pipeline import start_pipeline
from server.routes import route_table, tornado_routes
from workers.outbox import REDRIVE_EVERY_SECONDS, redrive
from workers.periodic import SCHEDULE
from workers.transport import EmbeddedTransport, RedisTransport

log = logging.getLogger("serviceman")
LOCAL_REFUND_DELAY = 3.0  # seconds


def configure_logging(level):
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")


def init_error_reporting(settings):
    """Sentry when SENTRY_DSN is set, scrubbed of secrets and personal data (server/error_reporting.py)."""
    return error_reporting.init(settings)


def make_transport(settings, hub):
    """Redis when REDIS_URL is set; otherwise every stage runs in this process."""
    if settings.redis_url:
        return RedisTransport(settings.redis_url)
    return EmbeddedTransport(hub)


def make_app(settings, bind_database=True, transport=None):
    if bind_database:
        bind(settings.database_url, settings.db_pool_size)
    executor.configure(settings.db_pool_size)
    hub = Hub(settings.redis_url, ping_seconds=settings.ws_ping_seconds)
    paystack = PaystackClient(settings)
    # Built once here and handed down: handlers give its transport to the domain calls that need it.
    pipeline = start_pipeline(settings, transport or make_transport(settings, hub), paystack)
    routes = route_table()
    return HostCheckedApplication(
        tornado_routes(routes) + reset_page.default_handlers + local_checkout_routes(settings) + dashboard_routes(),
        config=settings,
        hub=hub,
        pipeline=pipeline,
        paystack=paystack,
        rate_limits=RateLimits(settings),
        listing_cache=ListingCache(settings.listing_cache_seconds, can_keep=lambda: hub.hears_listing_changes),
        openapi=build_spec(routes),
        asyncapi=build_asyncapi(settings),
        default_handler_class=NotFoundHandler,
        compress_response=True,
        websocket_max_message_size=websocket.MAX_MESSAGE_BYTES,
        **dashboard_settings(settings),
    )


# Probes answer whatever name they are addressed by (orchestrators probe by IP); they build no links.
PROBES = ("/livez", "/readyz", "/healthz")


class HostCheckedApplication(tornado.web.Application):
    """Requests addressed to a host the settings do not accept are answered 400 `unknown_host` before
    any route sees them: in development, links are built from the Host header."""

    def find_handler(self, request, **kwargs):
        if request.path.rstrip("/") not in PROBES and not self.settings["config"].accepts_host(request.host_name):
            return self.get_handler_delegate(request, UnknownHostHandler)
        return super().find_handler(request, **kwargs)


def local_checkout_routes(settings):
    """The Paystack stand-in under /dev/paystack/, only when there are no keys outside production."""
    if not settings.paystack_local_checkout or settings.is_production:
        return []

    # Refunds land a few seconds after they are asked for, with Paystack's refund.processed webhook.
    ledger = Ledger(secret_key=settings.paystack_secret_key, base_url=settings.paystack_api_url,
                    webhook_url=f"{settings.origin}/api/payments/webhook/", transfer_outcome="success",
                    refund_delay=LOCAL_REFUND_DELAY)
    log.info("no Paystack keys: payments use the local checkout at %s/checkout/", settings.paystack_api_url)
    return standin_routes(ledger, prefix=LOCAL_CHECKOUT_PREFIX)


def start_embedded_sweep(settings):
    """Embedded mode has no dispatcher process, so the web process runs the re-drive sweep itself."""
    if settings.redis_url:
        return None
    async def sweep():
        try:
            await executor.run_sync(redrive)
        except Exception:
            log.exception("re-drive sweep failed")

    callback = tornado.ioloop.PeriodicCallback(sweep, REDRIVE_EVERY_SECONDS * 1000)
    callback.start()
    return callback


def start_embedded_schedule(settings):
    """Embedded mode has no cron process: the periodic jobs run on timers in the web process."""
    if settings.redis_url:
        return []
    def runner(job):
        async def run():
            try:
                await executor.run_sync(job)
            except Exception:
                log.exception("periodic job %s failed", job.__name__)
        return run

    callbacks = [tornado.ioloop.PeriodicCallback(runner(job), seconds * 1000) for job, seconds in SCHEDULE]
    for callback in callbacks:
        callback.start()
    return callbacks
