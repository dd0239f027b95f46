"""`/`: where a newcomer lands, one click from the dashboard sign-in and the API docs."""

import base64
import hashlib

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from models.demo_data import DEMO_PASSWORD
from models.foundation.settings import PROJECT_ROOT

from .base import ANYONE, BaseHandler, endpoint

DASHBOARD = "/app/"  # the web dashboard (handlers of its own); it sends a visitor to its sign-in page
DASHBOARD_SIGN_IN = "/app/sign-in/"
_pages = Environment(
    loader=FileSystemLoader(PROJECT_ROOT / "templates" / "pages"),
    autoescape=select_autoescape(enabled_extensions=("html",)),
    undefined=StrictUndefined,
)
# The page's only style, allowed by its hash: no stylesheet request, and no inline style of anyone else's.
CSS = (
    "body{font:16px/1.5 system-ui,sans-serif;margin:0;color:#1d2330;background:#f5f7fa}"
    "main{max-width:44rem;margin:3rem auto;padding:0 1rem}h1{margin-bottom:.25rem}"
    ".doors{list-style:none;padding:0;display:flex;gap:1rem;flex-wrap:wrap}"
    ".doors li{flex:1 1 14rem;background:#fff;border:1px solid #d8dde6;border-radius:8px;padding:1rem}"
    ".doors a{font-size:1.2rem}.doors span{display:block;color:#5a6475}.note{color:#5a6475}code{font-size:.9em}"
)
_CSS_HASH = base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()
LANDING_CSP = (
    f"default-src 'none'; style-src 'sha256-{_CSS_HASH}'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


def render_landing(settings):
    return _pages.get_template("landing.html").render(
        css=CSS,
        dashboard_url=DASHBOARD,
        sign_in_url=DASHBOARD_SIGN_IN,
        production=settings.is_production,
        demo_password=DEMO_PASSWORD,
        local_checkout=settings.paystack_local_checkout,
    )


class LandingHandler(BaseHandler):
    media_type = "text/html"
    response_example = (
        '<!doctype html><html lang="en">…<a href="/app/sign-in/">Dashboard</a>…'
        '<a href="/api/docs/">API docs</a>…</html>'
    )
    content_security_policy = LANDING_CSP

    @endpoint(
        operation_id="getLandingPage",
        roles=ANYONE,
        summary="Landing page: links to the dashboard sign-in and the API docs",
        tags=("docs",),
    )
    async def get(self):
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish(render_landing(self.config))


default_handlers = [(r"/", LandingHandler)]
