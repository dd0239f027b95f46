"""Who is really calling, behind reverse proxies.

X-Forwarded-For and X-Forwarded-Proto are plain request headers anyone can send, so they count only
when the socket's peer is one of TRUSTED_PROXIES; otherwise the socket itself is the answer.
"""

import ipaddress

FORWARDED_PROTOCOLS = ("http", "https")


def parse_ip(value):
    """An ip_address, IPv4-mapped IPv6 unwrapped (a dual-stack socket reports ::ffff:10.0.0.1); None if bad."""
    try:
        address = ipaddress.ip_address((value or "").strip())
    except ValueError:
        return None
    return getattr(address, "ipv4_mapped", None) or address


def is_trusted(address, networks):
    return address is not None and any(address in network for network in networks)


def client_address(request, settings):
    """(ip, protocol) of the client: the socket's, unless a trusted proxy forwarded the request."""
    peer = parse_ip(request.remote_ip)
    if not is_trusted(peer, settings.trusted_proxies):
        return request.remote_ip, request.protocol
    return _forwarded_for(request, settings.trusted_proxies) or request.remote_ip, _forwarded_proto(request)


def _forwarded_for(request, networks):
    """Walk X-Forwarded-For from the right: each trusted proxy appended the address it saw, so the
    first untrusted one is the client. Entries left of it are whatever the client chose to send."""
    entries = [entry for header in request.headers.get_list("X-Forwarded-For") for entry in header.split(",")]
    address = None
    for entry in reversed(entries):
        address = parse_ip(entry)
        if address is None:
            return None  # a proxy we trust wrote garbage: believe only the socket
        if not is_trusted(address, networks):
            break
    # Ran out with every hop trusted: an internal client, the leftmost entry.
    return str(address) if address is not None else None


def _forwarded_proto(request):
    # Proxies append too; the rightmost value is the one our own proxy set.
    values = [v.strip().lower() for v in ",".join(request.headers.get_list("X-Forwarded-Proto")).split(",")]
    return values[-1] if values[-1] in FORWARDED_PROTOCOLS else request.protocol
