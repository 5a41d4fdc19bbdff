"""A thin wrapper around the ``adb`` client that turns its failures into one-line errors.

adb's own conventions pass straight through: ``-H``/``-P`` (a remote adb server, e.g. a device
farm), ``$ANDROID_ADB_SERVER_PORT`` and ``$ADB_SERVER_SOCKET`` (read by adb itself from the
environment we inherit), ``$ANDROID_SERIAL`` (see :mod:`sinet_deploy.device.listing`).
Exit codes come from shell protocol v2 (Android 7+); on older devices, which give none, the
command is suffixed with ``echo`` of ``$?`` and the marker is parsed back out.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from sinet_deploy.core.errors import DeviceError
from sinet_deploy.device.listing import DeviceEntry, parse_devices

_RC_MARKER = "__SINET_DEPLOY_RC__="
_RC_RE = re.compile(re.escape(_RC_MARKER) + r"(\d+)\r?\n?$")
#: Messages of the adb client itself (not of the remote command) when a shell cannot start.
_ADB_ERROR = re.compile(r"error: (device|closed|no devices|more than one|protocol fault)")


@dataclass(frozen=True)
class ShellResult:
    """What ``adb shell`` returned: exit status, stdout and stderr (v1 devices mix the two)."""

    rc: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def find_adb(explicit: str | None = None) -> str:
    """The adb binary: ``explicit``, else ``adb`` on PATH, else the Android SDK's platform-tools."""
    if explicit:
        if Path(explicit).is_file() and os.access(explicit, os.X_OK):
            return explicit
        raise DeviceError(
            f"adb binary {explicit} does not exist or is not executable",
            hint="pass the path of platform-tools' adb with --adb",
        )
    found = shutil.which("adb")
    if found:
        return found
    for var in ("ANDROID_HOME", "ANDROID_SDK_ROOT"):
        root = os.environ.get(var)
        if root:
            candidate = Path(root) / "platform-tools" / "adb"
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
    raise DeviceError(
        "adb is not on PATH",
        hint="install Android platform-tools (Debian/Ubuntu: apt-get install adb) "
        "or pass --adb PATH",
    )


def _first_error_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("* ")]
    for ln in lines:
        if "error" in ln.lower() or "failed" in ln.lower():
            return ln
    return lines[-1] if lines else "no output"


