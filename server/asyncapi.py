"""The AsyncAPI 2.6 document of the notification socket `/ws/`, served beside the OpenAPI document.

The notification payload is converted from the same marshmallow schema that renders it (REST and
socket share NotificationSchema); the small control messages are written out here, next to the
close codes, which are the handler's own constants. tests/test_asyncapi.py validates the document
against the official AsyncAPI 2.6.0 JSON Schema and every message a live socket sends against it.
"""

from urllib.parse import urlsplit

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from handlers import websocket
from handlers.schemas.notifications import NotificationSchema
from handlers.web.hub import CLOSE_SESSION_ENDED
from handlers.web.sessions import SESSION_COOKIE
from server.openapi import _type_example

CHANNEL = "/ws/"
# (code, name, when): every close code the handler uses, and the one sessions ending will use.
CLOSE_CODES = (
    (
        websocket.CLOSE_UNAUTHENTICATED,
        "unauthenticated",
        "The token is invalid or expired, the account is inactive, or a message came before `auth`. "
        "Get a new access token (POST /api/auth/refresh/) and reconnect.",
    ),
    (
        CLOSE_SESSION_ENDED,
        "session_ended",
        "The user's sessions were ended (password changed or reset, account "
        "deactivated or suspended), or the dashboard session whose cookie "
        "opened this socket signed out: sign in again.",
    ),
    (
        websocket.CLOSE_AUTH_TIMEOUT,
        "auth_timeout",
        f"No `auth` message within {websocket.AUTH_DEADLINE_SECONDS} seconds of opening.",
    ),
    (
        websocket.CLOSE_TOO_MANY_SOCKETS,
        "too_many_sockets",
        "The account opened more sockets than WS_MAX_SOCKETS_PER_USER (default 10); this, its oldest, was closed.",
    ),
    (
        websocket.CLOSE_BAD_MESSAGE,
        "bad_message",
        "A message that is not a JSON object with a `type`, or a `resume` without an integer `since`.",
    ),
    (1009, "message_too_big", f"A message over {websocket.MAX_MESSAGE_BYTES} bytes."),
    (
        websocket.CLOSE_SERVICE_RESTART,
        "service_restart",
        "This web process is shutting down (a deploy): reconnect at once (any process answers) and resume.",
    ),
    (
        websocket.CLOSE_TRY_AGAIN_LATER,
        "try_again_later",
        "The database cannot be reached right now: reconnect with backoff and resume.",
    ),
)


def _const(value):
    return {"type": "string", "const": value, "examples": [value]}


def _message(name, summary, description, properties, example, required=None):
    payload = {
        "type": "object",
        "required": required or ["type", *properties],
        "additionalProperties": False,
        "properties": {"type": _const(name), **properties},
    }
    return {
        "name": name,
        "title": name,
        "summary": summary,
        "description": description,
        "contentType": "application/json",
        "payload": payload,
        "examples": [{"name": name, "payload": {"type": name, **example}}],
    }


def _json_schema(node):
    """apispec writes OpenAPI 3.0 schema objects; AsyncAPI's default format is JSON Schema draft 7:
    `nullable` becomes a null type and `example` becomes `examples`."""
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _json_schema(value) for key, value in node.items() if key not in ("nullable", "example")}
    if node.get("nullable") and "type" in node:
        out["type"] = [node["type"], "null"]
    if "example" in node:
        out["examples"] = [node["example"]]
    return out


def notification_schema():
    plugin = MarshmallowPlugin()
    APISpec(title="notification", version="1", openapi_version="3.0.3", plugins=[plugin])
    plugin.converter.add_attribute_function(_type_example)
    return _json_schema(plugin.converter.schema2jsonschema(NotificationSchema))


