"""What production refuses beyond missing settings: values that would let an outsider in.

    a guessable secret        SECRET_KEY signs every token and cookie; PAYSTACK_WEBHOOK_SECRET every
                              webhook (a forged charge.success marks a booking paid)
    a published secret        the development, example and local-checkout values are in this repository
    TRUSTED_PROXIES too wide  whoever is in the network chooses the client IP that rate limits count
    PUBLIC_BASE_URL http://   links in emails (reset tokens) and the dashboard's cookies go in clear

A secret's strength is estimated from the text itself: its length times the Shannon entropy of its
characters, capped by its compressed size. A repeated character or pattern scores next to nothing, an
English phrase about 4 bits a character, a random token about what it holds (secrets.token_hex(16),
128 random bits, scores 86-128). Messages name the setting and the rule, never the value.
"""

import ipaddress
import math
import zlib
from collections import Counter
from urllib.parse import urlsplit

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Low enough that no random key of 128 bits fails it (secrets.token_hex(16) scores 86-128), high enough
# that a repeated character, a short pattern or a word or two does.
MIN_SECRET_BITS = 80
# Networks wider than these hold far more than a load balancer tier; public ones must be much narrower.
WIDEST_PRIVATE_PREFIX = {4: 8, 6: 7}  # 10.0.0.0/8, fc00::/7
WIDEST_PUBLIC_ADDRESSES = {4: 2**8, 6: 2**64}  # a /24, a /64
_EMPTY_COMPRESSED = len(zlib.compress(b"", 9))
SECRET_HINT = "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))'"


def estimated_bits(secret: str) -> float:
    """A generous upper bound of the secret's strength, in bits: the smaller of its length times the
    Shannon entropy of its characters (0 for one repeated character) and what zlib needs to store it
    beyond an empty input (a repeated pattern, "abcd" * 16, compresses to almost nothing)."""
    if not secret:
        return 0.0
    counts, length = Counter(secret), len(secret)
    shannon = length * max(0.0, -sum(n / length * math.log2(n / length) for n in counts.values()))
    compressed = 8 * (len(zlib.compress(secret.encode("utf-8", "surrogatepass"), 9)) - _EMPTY_COMPRESSED)
    return min(shannon, float(compressed))


def secret_problem(name: str, secret: str, published: tuple[str, ...] = ()) -> str | None:
    """Why `secret` must not be used in production, or None."""
    if secret in published:
        return f"{name} is a value published in this repository (anyone could sign with it); {SECRET_HINT}"
    bits = estimated_bits(secret)
    if bits < MIN_SECRET_BITS:
        return (
            f"{name} is weak (about {bits:.0f} bits of entropy estimated, at least {MIN_SECRET_BITS} needed: "
            f"too short or too repetitive); {SECRET_HINT}"
        )
    return None


def too_wide_proxy_networks(networks: tuple[Network, ...]) -> list[Network]:
    """The TRUSTED_PROXIES networks that trust far more than a load balancer's addresses."""
    wide = []
    for network in networks:
        version = network.version
        if network.prefixlen < WIDEST_PRIVATE_PREFIX[version] or (
            not network.is_private and network.num_addresses > WIDEST_PUBLIC_ADDRESSES[version]
        ):
            wide.append(network)
    return wide


def proxies_problem(networks: tuple[Network, ...]) -> str | None:
    wide = too_wide_proxy_networks(networks)
    if not wide:
        return None
    return (
        f"TRUSTED_PROXIES trusts {', '.join(map(str, wide))}: everyone there could choose the client IP "
        "(X-Forwarded-For) that rate limits and logs use; list only your load balancer's addresses or its "
        "private network"
    )


def public_base_url_problem(url: str) -> str | None:
    if url and urlsplit(url).scheme == "http":
        return (
            f"PUBLIC_BASE_URL {url!r} is plain http: emailed links (password resets) and the dashboard's "
            "cookies would travel in clear; serve it over https"
        )
    return None


def hardening_problems(
    paystack_secret_key: str,
    paystack_webhook_secret: str,
    trusted_proxies: tuple[Network, ...],
    public_base_url: str,
    published_paystack_keys: tuple[str, ...],
) -> list[str]:
    """The Paystack secrets', proxies' and base URL's problems (production only); SECRET_KEY's
    are checked with its other rules (settings.py), with secret_problem()."""
    problems = []
    if paystack_secret_key in published_paystack_keys:
        problems.append(secret_problem("PAYSTACK_SECRET_KEY", paystack_secret_key, published_paystack_keys))
    if paystack_webhook_secret:
        problems.append(secret_problem("PAYSTACK_WEBHOOK_SECRET", paystack_webhook_secret, published_paystack_keys))
    problems.append(proxies_problem(trusted_proxies))
    problems.append(public_base_url_problem(public_base_url))
    return [problem for problem in problems if problem]
