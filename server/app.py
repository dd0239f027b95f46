"""The application factory: one Tornado Application serving the API, docs and health."""
import logging

import tornado.web

from handlers.base import NotFoundHandler
from models import bind
from server import executor
from server.openapi import build_spec
from server.routes import route_table, tornado_routes


def configure_logging(level):
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")


def init_error_reporting(settings):
    if settings.sentry_dsn:
        import sentry_sdk

        sentry_sdk.init(dsn=settings.sentry_dsn, environment=settings.env, send_default_pii=False)


def make_app(settings, bind_database=True):
    if bind_database:
        bind(settings.database_url, settings.db_pool_size)
    executor.configure(settings.db_pool_size)
    routes = route_table()
    return tornado.web.Application(
        tornado_routes(routes),
        config=settings,
        openapi=build_spec(routes),
        default_handler_class=NotFoundHandler,
        compress_response=True,
        xheaders=True,
    )