def messages():
    notification = notification_schema()
    example_notification = {
        name: field["examples"][0] for name, field in notification["properties"].items() if field.get("examples")
    }
    count = {"type": "integer", "minimum": 0, "examples": [3]}
    return {
        "auth": _message(
            "auth",
            "Sign in on this socket",
            (
                f"The first message, within {websocket.AUTH_DEADLINE_SECONDS} s of opening: an access token from "
                "POST /api/auth/login/ (or /refresh/). Not needed when the dashboard's session cookie came with the "
                "handshake from an allowed Origin. Answered by `ready`, or a close with 4001."
            ),
            {"token": {"type": "string", "minLength": 1, "examples": ["eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9…"]}},
            {"token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9…"},
        ),
        "resume": _message(
            "resume",
            "Replay what was missed",
            (
                "After `ready`: every notification of the user with an id greater than `since` (the last id seen; 0 "
                "for all) is sent again, oldest first, as `notification` messages. Send it after every reconnect."
            ),
            {"since": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1, "examples": [305]}},
            {"since": 305},
        ),
        "ping": _message(
            "ping",
            "Application-level keep-alive",
            ("Answered by `pong`. Optional: the server also sends WebSocket pings every 20 s."),
            {},
            {},
        ),
        "ready": _message(
            "ready",
            "Signed in; pushes flow from now on",
            (
                "Sent once after authentication. From this moment no notification is missed on this socket; "
                "send `resume` to catch up on what came before."
            ),
            {"unread_count": count},
            {"unread_count": 3},
        ),
        "notification": _message(
            "notification",
            "A new (or replayed) notification",
            ("The same representation as GET /api/notifications/ (the OpenAPI document's Notification)."),
            {"notification": notification},
            {"notification": example_notification},
        ),
        "unread_count": _message(
            "unread_count",
            "The unread count changed",
            ("After a delivery or a change of read state (mark read, mark all read) on any device."),
            {"count": count},
            {"count": 2},
        ),
        "pong": _message("pong", "Answer to `ping`", "", {}, {}),
    }


CLIENT_MESSAGES = ("auth", "resume", "ping")
SERVER_MESSAGES = ("ready", "notification", "unread_count", "pong")


def _server(settings):
    parts = urlsplit(settings.origin)
    protocol = "wss" if parts.scheme == "https" else "ws"
    return {
        "url": parts.netloc,
        "protocol": protocol,
        "description": "This server; the socket is at path /ws/ (e.g. ws://127.0.0.1:8000/ws/).",
    }


def build_asyncapi(settings, version="1.0.0"):
    close_codes = "\n".join(f"- `{code}` {name}: {when}" for code, name, when in CLOSE_CODES)
    refs = {name: {"$ref": f"#/components/messages/{name}"} for name in (*CLIENT_MESSAGES, *SERVER_MESSAGES)}
    return {
        "asyncapi": "2.6.0",
        "id": "urn:serviceman:notifications",
        "info": {
            "title": "Serviceman notification socket",
            "version": version,
            "description": (
                "Live dashboard notifications for the signed-in user. Every message is a JSON object with a `type`. "
                "Open `/ws/`, send `auth` (or come with the dashboard's session cookie), wait for `ready`, then "
                "`resume` from the last notification id seen; reconnect with backoff and resume again after a drop. "
                "The REST API is described by the OpenAPI document at /api/schema/."
            ),
        },
        "servers": {"this": _server(settings)},
        "defaultContentType": "application/json",
        "channels": {
            CHANNEL: {
                "description": f"The notification socket. Close codes:\n{close_codes}",
                "publish": {
                    "operationId": "sendToServer",
                    "summary": "What the client sends",
                    "message": {"oneOf": [refs[name] for name in CLIENT_MESSAGES]},
                },
                "subscribe": {
                    "operationId": "receiveFromServer",
                    "summary": "What the server pushes",
                    "message": {"oneOf": [refs[name] for name in SERVER_MESSAGES]},
                },
                "bindings": {"ws": {"method": "GET", "bindingVersion": "0.1.0"}},
            }
        },
        "components": {
            "messages": messages(),
            "securitySchemes": {
                "sessionCookie": {
                    "type": "httpApiKey",
                    "in": "cookie",
                    "name": SESSION_COOKIE,
                    "description": "The dashboard's signed cookie session, accepted on the handshake from this "
                    "server's own Origin or one in CORS_ALLOWED_ORIGINS. Other clients authenticate "
                    "with the `auth` message.",
                }
            },
        },
        "x-close-codes": [{"code": code, "name": name, "description": when} for code, name, when in CLOSE_CODES],
    }
