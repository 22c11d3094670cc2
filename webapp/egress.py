"""The egress policy: every outbound connection a user can aim (outgoing webhooks, SMTP, future channel URLs).

A host is resolved once; every address it resolves to must be public (not loopback, private, shared,
link-local — the cloud metadata address 169.254.169.254 included —, multicast, reserved or unspecified,
in IPv4, IPv6 or IPv4 inside IPv6), unless the `EGRESS_ALLOW` setting names the host or a network holding
the address (development and the test suite allow loopback). The socket is then connected to the checked
address itself, so a second DNS answer (rebinding) can never send it elsewhere. Callers show users only
`BLOCKED` or `COULD_NOT_CONNECT`: never whether a port refused or timed out.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass

import requests
from flask import current_app, has_app_context
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

BLOCKED = "blocked by the egress policy"
COULD_NOT_CONNECT = "could not connect"
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# getaddrinfo's answers that the name does not exist (EAI_AGAIN, a resolver that did not answer, is not one)
NAME_UNKNOWN = frozenset(
    code for code in (getattr(socket, "EAI_NONAME", None), getattr(socket, "EAI_NODATA", None)) if code is not None
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


class EgressError(OSError):
    """The connection was not made; str() is what a user may be shown."""


class EgressBlocked(EgressError):
    def __init__(self) -> None:
        super().__init__(BLOCKED)


class EgressUnreachable(EgressError):
    def __init__(self) -> None:
        super().__init__(COULD_NOT_CONNECT)


class EgressUnresolved(EgressUnreachable):
    """The name does not exist in DNS (not a temporary resolver failure): trying again will not help."""


@dataclass(frozen=True)
class AllowList:
    hosts: frozenset[str]
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

    @classmethod
    def parse(cls, value: str | list | tuple | None) -> AllowList:
        """'127.0.0.0/8, ::1, smtp.internal' -> networks and host names (ConfigError-free: ValueError names it)."""
        items = re.split(r"[\s,]+", value) if isinstance(value, str) else list(value or ())
        hosts, networks = set(), []
        for item in (i.strip() for i in items):
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                if not re.fullmatch(r"[A-Za-z0-9.-]+", item):
                    raise ValueError(f"EGRESS_ALLOW: {item!r} is neither a network nor a host name") from None
                hosts.add(item.lower().rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def names(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.hosts

    def holds(self, address: IPAddress) -> bool:
        return any(address.version == net.version and address in net for net in self.networks)


def current_allow_list() -> AllowList:
    return AllowList.parse(current_app.config.get("EGRESS_ALLOW") if has_app_context() else None)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped ::ffff:a.b.c.d, 6to4, Teredo, NAT64), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress) -> bool:
    """Whether the policy lets a connection reach `address` without the allow-list."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return False
        inner = _embedded_ipv4(address)
        if inner is not None and not is_public(inner):
            return False
    return not (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def literal_address(host: str) -> IPAddress | None:
    """The address a host written as an IP means, in any form a resolver accepts: dotted, decimal
    (2130706433), octal (0177.0.0.1), hexadecimal (0x7f.1), short (127.1), IPv6 ([::1], ::ffff:127.0.0.1)."""
    host = host.strip().removeprefix("[").removesuffix("]")
    try:
        return ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        pass
    if re.fullmatch(r"[0-9a-fA-FxX.]+", host) and not host.endswith("."):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def permitted(host: str, address: IPAddress, allow: AllowList | None = None) -> bool:
    allow = allow or current_allow_list()
    return allow.names(host) or allow.holds(address) or is_public(address)


def check_host(host: str) -> str | None:
    """Without resolving: BLOCKED if `host` is an IP literal (any form) the policy refuses, else None.

    For validating a URL or host when it is saved; connections are checked again when made.
    """
    address = literal_address(host)
    if address is None or permitted(host, address):
        return None
    return BLOCKED


def resolve(host: str, port: int) -> list[tuple]:
    """getaddrinfo results for (host, port), all of them permitted; EgressBlocked / EgressUnreachable otherwise."""
    if not host:
        raise EgressUnreachable()
    try:
        infos = socket.getaddrinfo(host.removeprefix("[").removesuffix("]"), port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        if exc.errno in NAME_UNKNOWN:
            raise EgressUnresolved() from None
        raise EgressUnreachable() from None
    except (OSError, UnicodeError):
        raise EgressUnreachable() from None
    allow = current_allow_list()
    for info in infos:
        address = ipaddress.ip_address(info[4][0].partition("%")[0])
        if not permitted(host, address, allow):
            raise EgressBlocked()
    if not infos:
        raise EgressUnreachable()
    return infos


def create_connection(
    host: str, port: int, timeout: float | None = None, source_address: tuple | None = None
) -> socket.socket:
    """A TCP socket to (host, port), connected to an address the policy checked (DNS-rebinding safe)."""
    allow = current_allow_list()
    for family, kind, proto, _name, sockaddr in resolve(host, port):
        sock = socket.socket(family, kind, proto)
        try:
            if isinstance(timeout, int | float):
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            peer = ipaddress.ip_address(sock.getpeername()[0].partition("%")[0])
            if not permitted(host, peer, allow):  # the kernel connected elsewhere: refuse, never talk to it
                sock.close()
                raise EgressBlocked()
            return sock
        except EgressBlocked:
            raise
        except OSError:
            sock.close()
    raise EgressUnreachable()


def excerpt(text: str | None, limit: int = 200) -> str | None:
    """A short, printable excerpt of what a peer answered (control characters and newlines collapsed)."""
    if not text:
        return None
    cleaned = _CONTROL.sub(" ", text[: limit * 4]).strip()
    return (cleaned[:limit] + ("…" if len(cleaned) > limit else "")) or None


def user_message(exc: BaseException) -> str:
    """What to tell a user about a failed connection: BLOCKED or COULD_NOT_CONNECT, nothing of the peer."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, EgressBlocked):
            return BLOCKED
        stack.extend([current.__cause__, current.__context__, getattr(current, "reason", None)])
        stack.extend(arg for arg in current.args if isinstance(arg, BaseException))
    return COULD_NOT_CONNECT


# --- HTTP: a requests session whose every connection goes through create_connection ----------------


class _Guarded:
    def _new_conn(self) -> socket.socket:
        try:
            return create_connection(self._dns_host, self.port, self.timeout, source_address=self.source_address)
        except EgressError as exc:
            raise NewConnectionError(self, str(exc)) from exc


class _HttpConnection(_Guarded, HTTPConnection):
    pass


class _HttpsConnection(_Guarded, HTTPSConnection):
    pass


class _HttpPool(HTTPConnectionPool):
    ConnectionCls = _HttpConnection


class _HttpsPool(HTTPSConnectionPool):
    ConnectionCls = _HttpsConnection


KEEP_ALIVE_PER_HOST = 64  # open connections kept per host: above a worker's DELIVERY_CONCURRENCY sends at once


class _EgressAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HttpPool, "https": _HttpsPool}

    def proxy_manager_for(self, *args, **kwargs):  # a proxy would connect for us, unchecked
        raise EgressBlocked()


class _Session(requests.Session):
    def get_redirect_target(self, resp) -> None:  # a redirect is an answer, never followed
        return None


def http_session() -> requests.Session:
    """A requests session under the policy: no proxies from the environment, no redirects followed."""
    session = _Session()
    session.trust_env = False
    adapter = _EgressAdapter(max_retries=0, pool_maxsize=KEEP_ALIVE_PER_HOST)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
