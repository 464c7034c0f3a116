"""A server's side of the WebSocket opening handshake, done by hand (RFC 6455 §4.2.2):
for raw TCP peers that then misbehave in ways a WebSocket library would not."""

from __future__ import annotations

import asyncio
import re

from websockets.utils import accept_key


async def accept_upgrade(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Read the client's upgrade request and answer ``101 Switching Protocols``."""
    request = await reader.readuntil(b"\r\n\r\n")
    found = re.search(rb"sec-websocket-key: *(\S+)", request, re.IGNORECASE)
    assert found is not None
    writer.write(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
        + accept_key(found.group(1).decode()).encode()
        + b"\r\n\r\n"
    )
