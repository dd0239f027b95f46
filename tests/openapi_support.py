"""The operations of the OpenAPI document, for tests that sweep the whole API (XSRF on every cookie
operation, the authorization matrix): generated from the same route table the server serves, so a new
endpoint is swept without anyone adding it to a list."""

import re
from dataclasses import dataclass

from server.openapi import build_spec
from server.routes import route_table

STATE_CHANGING = ("post", "patch", "put", "delete")
_PARAM = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Operation:
    method: str  # upper case
    path: str  # the OpenAPI template, e.g. /api/requests/{request_id}/
    roles: tuple  # x-roles: "anyone", "signed_in" or roles
    operation_id: str

    @property
    def needs_sign_in(self):
        return "anyone" not in self.roles

    @property
    def changes_state(self):
        return self.method.lower() in STATE_CHANGING

    def allows(self, role):
        return not self.needs_sign_in or "signed_in" in self.roles or role in self.roles

    @property
    def path_parameters(self):
        return _PARAM.findall(self.path)

    def url(self, ids, default=None):
        """The path with each `{param}` from `ids` (or `default` for one not given)."""
        return _PARAM.sub(lambda m: str(ids.get(m.group(1), default)), self.path)

    def __str__(self):
        return f"{self.method} {self.path}"


def operations():
    document = build_spec(route_table())
    return [
        Operation(method.upper(), path, tuple(op["x-roles"]), op["operationId"])
        for path, item in document["paths"].items()
        for method, op in item.items()
    ]


def cookie_operations():
    """What a browser's signed-in session can change: every state-changing operation that needs a sign-in."""
    return [op for op in operations() if op.needs_sign_in and op.changes_state]
