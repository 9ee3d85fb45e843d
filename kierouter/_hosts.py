"""Which hosts result files may be fetched from: never a private, loopback or link-local
address, except KIE's own host when its base URL is one (an emulator serves its files there)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from urllib.parse import urlsplit

__all__ = ["blocked_address", "emulator_hosts", "is_private_host", "normal_host"]


def _blocked_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        not ip.is_global  # also shared (CGNAT 100.64/10), benchmarking and documentation nets
        or ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_multicast
        or ip.is_unspecified
    )


def blocked_address(host: str) -> bool:
    """Whether ``host`` is an IP address (not a name) on loopback or a non-public network."""
    try:
        return _blocked_ip(ipaddress.ip_address(normal_host(host)))
    except ValueError:
        return False


def normal_host(host: str) -> str:
    """A host name as compared for ``allow_hosts``: lower case, no brackets, no final dot."""
    return host.strip("[]").lower().rstrip(".")


async def is_private_host(host: str) -> bool:
    """Whether ``host`` is (or resolves to) a loopback, private, link-local or other
    non-public address."""
    host = normal_host(host)  # "localhost." is localhost
    try:
        return _blocked_ip(ipaddress.ip_address(host))
    except ValueError:
        pass
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        return True
    try:
        infos = await asyncio.wait_for(asyncio.get_running_loop().getaddrinfo(host, None), 5.0)
    except (OSError, TimeoutError):
        return False  # unresolvable: the fetch itself will fail with a clear error
    for info in infos:
        with contextlib.suppress(ValueError):
            if _blocked_ip(ipaddress.ip_address(str(info[4][0]).split("%")[0])):
                return True
    return False


def emulator_hosts(base_url: str) -> tuple[str, ...]:
    """KIE's host when the base URL is on loopback or a private network (an emulator, which
    serves its result files there): downloads from that one host are allowed."""
    host = normal_host(urlsplit(base_url).hostname or "")
    if (
        host == "localhost"
        or host.endswith(".localhost")
        or host.startswith("127.")
        or host == "::1"
    ):
        return (host, "localhost", "127.0.0.1", "::1")  # one machine, however it is named
    return (host,) if blocked_address(host) else ()
