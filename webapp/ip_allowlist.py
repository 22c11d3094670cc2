"""IP allow-lists: where a request comes from, and whether a list of networks lets it in.

Webhook sources, the Alertmanager token (ALERT_WEBHOOK_ALLOWED_IPS) and API keys may each carry a list of
networks (CIDR, IPv4 or IPv6; empty: anyone). Every check goes through `webapp.security.require_address()`,
which asks the one function here that decides the client address (`client_address()`) and the one that
decides membership (`admits()`), so the three guards cannot drift apart. (`parse` is here, below the config,
because config.py validates ALERT_WEBHOOK_ALLOWED_IPS with it at start.)

The client address is the request's `remote_addr`. Behind proxies (Heroku's router is one), the app factory
wraps the app in werkzeug's ProxyFix with `x_for=TRUSTED_PROXIES`, which puts the TRUSTED_PROXIES-th address
from the right of X-Forwarded-For there. That is done app-wide, not here, so the allow-lists, the per-address
rate limits and the audit log all see the same client; with TRUSTED_PROXIES=0 the header is never read, and a
sender cannot choose its address by writing one.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from flask import request

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_NETWORKS = 100
EXAMPLE = "203.0.113.0/24 or 2001:db8::/32"


def parse(value: str | Iterable[str] | None) -> list[str]:
    """Networks written as CIDR (a comma- or space-separated line, or a list of texts) -> each in its normal
    form ('10.1.2.3/8' -> '10.0.0.0/8', a bare address -> a /32 or /128), once, in the order given.
    ValueError says which entry is not a network."""
    if value is None:
        return []
    if isinstance(value, str):
        items = re.split(r"[\s,]+", value)
    elif isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
        items = list(value)
    else:
        raise ValueError(f"a list of networks (CIDR), e.g. {EXAMPLE}")
    networks: list[str] = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        try:
            network = str(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item[:60]!r} is not a network: use CIDR, e.g. {EXAMPLE}") from None
        if network not in networks:
            networks.append(network)
    if len(networks) > MAX_NETWORKS:
        raise ValueError(f"at most {MAX_NETWORKS} networks")
    return networks


def client_address() -> IPAddress | None:
    """The address the request comes from (see the module's docstring for proxies); None if the server gave
    none that is an IP address (a Unix socket)."""
    try:
        address = ipaddress.ip_address((request.remote_addr or "").partition("%")[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # a dual-stack socket's ::ffff:203.0.113.9 is 203.0.113.9
    return address


def admits(networks: Iterable[str], address: IPAddress | None) -> bool:
    """Whether a list lets `address` in: an empty list admits anyone, an unknown address no list."""
    networks = [ipaddress.ip_network(n, strict=False) for n in networks]
    if not networks:
        return True
    return address is not None and any(address.version == n.version and address in n for n in networks)
