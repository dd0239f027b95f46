"""GET /metrics: Prometheus text for a scraper holding METRICS_TOKEN (`Authorization: Bearer <token>`).

Routed only when METRICS_TOKEN is set (server/app.py), so a deployment never serves it by accident;
any other caller gets the contract's 401. With PROMETHEUS_MULTIPROC_DIR set the answer adds up every
process of this machine that wrote there (web, dispatcher, worker, cron: prometheus_client's
documented multiprocess collector); the gauges describing the deployment (backlogs, money by
state) are read at scrape time from the database and Redis (workers/state_metrics.py).
"""

import hmac
import json
import os

import tornado.web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from models.db import database
from models.foundation import metrics
from workers.state_metrics import StateCollector

from .base import API_CSP, set_security_headers
from .web.executor import run_sync

PATH = "/metrics"


class Exposition:
    """Builds the text of one scrape; `redis` (a client, or None in embedded mode) for the stream gauges."""

    def __init__(self, redis=None):
        self.state = CollectorRegistry(auto_describe=False)
        self.state.register(StateCollector(redis))

    @staticmethod
    def process_registry():
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
            return registry
        return REGISTRY

    def __call__(self):
        metrics.observe_pool(database.obj)
        return generate_latest(self.process_registry()) + generate_latest(self.state)


class MetricsHandler(tornado.web.RequestHandler):
    def initialize(self, token, exposition):
        self.token, self.exposition = token.encode(), exposition

    def set_default_headers(self):
        set_security_headers(self, self.application.settings["config"], API_CSP)
        self.set_header("Cache-Control", "no-store")

    async def get(self):
        scheme, _, given = self.request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self.token):
            self.set_status(401)
            self.set_header("WWW-Authenticate", 'Bearer realm="metrics"')
            self.set_header("Content-Type", "application/json; charset=UTF-8")
            return self.finish(
                json.dumps(
                    {"error": {"code": "not_authenticated", "message": "This endpoint needs the metrics token."}}
                )
            )
        body = await run_sync(self.exposition)
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(body)


def metrics_routes(settings, redis=None):
    """[] without METRICS_TOKEN: /metrics is then an unknown route (404), never an open one."""
    if not settings.metrics_token:
        return []
    return [(PATH, MetricsHandler, {"token": settings.metrics_token, "exposition": Exposition(redis)})]
