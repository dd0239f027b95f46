"""The application factory: one Tornado Application serving the API, websockets, docs and health."""

import logging

import tornado.ioloop
import tornado.web
from tornado.log import access_log

from handlers import reset_page, websocket
from handlers.base import NotFoundHandler, UnknownHostHandler
from handlers.dashboard import dashboard_routes, dashboard_settings
from handlers.metrics import PATH as METRICS_PATH
from handlers.metrics import metrics_routes
from handlers.web import executor, proxies
from handlers.web.hub import Hub
from handlers.web.listing_cache import ListingCache
from handlers.web.rate_limits import RateLimits
from handlers.web.route_names import route_of, route_templates
from models import bind
from models.foundation import metrics
from models.foundation.paystack import PaystackClient
from models.foundation.settings import LOCAL_CHECKOUT_PREFIX
from server import error_reporting
from server.asyncapi import build_asyncapi
from server.logs import configure_logging as configure
from server.openapi import build_spec
from server.paystack_standin import Ledger, standin_routes
from server.pipeline import start_pipeline
from server.routes import route_table, tornado_routes
from workers.outbox import REDRIVE_EVERY_SECONDS, redrive
from workers.periodic import SCHEDULE
from workers.transport import EmbeddedTransport, RedisTransport

log = logging.getLogger("serviceman")
LOCAL_REFUND_DELAY = 3.0  # seconds


def configure_logging(level, log_format="text"):
    """Text, or one JSON object a line (LOG_FORMAT=json): server/logs.py."""
    return configure(level, log_format)


def init_error_reporting(settings, process="web"):
    """Sentry when SENTRY_DSN is set, scrubbed of secrets and personal data and tagged with the process
    kind (server/error_reporting.py)."""
    return error_reporting.init(settings, process)


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
    transport = pipeline.transport
    metrics.enable("web", bool(settings.metrics_token))
    routes = route_table()
    handlers = (
        tornado_routes(routes)
        + reset_page.default_handlers
        + local_checkout_routes(settings)
        + dashboard_routes()
        + metrics_routes(settings, getattr(transport, "redis", None))
    )
    return HostCheckedApplication(
        handlers,
        route_templates=route_templates(handlers),
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


# Probes and the scraper's /metrics answer whatever name they are addressed by (orchestrators and
# Prometheus reach a process by IP); they build no links.
PROBES = ("/livez", "/readyz", "/healthz", METRICS_PATH)
KNOWN_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))


class HostCheckedApplication(tornado.web.Application):
    """Requests addressed to a host the settings do not accept are answered 400 `unknown_host` before
    any route sees them: in development, links are built from the Host header."""

    def find_handler(self, request, **kwargs):
        if request.path.rstrip("/") not in PROBES and not self.settings["config"].accepts_host(request.host_name):
            return self.get_handler_delegate(request, UnknownHostHandler)
        return super().find_handler(request, **kwargs)

    def log_request(self, handler):
        """Tornado's access log line, and the request's metrics: one call per answered request."""
        request = handler.request
        seconds = request.request_time()
        status = handler.get_status()
        route = route_of(handler, self.settings["route_templates"])
        # A method is the client's word: any other than HTTP's own would be a label of its choosing.
        metrics.request_answered(request.method if request.method in KNOWN_METHODS else "other", route, status, seconds)
        if status < 400:
            level = logging.INFO
        elif status < 500:
            level = logging.WARNING
        else:
            level = logging.ERROR
        if not access_log.isEnabledFor(level):
            return
        client_ip = proxies.client_address(request, self.settings["config"])[0]
        user = getattr(handler, "current_user_obj", None)
        # The path without its query string: a link's ?token= must never reach a log line.
        access_log.log(
            level,
            "%d %s %s (%s) %.2fms",
            status,
            request.method,
            request.path,
            client_ip,
            seconds * 1000,
            extra={
                "request_id": getattr(handler, "request_id", None),
                "user_id": getattr(user, "id", None),
                "route": route,
                "status": status,
                "duration_s": round(seconds, 6),
                "method": request.method,
                "client_ip": client_ip,
            },
        )


def local_checkout_routes(settings):
    """The Paystack stand-in under /dev/paystack/, only when there are no keys outside production."""
    if not settings.paystack_local_checkout or settings.is_production:
        return []

    # Refunds land a few seconds after they are asked for, with Paystack's refund.processed webhook.
    ledger = Ledger(
        secret_key=settings.paystack_secret_key,
        base_url=settings.paystack_api_url,
        webhook_url=f"{settings.origin}/api/payments/webhook/",
        transfer_outcome="success",
        refund_delay=LOCAL_REFUND_DELAY,
    )
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