class Adb:
    """Runs ``adb`` commands against one adb server.

    Args:
        adb_path: the adb binary (found on PATH when omitted).
        host: ``-H``, the adb server's host (a remote server, e.g. a device farm).
        port: ``-P``, the adb server's port (``$ANDROID_ADB_SERVER_PORT`` when omitted).
    """

    def __init__(
        self, adb_path: str | None = None, host: str | None = None, port: int | None = None
    ) -> None:
        self.path = find_adb(adb_path)
        self.host = host
        self.port = port
        self._features: dict[str, set[str]] = {}

    def argv(self, *args: str, serial: str | None = None) -> list[str]:
        cmd = [self.path]
        if self.host:
            cmd += ["-H", self.host]
        if self.port:
            cmd += ["-P", str(self.port)]
        if serial:
            cmd += ["-s", serial]
        return cmd + list(args)

    def run(
        self, *args: str, serial: str | None = None, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[bytes]:
        """Run one adb command; :class:`DeviceError` when adb cannot start or times out."""
        cmd = self.argv(*args, serial=serial)
        try:
            proc = subprocess.run(
                cmd, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False
            )
        except subprocess.TimeoutExpired:
            what = " ".join(args[:2])
            raise DeviceError(
                f"`adb {what}` timed out after {timeout:.0f} s"
                + (f" on {serial}" if serial else ""),
                hint="check the connection (`adb devices -l`) and retry",
            ) from None
        except OSError as exc:
            raise DeviceError(
                f"cannot run {self.path}: {exc.strerror}",
                hint="reinstall platform-tools or pass --adb PATH",
            ) from None
        text = (proc.stdout + proc.stderr).decode("utf-8", "replace")
        if proc.returncode != 0:
            self._raise_server_error(text)
        return proc

    def _raise_server_error(self, text: str) -> None:
        lowered = text.lower()
        port = self.port or os.environ.get("ANDROID_ADB_SERVER_PORT", 5037)
        where = f"{self.host or 'localhost'}:{port}"
        if "cannot connect to daemon" in lowered or "failed to start daemon" in lowered:
            raise DeviceError(
                f"cannot reach the adb server at {where}",
                hint="start it with `adb start-server`, or check -H/-P and ANDROID_ADB_SERVER_PORT",
            )

    # -- devices ---------------------------------------------------------------------------
    def devices(self) -> list[DeviceEntry]:
        """``adb devices -l``, parsed."""
        proc = self.run("devices", "-l", timeout=30)
        text = proc.stdout.decode("utf-8", "replace")
        if proc.returncode != 0:
            raise DeviceError(
                f"`adb devices` failed: {_first_error_line(text)}",
                hint="run `adb kill-server` and retry",
            )
        return parse_devices(text)

    def connect(self, hostport: str, timeout: float = 20.0) -> None:
        """``adb connect HOST:PORT``. adb exits 0 even when it fails, so read what it says."""
        proc = self.run("connect", hostport, timeout=timeout)
        text = (proc.stdout + proc.stderr).decode("utf-8", "replace").strip()
        if "connected to" in text and "failed" not in text and "cannot" not in text:
            return
        raise DeviceError(
            f"adb connect {hostport} failed: {_first_error_line(text)}",
            hint="check the address and that the device (or device farm) listens there",
        )

    def wait_online(self, serial: str, timeout: float) -> bool:
        """Poll the device list until ``serial`` is ``device`` (True) or the time is up."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if any(e.serial == serial and e.online for e in self.devices()):
                    return True
            except DeviceError:
                pass
            time.sleep(0.3)
        return False

    def features(self, serial: str) -> set[str]:
        """The device's adb features (``shell_v2`` means exit codes come back)."""
        if serial not in self._features:
            proc = self.run("features", serial=serial, timeout=20)
            text = proc.stdout.decode("utf-8", "replace")
            if proc.returncode != 0:
                self._raise_device_error(
                    serial, text + proc.stderr.decode("utf-8", "replace"), "adb features"
                )
            self._features[serial] = {
                f.strip() for f in text.replace("\n", ",").split(",") if f.strip()
            }
        return self._features[serial]

    # -- shell / files ---------------------------------------------------------------------
    def shell(self, serial: str, command: str, timeout: float = 120.0) -> ShellResult:
        """Run ``command`` in the device's shell and return its exit status and output."""
        v2 = "shell_v2" in self.features(serial)
        remote = command if v2 else f'{command}; echo "{_RC_MARKER}$?"'
        proc = self.run("shell", remote, serial=serial, timeout=timeout)
        out = proc.stdout.decode("utf-8", "replace")
        err = proc.stderr.decode("utf-8", "replace")
        if v2:
            if proc.returncode == 1 and not out and _ADB_ERROR.match(err):
                self._raise_device_error(serial, err, "adb shell")
            return ShellResult(proc.returncode, out, err)
        out = out.replace("\r\n", "\n")
        m = _RC_RE.search(out)
        if m is None:
            self._raise_device_error(serial, out + err, "adb shell")
        return ShellResult(int(m.group(1)), out[: m.start()], err)

    def push(self, serial: str, local: Sequence[Path], remote: str, timeout: float = 600.0) -> None:
        """``adb push LOCAL... REMOTE``; one-line :class:`DeviceError` on any failure."""
        proc = self.run("push", *[str(p) for p in local], remote, serial=serial, timeout=timeout)
        if proc.returncode != 0:
            text = (proc.stdout + proc.stderr).decode("utf-8", "replace")
            self._raise_device_error(serial, text, "adb push")

    def pull(self, serial: str, remote: Sequence[str], local: Path, timeout: float = 600.0) -> None:
        """``adb pull REMOTE... LOCAL``; one-line :class:`DeviceError` on any failure."""
        proc = self.run("pull", *remote, str(local), serial=serial, timeout=timeout)
        if proc.returncode != 0:
            text = (proc.stdout + proc.stderr).decode("utf-8", "replace")
            self._raise_device_error(serial, text, "adb pull")

    def _raise_device_error(self, serial: str, text: str, what: str) -> NoReturn:
        """Map adb's messages to what the user should do."""
        lowered = text.lower()
        self._raise_server_error(text)
        if "no space left" in lowered:
            raise DeviceError(
                f"{serial}: the device storage is full ({what} failed: {_first_error_line(text)})",
                hint="free space under /data/local/tmp (`adb shell df /data`) and retry",
            )
        if "unauthorized" in lowered:
            raise DeviceError(
                f"device {serial} is unauthorized",
                hint="unlock the phone and accept the USB debugging prompt, then retry",
            )
        if "offline" in lowered:
            raise DeviceError(
                f"device {serial} is offline",
                hint="reconnect it (`adb reconnect`, or `adb connect HOST:PORT`) and retry",
            )
        if "not found" in lowered and "device" in lowered:
            raise DeviceError(
                f"device {serial} not found",
                hint="check `adb devices -l` (network devices need `adb connect HOST:PORT`)",
            )
        if any(
            s in lowered
            for s in (
                "couldn't read from device",
                "connection reset",
                "protocol fault",
                "error: closed",
                "broken pipe",
                "device disconnected",
                "connection refused",
            )
        ):
            raise DeviceError(
                f"{serial} disconnected during {what} ({_first_error_line(text)})",
                hint="check the cable or network and retry",
            )
        raise DeviceError(
            f"{what} on {serial} failed: {_first_error_line(text)}",
            hint="run the same adb command by hand to see more",
        )


def quote(path: str) -> str:
    """Quote one argument for the device's shell."""
    return shlex.quote(path)
