"""What runs on the device end of an adb stream: ``shell:``, ``shell,v2:``, ``exec:``, ``sync:``.

Shell protocol v2 frames are ``id (1 byte) + length (uint32 LE) + data`` with ids stdin 0,
stdout 1, stderr 2, exit 3, close-stdin 4, window-size 5 (AOSP ``shell_protocol.h``). Sync
requests are ``id (4 ASCII bytes) + length (uint32 LE)`` followed by a path or data; replies
follow AOSP ``file_sync_service.cpp`` (v1 STAT/LIST, SEND with DATA chunks and DONE, RECV with
DATA chunks of at most 64 KiB, FAIL with a message).
"""

from __future__ import annotations

import os
import stat
import struct
from collections.abc import Callable
from typing import Protocol

from sinet_deploy.device.sim.sandbox import Sandbox, SandboxError
from sinet_deploy.device.sim.shell import Shell

SYNC_DATA_MAX = 64 * 1024
SHELL_STDOUT, SHELL_STDERR, SHELL_EXIT = 1, 2, 3


class StreamIO(Protocol):
    """The device end of one adb stream."""

    def read(self, size: int) -> bytes: ...

    def write(self, data: bytes) -> None: ...


def _shell_frame(kind: int, data: bytes) -> bytes:
    return struct.pack("<BI", kind, len(data)) + data


def run_shell_service(io: StreamIO, service: str, make_shell: Callable[[], Shell]) -> None:
    """``shell[,args]:command`` or ``exec:command``: run the command, send output (+ exit code)."""
    head, _, command = service.partition(":")
    args = head.split(",")[1:] if head.startswith("shell") else []
    v2 = "v2" in args
    pty = head.startswith("shell") and "raw" not in args and not v2
    if not command.strip():
        msg = b"the SIMULATED device has no interactive shell; run `adb shell COMMAND`\n"
        io.write(_shell_frame(SHELL_STDERR, msg) + _shell_frame(SHELL_EXIT, b"\x01") if v2 else msg)
        return
    res = make_shell().run(command)
    if v2:
        if res.out:
            io.write(_shell_frame(SHELL_STDOUT, bytes(res.out)))
        if res.err:
            io.write(_shell_frame(SHELL_STDERR, bytes(res.err)))
        io.write(_shell_frame(SHELL_EXIT, bytes([res.rc & 0xFF])))
        return
    out = bytes(res.out) if head.startswith("exec") else bytes(res.out + res.err)
    if pty:
        # A pty turns "\n" into "\r\n", which is what `adb shell` shows on old devices.
        out = out.replace(b"\n", b"\r\n")
    if out:
        io.write(out)


