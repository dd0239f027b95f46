"""The routing table, assembled from each handlers module's `default_handlers`.

Every API path ends in `/`, and the same path without the slash answers the same.
"""

from handlers import (
    admin,
    analytics,
    assignment,
    auth,
    catalog,
    docs,
    health,
    jobs,
    landing,
    notifications,
    payments,
    payouts,
    pricing,
    refunds,
    service_requests,
    sync,
    websocket,
)

HANDLER_MODULES = (
    auth,
    catalog,
    service_requests,
    payments,
    refunds,
    pricing,
    jobs,
    assignment,
    admin,
    analytics,
    notifications,
    sync,
    payouts,
    websocket,
    docs,
    health,
    landing,
)


def route_table():
    return [route for module in HANDLER_MODULES for route in module.default_handlers]


def tornado_routes(routes):
    """Make the trailing slash optional: "/api/x/" matches "/api/x" too."""
    out = []
    for pattern, handler, *kwargs in routes:
        if pattern.endswith("/"):
            pattern = pattern[:-1] + "/?"
        out.append((pattern, handler, *kwargs))
    return out
