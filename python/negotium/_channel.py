"""Server addresses and channel options, shared by the sync and asyncio clients."""

from __future__ import annotations

from pathlib import Path
from typing import Any

MAX_MESSAGE_BYTES = 64 << 20
"""What the client accepts from the server (results with long traces are large)."""


def parse_address(address: str) -> tuple[str, bool]:
    """``HOST:PORT``, ``http://HOST:PORT`` or ``https://HOST:PORT`` -> (target, tls)."""
    a = address.strip()
    tls = False
    for prefix, secure in (("https://", True), ("http://", False), ("grpc://", False)):
        if a.startswith(prefix):
            a, tls = a[len(prefix) :], secure
            break
    a = a.rstrip("/")
    if not a:
        raise ValueError(f"not a server address: {address!r} (HOST:PORT or http://HOST:PORT)")
    return a, tls


def channel_options() -> list[tuple[str, Any]]:
    return [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        # Keepalive pings tell a long agent stream's connection is alive
        # (the server pings every 20 s too).
        ("grpc.keepalive_time_ms", 20_000),
        ("grpc.keepalive_permit_without_calls", 0),
    ]


def tls_credentials(ca: str | Path | None) -> Any:
    import grpc

    root = Path(ca).read_bytes() if ca else None
    return grpc.ssl_channel_credentials(root_certificates=root)


def sync_channel(address: str, ca: str | Path | None = None) -> Any:
    import grpc

    target, tls = parse_address(address)
    if tls:
        return grpc.secure_channel(target, tls_credentials(ca), options=channel_options())
    return grpc.insecure_channel(target, options=channel_options())
