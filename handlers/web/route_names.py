"""The name a request goes by in metrics and logs: its route's template, never its ids."""

import re

from tornado.web import URLSpec


def route_templates(handlers):
    """Handler class -> [(compiled pattern, template)]: the label metrics and logs name a request by
    (`/api/service-requests/{request_id}/`), never its ids."""
    templates = {}
    for route in handlers:
        if isinstance(route, URLSpec):
            pattern, handler_class = route.regex.pattern, route.target
        else:
            pattern, handler_class = route[0], route[1]
        template = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", pattern)
        template = re.sub(r"\([^)]*\)", "{}", template).replace("/?", "/").rstrip("$").lstrip("^")
        templates.setdefault(handler_class, []).append((re.compile(pattern + "$"), template))
    return templates


def route_of(handler, templates):
    candidates = templates.get(type(handler))
    if not candidates:
        return UNMATCHED.get(type(handler).__name__, "other")
    if len(candidates) == 1:
        return candidates[0][1]
    path = handler.request.path
    return next((template for pattern, template in candidates if pattern.match(path)), candidates[0][1])


UNMATCHED = {"NotFoundHandler": "unmatched", "UnknownHostHandler": "unknown_host", "ErrorHandler": "unmatched"}
