"""A simulated Android device that the real ``adb`` client connects to over TCP.

``adb connect 127.0.0.1:PORT`` makes the adb server open a TCP connection and send CNXN; we
answer with our own CNXN whose banner (``device::ro.product.name=…;features=shell_v2,…``) makes
the host list us as a ``device``. The host then opens streams (OPEN → OKAY), writes to them
(WRTE, each acknowledged by OKAY before the next one) and closes them (CLSE). One thread reads
the socket; each stream's service runs in its own thread. We never send STLS (TLS pairing came
after adb 1.0.41) and need no key unless the profile is told to be ``unauthorized``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sinet_deploy.core.errors import MissingDependencyError, UserInputError
from sinet_deploy.device.sim import protocol as p
from sinet_deploy.device.sim.et_standin import is_et_standin, run_et_standin, write_et_standin
from sinet_deploy.device.sim.profile import DeviceProfile, get_profile
from sinet_deploy.device.sim.sandbox import Sandbox
from sinet_deploy.device.sim.services import SyncService, run_shell_service
from sinet_deploy.device.sim.shell import Shell
from sinet_deploy.device.sim.standin import run_standin, write_standin

#: The ``disconnect-push`` failure drops the connection once a push has sent this many bytes
#: (the stand-in binary is smaller; any model is larger).
DISCONNECT_AFTER = 1024


class _Stream:
    """Device end of one stream: an input buffer fed by WRTE, output gated by the host's OKAY."""

    def __init__(self, conn: _Connection, local_id: int, remote_id: int) -> None:
        self.conn = conn
        self.local_id = local_id
        self.remote_id = remote_id
        self._buf = bytearray()
        self._cond = threading.Condition()
        self._closed = False
        self._can_write = True

    # fed by the connection's reader thread
    def feed(self, data: bytes) -> None:
        with self._cond:
            self._buf += data
            self._cond.notify_all()

    def okay(self) -> None:
        with self._cond:
            self._can_write = True
            self._cond.notify_all()

    def close_from_host(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # used by the service thread
    def read(self, size: int) -> bytes:
        with self._cond:
            while len(self._buf) < size and not self._closed and self.conn.alive:
                self._cond.wait(0.5)
            data = bytes(self._buf[:size])
            del self._buf[:size]
            return data

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        step = self.conn.max_payload
        for start in range(0, len(view), step):
            with self._cond:
                while not self._can_write and not self._closed and self.conn.alive:
                    self._cond.wait(0.5)
                if self._closed or not self.conn.alive:
                    raise ConnectionError("stream closed")
                self._can_write = False
            self.conn.send(
                p.Message(
                    p.A_WRTE, self.local_id, self.remote_id, bytes(view[start : start + step])
                )
            )


class _Connection:
    """One TCP connection from an adb server."""

    def __init__(self, sock: socket.socket, device: SimulatedDevice) -> None:
        self.sock = sock
        self.device = device
        self.alive = True
        self.online = False
        self.max_payload = p.MAX_PAYLOAD_V1
        self._send_lock = threading.Lock()
        self._streams: dict[int, _Stream] = {}
        self._next_id = 1

    def send(self, msg: p.Message) -> None:
        with self._send_lock:
            try:
                self.sock.sendall(p.pack(msg))
            except OSError:
                self.drop()

    def drop(self) -> None:
        """Drop the TCP connection abruptly (a cable pulled)."""
        if not self.alive:
            return
        self.alive = False
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.sock.close()
        for stream in list(self._streams.values()):
            stream.close_from_host()

    def serve(self) -> None:
        try:
            while self.alive:
                try:
                    msg = p.read_message(self.sock)
                except p.ProtocolError:
                    break
                if msg is None:
                    break
                self._handle(msg)
        finally:
            self.drop()

    def _handle(self, msg: p.Message) -> None:
        profile = self.device.profile
        if msg.command == p.A_CNXN:
            if profile.failure == "offline":
                return  # never answer: the host keeps the device "offline"
            self.max_payload = min(max(msg.arg1, p.MAX_PAYLOAD_V1), p.MAX_PAYLOAD)
            if profile.failure == "unauthorized":
                self.send(p.Message(p.A_AUTH, p.ADB_AUTH_TOKEN, 0, os.urandom(20)))
                return
            self.online = True
            self.send(p.Message(p.A_CNXN, p.A_VERSION, p.MAX_PAYLOAD, self.device.banner()))
        elif msg.command == p.A_AUTH:
            if msg.arg0 == p.ADB_AUTH_SIGNATURE:
                # No signature is ever accepted: ask again, as a phone that was never paired.
                self.send(p.Message(p.A_AUTH, p.ADB_AUTH_TOKEN, 0, os.urandom(20)))
            # ADB_AUTH_RSAPUBLICKEY: a phone would show the "Allow USB debugging?" dialog.
        elif not self.online:
            return
        elif msg.command == p.A_OPEN and msg.arg0 and msg.arg1 == 0:
            self._open(msg.arg0, msg.payload.rstrip(b"\0").decode("utf-8", "replace"))
        elif msg.command == p.A_WRTE:
            stream = self._streams.get(msg.arg1)
            if stream is not None and stream.remote_id == msg.arg0:
                stream.feed(msg.payload)
                self.send(p.Message(p.A_OKAY, stream.local_id, stream.remote_id))
        elif msg.command == p.A_OKAY:
            stream = self._streams.get(msg.arg1)
            if stream is not None:
                stream.okay()
        elif msg.command == p.A_CLSE:
            stream = self._streams.pop(msg.arg1, None)
            if stream is not None:
                stream.close_from_host()
                # adbd's local socket answers a CLSE with its own (remote_socket_shutdown).
                self.send(p.Message(p.A_CLSE, stream.local_id, stream.remote_id))

    def _open(self, remote_id: int, service: str) -> None:
        target = self._service(service)
        if target is None:
            self.send(p.Message(p.A_CLSE, 0, remote_id))
            return
        local_id = self._next_id
        self._next_id += 1
        stream = _Stream(self, local_id, remote_id)
        self._streams[local_id] = stream
        self.send(p.Message(p.A_OKAY, local_id, remote_id))

        def work() -> None:
            try:
                target(stream)
            except (ConnectionError, OSError):
                pass  # the host went away; nothing to answer
            except Exception:  # a simulator bug must not leave the adb client hanging
                traceback.print_exc()
            if self._streams.pop(local_id, None) is not None and self.alive:
                self.send(p.Message(p.A_CLSE, local_id, remote_id))

        threading.Thread(target=work, name=f"sim-{service[:20]}", daemon=True).start()

    def _service(self, service: str) -> Callable[[_Stream], None] | None:
        device = self.device
        if service.startswith(("shell", "exec:")):
            return lambda s: run_shell_service(s, service, device.new_shell)
        if service == "sync:":
            return lambda s: SyncService(s, device.sandbox, self._on_send_data).serve()
        return None

    def _on_send_data(self, received: int) -> None:
        if (
            self.device.profile.failure == "disconnect-push"
            and not self.device.disconnected_once
            and received >= DISCONNECT_AFTER
        ):
            self.device.disconnected_once = True
            self.drop()
            raise ConnectionError("simulated disconnect")


class SimulatedDevice:
    """A simulated phone listening on ``host:port`` (``port=0`` picks a free port).

    Args:
        profile: what the device claims to be and how it fails.
        port: TCP port; 0 lets the OS choose (see :attr:`port` after :meth:`start`).
        workdir: folder for the sandbox and the stand-in binaries (a temporary one if omitted).
        host: address to listen on (loopback by default: nothing outside this machine).
    """

    def __init__(
        self,
        profile: DeviceProfile,
        port: int = 0,
        workdir: Path | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.profile = profile
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="sinet-sim-")
            workdir = Path(self._tmp.name)
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.sandbox = Sandbox(self.workdir / "sandbox", profile)
        self.benchmark_binary = write_standin(
            self.workdir / "benchmark_model_SIMULATED", profile.abi
        )
        self.executorch_runner = write_et_standin(
            self.workdir / "executor_runner_SIMULATED", profile.abi
        )
        self.disconnected_once = False
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._host = host
        self._requested_port = port
        self._connections: list[_Connection] = []
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._standin_lock = threading.Lock()

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    @property
    def serial(self) -> str:
        """The serial ``adb connect`` gives this device."""
        return f"{self._host}:{self.port}"

    def describe(self) -> dict[str, Any]:
        """Serial, stand-in binaries, profile, failure mode, ABI and sandbox folder."""
        return {
            "serial": self.serial,
            "benchmark_binary": str(self.benchmark_binary),
            "executorch_runner": str(self.executorch_runner),
            "simulated": True,
            "profile": self.profile.name,
            "failure": self.profile.failure,
            "abi": self.profile.abi,
            "sandbox": str(self.sandbox.root),
        }

    def banner(self) -> bytes:
        props = self.profile.props
        parts = [
            f"ro.product.name={props['ro.product.name']}",
            f"ro.product.model={props['ro.product.model'].replace(' ', '_')}",
            f"ro.product.device={props['ro.product.device']}",
            f"features={','.join(self.profile.features)}",
        ]
        return ("device::" + ";".join(parts)).encode()

    def new_shell(self) -> Shell:
        return Shell(self.sandbox, self.profile, self._run_standin)

    def _run_standin(self, argv: list[str], shell: Shell) -> tuple[bytes, bytes, int]:
        # One benchmark at a time, as on a phone whose big cores one run already saturates.
        with self._standin_lock:
            head = shell.sandbox.host_path(argv[0], shell.cwd).read_bytes()[:4096]
            if is_et_standin(head):
                return run_et_standin(argv, shell)
            return run_standin(argv, shell)

    def start(self) -> SimulatedDevice:
        """Bind, listen and serve in a background thread."""
        self._listener.bind((self._host, self._requested_port))
        self._listener.listen(8)
        self._thread = threading.Thread(target=self._accept_loop, name="sim-accept", daemon=True)
        self._thread.start()
        return self

    def _accept_loop(self) -> None:
        while not self._stopping:
            try:
                sock, _addr = self._listener.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Connection(sock, self)
            self._connections.append(conn)
            threading.Thread(target=conn.serve, name="sim-conn", daemon=True).start()

    def stop(self) -> None:
        """Close the listener and every connection; remove the temporary folder if we made it."""
        self._stopping = True
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        with contextlib.suppress(OSError):
            self._listener.close()
        for conn in self._connections:
            conn.drop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> SimulatedDevice:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class SimulateOptions:
    """What ``device simulate`` was asked for: port (0: a free one), profile, failure mode,
    and the folder for the sandbox and stand-ins (``None``: a temporary one)."""

    port: int = 0
    profile: str = "current"
    fail: str = "none"
    workdir: Path | None = None


def start_simulated_device(opts: SimulateOptions) -> SimulatedDevice:
    """A started :class:`SimulatedDevice` for ``opts``; the caller stops it.

    Raises:
        UserInputError: an unknown profile or failure mode, or a port that cannot be bound.
        MissingDependencyError: LiteRT, which the stand-in runs models with, is missing.
    """
    try:
        profile = get_profile(opts.profile, opts.fail)
    except ValueError as exc:
        raise UserInputError(str(exc), hint="see `sinet-deploy device simulate --help`") from None
    try:
        import ai_edge_litert.interpreter  # noqa: F401 - the stand-in runs models with it
    except ImportError:
        raise MissingDependencyError(
            "the simulated device needs LiteRT (ai-edge-litert) to run models",
            hint="pip install 'sinet-deploy[tflite]'",
        ) from None
    device = SimulatedDevice(profile, port=opts.port, workdir=opts.workdir)
    try:
        return device.start()
    except OSError as exc:
        device.stop()
        raise UserInputError(
            f"cannot listen on 127.0.0.1:{opts.port} ({exc.strerror})",
            hint="pick another --port (or 0 for a free one)",
        ) from None
