"""The adb transport protocol: 24-byte message headers and the commands a device answers.

Written from AOSP's ``system/core/adb/protocol.txt`` and ``adb.cpp`` (the device side, adbd),
at the version Debian ships (adb 1.0.41, platform-tools 29.0.6): a message is six little-endian
uint32 (command, arg0, arg1, data_length, data_crc32, magic = command ^ 0xffffffff) followed by
``data_length`` payload bytes.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

A_SYNC = 0x434E5953
A_CNXN = 0x4E584E43
A_OPEN = 0x4E45504F
A_OKAY = 0x59414B4F
A_CLSE = 0x45534C43
A_WRTE = 0x45545257
A_AUTH = 0x48545541
A_STLS = 0x534C5453

#: Protocol versions: hosts from 2016 on send 0x01000001 ("skip checksum").
A_VERSION_MIN = 0x01000000
A_VERSION_SKIP_CHECKSUM = 0x01000001
A_VERSION = 0x01000001

#: adbd's payload limit since Android N; the banner itself must fit in the v1 limit.
MAX_PAYLOAD_V1 = 4 * 1024
MAX_PAYLOAD = 1024 * 1024

ADB_AUTH_TOKEN = 1
ADB_AUTH_SIGNATURE = 2
ADB_AUTH_RSAPUBLICKEY = 3

_HEADER = struct.Struct("<6I")
HEADER_SIZE = _HEADER.size

NAMES = {
    A_SYNC: "SYNC",
    A_CNXN: "CNXN",
    A_OPEN: "OPEN",
    A_OKAY: "OKAY",
    A_CLSE: "CLSE",
    A_WRTE: "WRTE",
    A_AUTH: "AUTH",
    A_STLS: "STLS",
}


class ProtocolError(Exception):
    """The peer sent something that is not an adb message (bad magic, oversized payload)."""


@dataclass(frozen=True)
class Message:
    """One adb message."""

    command: int
    arg0: int
    arg1: int
    payload: bytes = b""

    @property
    def name(self) -> str:
        return NAMES.get(self.command, f"0x{self.command:08x}")


def checksum(payload: bytes) -> int:
    """The legacy "crc": the byte sum (hosts at A_VERSION_SKIP_CHECKSUM ignore it)."""
    return sum(payload) & 0xFFFFFFFF


def pack(msg: Message) -> bytes:
    """Serialise a message (header + payload)."""
    header = _HEADER.pack(
        msg.command,
        msg.arg0,
        msg.arg1,
        len(msg.payload),
        checksum(msg.payload),
        msg.command ^ 0xFFFFFFFF,
    )
    return header + msg.payload


def _recv_exact(sock: socket.socket, size: int) -> bytes | None:
    chunks = bytearray()
    while len(chunks) < size:
        try:
            chunk = sock.recv(size - len(chunks))
        except OSError:
            return None
        if not chunk:
            return None
        chunks += chunk
    return bytes(chunks)


def read_message(sock: socket.socket, max_payload: int = MAX_PAYLOAD) -> Message | None:
    """Read one message; ``None`` at end of stream. Raises :class:`ProtocolError` on garbage."""
    header = _recv_exact(sock, HEADER_SIZE)
    if header is None:
        return None
    command, arg0, arg1, length, _crc, magic = _HEADER.unpack(header)
    if magic != command ^ 0xFFFFFFFF:
        raise ProtocolError(f"bad magic 0x{magic:08x} for command 0x{command:08x}")
    if length > max_payload:
        raise ProtocolError(f"payload of {length} bytes exceeds the limit {max_payload}")
    payload = _recv_exact(sock, length) if length else b""
    if payload is None:
        return None
    return Message(command, arg0, arg1, payload)
