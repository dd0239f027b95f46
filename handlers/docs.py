"""The OpenAPI document, the socket's AsyncAPI document, Swagger UI (local assets, no CDN).
The health checks are in handlers/health.py."""

import json

import tornado.web
from swagger_ui_bundle import swagger_ui_path

from .base import ANYONE, API_CSP, BaseHandler, endpoint, set_security_headers

SWAGGER_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Serviceman API</title>
<link rel="stylesheet" href="/api/docs/assets/swagger-ui.css"></head>
<body><nav aria-label="Other documents"><a href="/">Serviceman</a> ·
<a href="/api/schema/">OpenAPI document</a> ·
<a href="/api/asyncapi.json">AsyncAPI document of the websocket /ws/</a> (live notifications)</nav>
<div id="swagger-ui"></div>
<script src="/api/docs/assets/swagger-ui-bundle.js"></script>
<script src="/api/docs/assets/swagger-ui-standalone-preset.js"></script>
<script src="/api/docs/init.js"></script>
</body></html>"""

# validatorUrl "none": otherwise the page sends our schema's address to validator.swagger.io.
# persistAuthorization: the token pasted in "Authorize" survives a reload (kept in this browser's
# localStorage, as any SPA keeps it). displayOperationId: the readable ids a generated client uses.
SWAGGER_INIT = """window.ui = SwaggerUIBundle({url: "/api/schema/", dom_id: "#swagger-ui", validatorUrl: "none",
  persistAuthorization: true, displayOperationId: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset], layout: "StandaloneLayout"});"""
# Swagger UI runs only our own scripts; it sets inline style attributes, draws its icons from data:
# URIs in its stylesheet and fetches the schema (and "Try it out" calls) from this origin.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


class SchemaHandler(BaseHandler):
    # `response_example` (like `media_type`): what a handler writing its own body answers, for the document.
    response_example = {
        "openapi": "3.0.3",
        "info": {"title": "Serviceman API", "version": "1.0.0"},
        "paths": {"/api/categories/": {"get": {"summary": "Active categories"}}},
    }

    @endpoint(operation_id="getOpenApiDocument", roles=ANYONE, summary="This OpenAPI 3 document", tags=("docs",))
    async def get(self):
        self.finish(json.dumps(self.application.settings["openapi"]))


class AsyncApiHandler(BaseHandler):
    response_example = {
        "asyncapi": "2.6.0",
        "info": {"title": "Serviceman notification socket", "version": "1.0.0"},
        "channels": {"/ws/": {"publish": {"message": {"oneOf": []}}}},
    }

    @endpoint(
        operation_id="getAsyncApiDocument",
        roles=ANYONE,
        summary="The AsyncAPI 2.6 document of the notification websocket /ws/",
        tags=("docs",),
        description="Messages (auth, resume, ping; ready, notification, unread_count, pong) and close codes.",
    )
    async def get(self):
        self.finish(json.dumps(self.application.settings["asyncapi"]))


class DocsHandler(BaseHandler):
    media_type = "text/html"
    response_example = SWAGGER_PAGE
    content_security_policy = DOCS_CSP

    @endpoint(operation_id="getSwaggerUi", roles=ANYONE, summary="Swagger UI", tags=("docs",))
    async def get(self):
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish(SWAGGER_PAGE)


class DocsInitHandler(BaseHandler):
    media_type = "application/javascript"
    response_example = SWAGGER_INIT

    @endpoint(operation_id="getSwaggerUiScript", roles=ANYONE, summary="Swagger UI start-up script", tags=("docs",))
    async def get(self):
        self.set_header("Content-Type", "application/javascript")
        self.finish(SWAGGER_INIT)


class DocsAssetHandler(tornado.web.StaticFileHandler):
    """Swagger UI's files, with the API's security headers; no no-store: they are the same for everyone."""

    def set_default_headers(self):
        set_security_headers(self, self.application.settings["config"], API_CSP)


default_handlers = [
    (r"/api/schema/", SchemaHandler),
    (r"/api/asyncapi.json", AsyncApiHandler),
    (r"/api/docs/", DocsHandler),
    (r"/api/docs/init.js", DocsInitHandler),
    (r"/api/docs/assets/(.*)", DocsAssetHandler, {"path": swagger_ui_path}),
]
