"""The client's address, as the read log and login throttling record it.

Behind a reverse proxy every request comes from the proxy: the address the
proxy saw is the right-most `X-Forwarded-For` entry that is not itself a
trusted proxy. Only proxies listed in TRUSTED_PROXIES are believed, so a
client cannot choose its own address by sending the header.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from services.common import config


@lru_cache(maxsize=8)
def _networks(spec: str) -> tuple:
    nets = []
    for part in spec.split(","):
        part = part.strip()
        if part:
            nets.append(ipaddress.ip_network(part, strict=False))
    return tuple(nets)


def _trusted(address: str, networks: tuple) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_address(peer: str | None, forwarded_for: str | None, trusted: str = "") -> str:
    """The address of the client: `peer` unless it is a trusted proxy, then
    walk `X-Forwarded-For` from the right past trusted proxies."""
    networks = _networks(trusted or "")
    address = peer or "unknown"
    if not forwarded_for or not _trusted(address, networks):
        return address
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        address = hop
        if not _trusted(hop, networks):
            break
    return address


def of_request(request) -> str:
    return client_address(request.remote_addr, request.headers.get("X-Forwarded-For"),
                          str(config.get("TRUSTED_PROXIES", "") or ""))
