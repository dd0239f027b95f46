"""The OpenAPI document, Swagger UI (local assets, no CDN) and the health check."""
import json

import tornado.web
from swagger_ui_bundle import swagger_ui_path

from models.actions.health import health

from .base import ANYONE, BaseHandler, endpoint

SWAGGER_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Serviceman API</title>
<link rel="stylesheet" href="/api/docs/assets/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/api/docs/assets/swagger-ui-bundle.js"></script>
<script src="/api/docs/assets/swagger-ui-standalone-preset.js"></script>
<script src="/api/docs/init.js"></script>
</body></html>"""

SWAGGER_INIT = """window.ui = SwaggerUIBundle({url: "/api/schema/", dom_id: "#swagger-ui",
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset], layout: "StandaloneLayout"});"""


class SchemaHandler(BaseHandler):
    @endpoint(roles=ANYONE, summary="This OpenAPI 3 document", tags=("docs",))
    async def get(self):
        self.finish(json.dumps(self.application.settings["openapi"]))


class DocsHandler(BaseHandler):
    @endpoint(roles=ANYONE, summary="Swagger UI", tags=("docs",))
    async def get(self):
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish(SWAGGER_PAGE)


class DocsInitHandler(BaseHandler):
    @endpoint(roles=ANYONE, summary="Swagger UI start-up script", tags=("docs",))
    async def get(self):
        self.set_header("Content-Type", "application/javascript")
        self.finish(SWAGGER_INIT)


class HealthHandler(BaseHandler):
    @endpoint(roles=ANYONE, summary="Liveness and dependencies", errors=(503,), tags=("docs",),
              description='{"status": "ok", "database": "ok", "redis": "ok" or "embedded"}; 503 names the failing part.')
    async def get(self):
        status, body = await self.run(health, self.config)
        self.set_status(status)
        self.finish(json.dumps(body))


default_handlers = [
    (r"/api/schema/", SchemaHandler),
    (r"/api/docs/", DocsHandler),
    (r"/api/docs/init.js", DocsInitHandler),
    (r"/api/docs/assets/(.*)", tornado.web.StaticFileHandler, {"path": swagger_ui_path}),
    (r"/healthz", HealthHandler),
]
