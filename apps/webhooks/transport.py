"""Sending one webhook request without letting it reach inside the network: only to public
addresses (unless the operator allows a host), checked on the address actually connected to,
with redirects followed by hand and each hop checked the same way.

The host is resolved once, every address it resolves to is checked, and the socket is opened
to a checked address (never by name again), so a name that changes its answer between the check
and the connection (DNS rebinding) cannot slip through; the connected socket's peer address is
checked once more. The Host header and TLS server name stay the URL's host name, so virtual
hosts and certificates work as usual.

Redirects: 307 and 308 are followed (the same signed body is POSTed again, as those codes
mean), at most MAX_REDIRECTS times. 301, 302 and 303 would turn the POST into a GET, so they
are not followed: the attempt fails with the new location in its error, and the webhook's URL
should be changed to it.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.client import HTTPException
from urllib.parse import urljoin, urlsplit

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import HTTPError as Urllib3Error

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 10.0
TOTAL_TIMEOUT = 45.0  # for all hops of one attempt, the answer's body included
MAX_REDIRECTS = 3
MAX_BODY_READ = 16 * 1024  # bytes of an answer read; the rest is left unread
EXCERPT_CHARS = 500
FOLLOWED = (307, 308)

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
METADATA = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
METADATA_PROBLEM = "a cloud metadata address"
SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT
NAT64 = ipaddress.ip_network("64:ff9b::/96")  # the IPv4 address is in the last 32 bits
NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")

try:  # requests depends on certifi; without it, the system's certificate store
    import certifi

    CA_CERTS: str | None = certifi.where()
except ImportError:  # pragma: no cover
    CA_CERTS = None


class Refused(Exception):
    """Not sent (or a redirect not followed) because of where it would go. Final: a retry
    would be refused the same way."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class SendError(Exception):
    """The request failed on the way (name not found, connection refused, timeout, TLS,
    too many redirects): worth another try later."""


@dataclass
class Answer:
    status: int
    excerpt: str  # the start of the answer's body
    url: str  # the URL that answered, after any redirects
    ms: int
    redirects: list[str] = field(default_factory=list)


# --- Which addresses are public ---------------------------------------------------------------


def address_problem(ip: IP) -> str | None:
    """Why a webhook may not connect to this address, or None for a public one."""
    if ip.version == 6:
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            problem = address_problem(embedded)
            return f"{problem} (inside an IPv6 address)" if problem else None
        if ip in NAT64_LOCAL:
            return "a private address"
    if ip in METADATA:
        return METADATA_PROBLEM
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.version == 4 and ip in SHARED:
        return "a shared (carrier-grade NAT) address"
    if ip.is_reserved:
        return "a reserved address"
    if ip.is_private:
        return "a private address"
    if not ip.is_global:
        return "not a public address"
    return None


@dataclass(frozen=True)
class AllowList:
    """The operator's exceptions: host names, and IP addresses or networks."""

    names: frozenset[str] = frozenset()
    networks: tuple = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowList:
        names, networks = set(), []
        for raw in entries:
            entry = raw.strip().strip("[]").lower().rstrip(".")
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                names.add(entry)
        return cls(frozenset(names), tuple(networks))

    def allows(self, host: str, ip: IP, problem: str) -> bool:
        ip = _unmapped(ip)
        if any(ip in net for net in self.networks):
            return True
        # A listed name may resolve to the operator's own addresses, but the metadata address
        # only when listed itself: a listed name whose DNS is tampered with cannot reach it.
        return host.lower().rstrip(".") in self.names and problem != METADATA_PROBLEM


def _unmapped(ip: IP) -> IP:
    return ip.ipv4_mapped if ip.version == 6 and ip.ipv4_mapped else ip


def check_address(host: str, ip: IP, allow: AllowList) -> None:
    problem = address_problem(ip)
    if problem is None or allow.allows(host, ip, problem):
        return
    where = str(ip) if host == str(ip) else f"{host} resolves to {ip}, which"
    raise Refused(f"{where} is {problem}; webhooks reach public addresses only.")


# --- URLs -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # IDNA-encoded name, or an IP address without brackets
    port: int
    path: str  # path and query, as sent in the request line


def parse_target(url: str) -> Target:
    """Split a webhook URL into what the connection needs; Refused when it is not one."""
    if len(url) > 2000:
        raise Refused("The URL is longer than 2,000 characters.")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise Refused(f"Not a valid URL: {exc}.") from None
    if parts.scheme not in ("http", "https"):
        raise Refused(f"Only http and https URLs, not {parts.scheme or 'no scheme'}.")
    if not parts.hostname:
        raise Refused("The URL has no host.")
    if parts.username is not None or parts.password is not None:
        raise Refused("No user name or password in the URL: receivers check the signature.")
    host = parts.hostname
    try:
        ipaddress.ip_address(host)
    except ValueError:
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise Refused(f"{parts.hostname!r} is not a valid host name.") from None
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if any(ord(c) < 33 or ord(c) == 127 for c in path):
        raise Refused("The URL's path has spaces or control characters; encode them.")
    return Target(parts.scheme, host, port or (443 if parts.scheme == "https" else 80), path)


def url_problem(url: str, allowed_hosts: Iterable[str]) -> str | None:
    """What is wrong with a webhook URL on its face, or None. A host given as an IP address is
    checked now; a host name only when it is resolved, at each delivery."""
    try:
        target = parse_target(url)
        try:
            ip = ipaddress.ip_address(target.host)
        except ValueError:
            return None
        check_address(target.host, ip, AllowList.parse(allowed_hosts))
    except Refused as refused:
        return refused.reason
    return None


