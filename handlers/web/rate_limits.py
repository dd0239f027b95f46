"""Rate limits on the endpoints worth hammering: signing in, registering, refreshing, the emails that
cost us a send, payment initialization.

Each named limit (settings.rate_limits, the `limits` notation) is counted per client IP and per account,
so neither one address trying many accounts nor many addresses trying one account gets far. An
attempt is counted only when every rule allows it: a refused request costs nothing and counts for
nothing. Counters live in Redis when REDIS_URL is set (shared by every web process), in this process's
memory otherwise. A Redis outage must not turn every sign-in into an error, so the check then fails
open and says so in the log.

Counters are named by a keyed hash (HMAC-SHA256 under a key derived from SECRET_KEY) of the address
and of the account, never by the email or IP themselves: whoever reads Redis (a dump, a MONITOR, a
provider's console) learns no one's email or address, and without SECRET_KEY cannot test guesses
against the names either (an IPv4 address or a known email list is quickly enumerated otherwise).
"""

import hashlib
import hmac
import ipaddress
import logging
import math
import time

from limits import parse_many
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from limits.storage import storage_from_string

from handlers.web import proxies
from models.foundation import tokens
from models.foundation.errors import RateLimited
from models.foundation.settings import RATE_LIMIT_DEFAULTS

log = logging.getLogger("serviceman.rate_limits")

NAMES = tuple(RATE_LIMIT_DEFAULTS)
# A slow Redis must not stall the request; past this the check fails open.
REDIS_TIMEOUT_SECONDS = 0.5
WARN_EVERY_SECONDS = 60
# Domain separation: the hash key is derived from SECRET_KEY, so it signs nothing else.
KEY_DERIVATION_LABEL = b"serviceman rate-limit counter names"


def address_key(ip):
    """An IPv4 address as is; an IPv6 one by its /64, the block one subscriber holds (they could
    otherwise take a fresh address for every try)."""
    address = proxies.parse_ip(ip)
    if address is None:
        return str(ip)
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def account_key(settings, user, body):
    """Whose account an attempt is on: the signed-in user, the email in the body, or the owner of a
    (valid) refresh token. None when the request names no account (then only the IP counts)."""
    if user is not None:
        return f"user:{user.id}"
    email = body.get("email")
    if isinstance(email, str) and email:
        return f"email:{email.strip().lower()}"
    refresh = body.get("refresh")
    if isinstance(refresh, str):
        claims = tokens.decode(settings, refresh, tokens.REFRESH)
        if claims is not None:
            return f"user:{claims['sub']}"
    return None


def counter_name_key(settings):
    return hmac.new(settings.secret_key.encode(), KEY_DERIVATION_LABEL, hashlib.sha256).digest()


class RateLimits:
    def __init__(self, settings):
        self._name_key = counter_name_key(settings)
        self.rules = {name: tuple(parse_many(rule)) if rule else () for name, rule in settings.rate_limits.items()}
        if settings.redis_url:
            storage = storage_from_string(
                f"async+{settings.redis_url}",
                implementation="redispy",
                wrap_exceptions=True,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            )
        else:
            storage = storage_from_string("async+memory://")
        self.limiter = MovingWindowRateLimiter(storage)
        self._warned_at = None

    def enabled(self, name):
        return bool(self.rules[name])

    async def check_attempt(self, name, settings, ip, user, body):
        """Count one attempt at `name` from `ip` on the account it is on (`account_key`: the signed-in
        user, or the email or refresh token in the form or JSON body): the one way every caller, the
        API's `@endpoint(rate_limit=...)` and the dashboard's sign-in form, names its counters."""
        await self.check(name, ip, account_key(settings, user, body))

    async def check(self, name, ip, account=None):
        """Count one attempt at `name` from `ip` on `account`, or raise RateLimited (with Retry-After)."""
        keys = [("ip", self.pseudonym(address_key(ip)))] + ([("account", self.pseudonym(account))] if account else [])
        counters = [(rule, (name, kind, value)) for rule in self.rules[name] for kind, value in keys]
        try:
            wait = await self._seconds_until_allowed(counters)
            if wait is None:
                for rule, ids in counters:
                    if not await self.limiter.hit(rule, *ids):  # another request took the last slot
                        wait = await self._seconds_until_allowed(counters) or 1
                        break
        except StorageError as exc:
            self._warn(exc)
            return
        if wait is not None:
            raise RateLimited(f"Too many attempts; try again in {wait} seconds.", headers={"Retry-After": str(wait)})

    async def _seconds_until_allowed(self, counters):
        """None when every counter has room; else whole seconds until the last full one frees a slot."""
        waits = []
        for rule, ids in counters:
            if not await self.limiter.test(rule, *ids):
                stats = await self.limiter.get_window_stats(rule, *ids)
                waits.append(max(1, math.ceil(stats.reset_time - time.time())))
        return max(waits) if waits else None

    def pseudonym(self, identifier):
        """What a counter is named by instead of `identifier` (an address, "email:...", "user:...")."""
        return hmac.new(self._name_key, identifier.encode(), hashlib.sha256).hexdigest()[:32]

    def _warn(self, exc):
        now = time.monotonic()
        if self._warned_at is None or now - self._warned_at > WARN_EVERY_SECONDS:
            self._warned_at = now
            log.warning("rate limits are not enforced: their storage is unreachable (%s)", exc)


def check_names(name):
    if name is not None and name not in NAMES:
        raise ValueError(f"@endpoint rate_limit must be one of {NAMES}, got {name!r}")
    return name
