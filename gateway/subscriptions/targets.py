"""Where a webhook may point: https, and never into the hub's own network (no SSRF).

Outside the demo a webhook URL must be ``https://`` and every address its host resolves to must be a public
one: loopback (127.0.0.1), private (10/8, 172.16/12, 192.168/16), link-local (169.254.169.254, the cloud
metadata service), carrier-grade NAT, multicast and reserved ranges are refused, unless the operator sets
``QALA_WEBHOOK_ALLOW_PRIVATE=true``. The host is checked when the subscription is saved and again before every
delivery, so a name re-pointed at an internal address later is refused too. Redirects are never followed.

    >>> await check_target("https://utility.example.kz/hooks/qala", settings)   # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from gateway.settings import Settings
from gateway.subscriptions.selection import invalid

MAX_URL = 2000


class UnsafeTarget(ValueError):
    """The URL may not receive webhooks; the message says why."""


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


async def _addresses(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UnsafeTarget(f"the host {host!r} does not resolve: {exc}") from exc
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


async def vet(url: str, settings: Settings) -> None:
    """Raise :class:`UnsafeTarget` unless ``url`` may receive webhooks under ``settings``."""
    if len(url) > MAX_URL:
        raise UnsafeTarget(f"the URL is longer than {MAX_URL} characters")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UnsafeTarget("the URL must be an absolute https:// URL")
    if parts.username or parts.password:
        raise UnsafeTarget("the URL must not carry credentials; the signature authenticates the hub")
    if settings.env == "demo":
        return  # the demo runs its receivers on this machine
    if parts.scheme != "https":
        raise UnsafeTarget("the URL must use https:// outside the demo")
    if settings.webhook_allow_private:
        return
    port = parts.port or 443
    for address in await _addresses(parts.hostname, port):
        if not _public(address):
            raise UnsafeTarget(
                f"{parts.hostname} is {address}, a private, loopback or link-local address; "
                "webhooks go to public addresses only (an operator may allow private ones)"
            )


async def check_target(url: str, settings: Settings) -> str:
    """``url`` when it may receive webhooks; a 422 problem naming the reason otherwise."""
    try:
        await vet(url, settings)
    except UnsafeTarget as exc:
        raise invalid("/delivery/url", "format", f"webhook URL refused: {exc}") from exc
    return url