class SyncService:
    """``sync:`` — file transfer for ``adb push/pull/ls``."""

    def __init__(self, io: StreamIO, sandbox: Sandbox, on_send_data: Callable[[int], None]):
        self.io = io
        self.sandbox = sandbox
        #: Called with the bytes received so far in a SEND (the disconnect failure hooks in).
        self.on_send_data = on_send_data

    def _read_exact(self, size: int) -> bytes | None:
        data = self.io.read(size)
        return data if len(data) == size else None

    def _fail(self, message: str) -> None:
        body = message.encode()
        self.io.write(b"FAIL" + struct.pack("<I", len(body)) + body)

    def serve(self) -> None:
        while True:
            header = self._read_exact(8)
            if header is None:
                return
            ident, length = header[:4], struct.unpack("<I", header[4:])[0]
            if ident == b"QUIT":
                return
            if length > 1024:
                self._fail("path too long")
                return
            arg = self._read_exact(length) if length else b""
            if arg is None:
                return
            path = arg.decode("utf-8", "replace")
            if ident == b"STAT":
                self._stat(path)
            elif ident == b"LIST":
                self._list(path)
            elif ident == b"SEND":
                if not self._send(path):
                    return
            elif ident == b"RECV":
                if not self._recv(path):
                    return
            else:
                self._fail(f"unknown command {ident!r}")
                return

    def _stat(self, path: str) -> None:
        try:
            st = self.sandbox.host_path(path).lstat()
            reply = struct.pack("<III", st.st_mode, st.st_size & 0xFFFFFFFF, int(st.st_mtime))
        except (SandboxError, OSError):
            reply = bytes(12)
        self.io.write(b"STAT" + reply)

    def _list(self, path: str) -> None:
        items: list[tuple[str, os.stat_result]] = []
        try:
            host = self.sandbox.host_path(path)
            if host.is_dir():
                here = host.stat()
                items = [(".", here), ("..", here)]
                items += [(e.name, e.lstat()) for e in sorted(host.iterdir())]
        except (SandboxError, OSError):
            items = []
        out = bytearray()
        for name, st in items:
            raw = name.encode()
            out += (
                b"DENT"
                + struct.pack(
                    "<IIII", st.st_mode, st.st_size & 0xFFFFFFFF, int(st.st_mtime), len(raw)
                )
                + raw
            )
        out += b"DONE" + bytes(16)
        self.io.write(bytes(out))

    def _drain_until_done(self) -> None:
        # adbd keeps reading (and dropping) DATA after a failure until the host sends DONE.
        while True:
            header = self._read_exact(8)
            if header is None:
                return
            ident, length = header[:4], struct.unpack("<I", header[4:])[0]
            if ident != b"DATA" or length > SYNC_DATA_MAX:
                return
            if self._read_exact(length) is None:
                return

    def _send(self, spec: str) -> bool:
        path, _, mode_s = spec.rpartition(",")
        if not path:
            path, mode_s = spec, "33188"
        try:
            mode = int(mode_s)
        except ValueError:
            mode = 0o100644
        try:
            host = self.sandbox.check_writable(path)
            host.parent.mkdir(parents=True, exist_ok=True)  # fixed_push_mkdir semantics
            if host.is_dir():
                raise IsADirectoryError(21, "Is a directory")
        except (SandboxError, OSError) as exc:
            self._fail(f"couldn't create file: {exc.strerror}")
            self._drain_until_done()
            return False
        # Written under a temporary name and renamed on DONE, so a dropped push leaves no
        # half file that looks complete (adbd itself unlinks on failure).
        tmp = host.with_name(f".{host.name}.sinet-sync")
        received, mtime, done = 0, 0, False
        try:
            with open(tmp, "wb") as fh:
                while True:
                    header = self._read_exact(8)
                    if header is None:
                        return False
                    ident, length = header[:4], struct.unpack("<I", header[4:])[0]
                    if ident == b"DONE":
                        mtime, done = length, True
                        break
                    if ident != b"DATA" or length > SYNC_DATA_MAX:
                        self._fail("invalid data message")
                        return False
                    chunk = self._read_exact(length)
                    if chunk is None:
                        return False
                    received += len(chunk)
                    self.on_send_data(received)
                    if received > self.sandbox.free_bytes():
                        self._fail("write failed: No space left on device")
                        self._drain_until_done()
                        return False
                    fh.write(chunk)
        except OSError as exc:
            self._fail(f"write failed: {exc.strerror}")
            return False
        finally:
            if not done:
                tmp.unlink(missing_ok=True)
        os.replace(tmp, host)
        os.chmod(host, stat.S_IMODE(mode) & 0o777)
        os.utime(host, (mtime, mtime))
        self.io.write(b"OKAY" + bytes(4))
        return True

    def _recv(self, path: str) -> bool:
        try:
            host = self.sandbox.host_path(path)
            with open(host, "rb") as fh:
                while True:
                    chunk = fh.read(SYNC_DATA_MAX)
                    if not chunk:
                        break
                    self.io.write(b"DATA" + struct.pack("<I", len(chunk)) + chunk)
        except (SandboxError, OSError) as exc:
            self._fail(f"open failed: {exc.strerror or 'No such file or directory'}")
            return False
        self.io.write(b"DONE" + bytes(4))
        return True
