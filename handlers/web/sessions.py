"""The dashboard's cookie session: a signed cookie naming the user, their session version and the
session's own server-side row (models/actions/sessions.py start_web_session).

Set and cleared by the server only (HTTP-only, SameSite=Lax, Secure over https and in production),
signed with SECRET_KEY by Tornado. A session ends at sign-out (its row is revoked) and when the
user's `session_version` changes (password reset or change, deactivation, suspension), so no copy of
an old cookie outlives it.
Cookie-authenticated requests that change anything must carry the session's XSRF token (handlers/web/xsrf.py);
Bearer API clients never see any of this.
"""

from models.actions.sessions import WEB_SESSION_ID

SESSION_COOKIE = "serviceman_session"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def cookie_value(user, web_session):
    return f"{user.id}:{user.session_version}:{web_session}"


def parse_cookie_value(raw):
    """(user_id, version, web session id) from a verified cookie value, or None for anything
    malformed (a cookie from before sessions had rows included: its holder signs in again)."""
    if raw is None:
        return None
    parts = raw.decode("ascii", "replace").split(":")
    if len(parts) != 3:
        return None
    user_id, version, web_session = parts
    if (
        not (user_id.isdigit() and version.isdigit())
        or len(user_id) > 10
        or len(version) > 10
        or not WEB_SESSION_ID.match(web_session)
    ):
        return None
    return int(user_id), int(version), web_session


def lifetime_days(config):
    return config.refresh_token_days


def read_session(handler):
    """The (user_id, version, web session id) of a request's valid signed session cookie, or None."""
    raw = handler.get_signed_cookie(SESSION_COOKIE, max_age_days=lifetime_days(handler.application.settings["config"]))
    return parse_cookie_value(raw)


def has_session_cookie(handler):
    return handler.get_cookie(SESSION_COOKIE) is not None


def is_secure(handler, config):
    return config.is_production or handler.client_protocol == "https"


def start_session(handler, user, web_session):
    """Set the cookie of the dashboard session `web_session` (its row already committed)."""
    config = handler.config
    handler.set_signed_cookie(
        SESSION_COOKIE,
        cookie_value(user, web_session),
        expires_days=lifetime_days(config),
        httponly=True,
        samesite="Lax",
        secure=is_secure(handler, config),
        path="/",
    )


def end_session(handler):
    """Clear the browser's cookie; the session itself is ended on the server by end_web_session()."""
    handler.clear_cookie(SESSION_COOKIE, path="/")


def same_origin(handler, origin):
    """A websocket handshake's Origin is this server's own (scheme-agnostic behind a TLS proxy) or allowed."""
    config = handler.application.settings["config"]
    if not origin:
        return False
    if origin in config.cors_allowed_origins:
        return True
    host = origin.split("://", 1)[-1]
    if config.public_base_url:
        return origin == config.public_base_url
    return host == handler.request.host
