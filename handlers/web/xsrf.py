"""XSRF tokens bound to the dashboard session that they protect.

Tornado's own token is plain double-submit: a random `_xsrf` cookie and the same value in the page.
It survives sign-in and is not tied to who is signed in, so a token seen before sign-in, or a token
and `_xsrf` cookie planted from another session (a sibling subdomain can set cookies), pass for the
signed-in user. Once a signed session cookie is present, the token is instead an HMAC (SECRET_KEY) of
that cookie: each sign-in issues a new cookie and so a new token (as Django rotates its CSRF token at
login), and a token is good for its own session only. Before sign-in (the sign-in form itself), the
`_xsrf` cookie's token still guards against a forged sign-in.

The page gets the token masked with a fresh random pad on every render (as Tornado's v2 token is), so
a compressed page never repeats it (BREACH).
"""

import binascii
import hashlib
import hmac
import os

import tornado.web

from handlers.web import sessions

_PURPOSE = b"serviceman-xsrf\x00"
_PREFIX = "s1"  # a session-bound token; Tornado's own start with "2|"


def session_key(handler):
    """The raw signed session cookie if it is one this server issued and still in its lifetime, else None."""
    if sessions.read_session(handler) is None:
        return None
    return handler.get_cookie(sessions.SESSION_COOKIE).encode()


def bound_token(secret, session_cookie):
    return hmac.new(secret.encode(), _PURPOSE + session_cookie, hashlib.sha256).digest()


def _xor(pad, data):
    return bytes(a ^ b for a, b in zip(pad, data, strict=True))


def mask(token):
    pad = os.urandom(len(token))
    return f"{_PREFIX}|{pad.hex()}|{_xor(pad, token).hex()}"


def unmask(value):
    """The token inside a masked value, or None for anything that is not one."""
    prefix, _, rest = (value or "").partition("|")
    pad_hex, _, masked_hex = rest.partition("|")
    if prefix != _PREFIX or len(pad_hex) != len(masked_hex):
        return None
    try:
        pad, masked = binascii.unhexlify(pad_hex), binascii.unhexlify(masked_hex)
    except (binascii.Error, ValueError):
        return None
    return _xor(pad, masked)


class SessionBoundXsrf:
    """Mixed into the dashboard's and the API's handlers, ahead of tornado.web.RequestHandler."""

    @property
    def xsrf_token(self):
        key = session_key(self)
        if key is None:
            return super().xsrf_token  # no session yet: Tornado's, tied to the `_xsrf` cookie
        if not hasattr(self, "_session_xsrf_token"):
            self._session_xsrf_token = mask(bound_token(self.settings["cookie_secret"], key)).encode()
        return self._session_xsrf_token

    def check_xsrf_cookie(self):
        key = session_key(self)
        if key is None:
            return super().check_xsrf_cookie()
        supplied = unmask(
            self.get_body_argument("_xsrf", None)
            or self.request.headers.get("X-Xsrftoken")
            or self.request.headers.get("X-Csrftoken")
        )
        expected = bound_token(self.settings["cookie_secret"], key)
        if supplied is None or not hmac.compare_digest(supplied, expected):
            raise tornado.web.HTTPError(403, "The XSRF token is not this session's")