# --- The guarded connection -------------------------------------------------------------------


def _resolve(host: str, port: int) -> list[tuple[int, tuple, IP]]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise SendError(f"{host}: the name does not resolve ({exc}).") from None
    found, seen = [], set()
    for family, _type, _proto, _name, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6) or sockaddr in seen:
            continue
        seen.add(sockaddr)
        found.append((family, sockaddr, ipaddress.ip_address(sockaddr[0].split("%")[0])))
    if not found:
        raise SendError(f"{host}: the name has no address.")
    return found


def _open_socket(family: int) -> socket.socket:
    return socket.socket(family, socket.SOCK_STREAM)


class _Guard:
    """Connects to a checked address of the host and checks the peer of the open socket."""

    def __init__(self, target: Target, allow: AllowList, deadline: float):
        self.target, self.allow, self.deadline = target, allow, deadline
        self.sock: socket.socket | None = None
        self.peer: IP | None = None

    def connect(self) -> socket.socket:
        host, port = self.target.host, self.target.port
        candidates = _resolve(host, port)
        # Every address first: a name that also resolves inside the network is refused whole.
        for _family, _sockaddr, ip in candidates:
            check_address(host, ip, self.allow)
        failure: OSError | None = None
        for family, sockaddr, _ip in candidates:
            sock = _open_socket(family)
            try:
                sock.settimeout(max(0.1, min(CONNECT_TIMEOUT, self.deadline - time.monotonic())))
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.connect(sockaddr)
                peer = ipaddress.ip_address(sock.getpeername()[0].split("%")[0])
                try:
                    check_address(host, peer, self.allow)
                except Refused as refused:
                    raise Refused(f"Connected to {peer}: {refused.reason}") from None
            except BaseException as exc:
                sock.close()
                if not isinstance(exc, OSError):
                    raise
                failure = exc
                continue
            self.sock, self.peer = sock, peer
            return sock
        raise SendError(f"Could not connect to {host} port {port}: {_describe(failure)}.")

    def abort(self) -> None:
        """Cut a connection that outlived the attempt's deadline (a receiver answering a byte
        at a time would otherwise keep the worker for as long as it liked)."""
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _GuardedHTTPConnection(HTTPConnection):
    guard: _Guard

    def _new_conn(self) -> socket.socket:
        return self.guard.connect()


class _GuardedHTTPSConnection(HTTPSConnection):
    guard: _Guard

    def _new_conn(self) -> socket.socket:
        return self.guard.connect()


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "no address answered"
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = getattr(exc, "strerror", None) or str(exc) or exc.__class__.__name__
    return text.rstrip(".")


def _post_once(
    target: Target, body: bytes, headers: dict[str, str], allow: AllowList, deadline: float
) -> tuple[int, str | None, bytes]:
    guard = _Guard(target, allow, deadline)
    if target.scheme == "https":
        conn: HTTPConnection = _GuardedHTTPSConnection(
            target.host,
            target.port,
            timeout=CONNECT_TIMEOUT,
            cert_reqs="CERT_REQUIRED",
            ca_certs=CA_CERTS,
        )
    else:
        conn = _GuardedHTTPConnection(target.host, target.port, timeout=CONNECT_TIMEOUT)
    conn.guard = guard  # type: ignore[attr-defined]
    watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), guard.abort)
    watchdog.daemon = True
    watchdog.start()
    try:
        conn.request(
            "POST",
            target.path,
            body=body,
            headers={**headers, "Accept-Encoding": "identity", "Connection": "close"},
            preload_content=False,
            decode_content=False,
        )
        conn.timeout = READ_TIMEOUT
        response = conn.getresponse()
        data = b""
        while len(data) < MAX_BODY_READ and time.monotonic() < deadline:
            chunk = response.read1(MAX_BODY_READ - len(data))
            if not chunk:
                break
            data += chunk
        return response.status, response.headers.get("Location"), data
    except Refused:
        raise
    except ValueError as exc:  # http.client refuses a malformed request line or header
        raise Refused(f"Not a valid request: {exc}.") from None
    except (OSError, HTTPException, Urllib3Error) as exc:
        if time.monotonic() >= deadline:
            raise SendError(f"No complete answer within {TOTAL_TIMEOUT:.0f} s.") from None
        raise SendError(f"{target.host}: {_describe(exc)}.") from None
    finally:
        watchdog.cancel()
        conn.close()


def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    allowed_hosts: Iterable[str] | None = None,
) -> Answer:
    """POST `body` to `url` and return the answer, whatever its status. Raises Refused for an
    address (or redirect) webhooks may not reach, SendError when no answer came."""
    if allowed_hosts is None:
        from django.conf import settings

        allowed_hosts = settings.LOUPE_WEBHOOK_ALLOWED_HOSTS
    allow = AllowList.parse(allowed_hosts)
    started = time.monotonic()
    deadline = started + TOTAL_TIMEOUT
    current, redirects = url, []
    while True:
        try:
            target = parse_target(current)
            status, location, data = _post_once(target, body, headers, allow, deadline)
        except Refused as refused:
            if redirects:
                raise Refused(f"Redirected to {current}: {refused.reason}") from None
            raise
        if status in FOLLOWED and location:
            if len(redirects) == MAX_REDIRECTS:
                raise SendError(f"More than {MAX_REDIRECTS} redirects; the last to {location}.")
            current = urljoin(current, location.strip())
            redirects.append(current)
            continue
        return Answer(
            status=status,
            excerpt=data.decode("utf-8", errors="replace")[:EXCERPT_CHARS],
            url=current,
            ms=round((time.monotonic() - started) * 1000),
            redirects=redirects,
        )
