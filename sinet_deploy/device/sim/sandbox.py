"""The simulated device's file system: a host folder that stands for ``/``.

Only ``/data/local/tmp`` is writable (as for adb's ``shell`` user on a real phone); ``/proc``
and ``/sys`` hold the few files the device runner reads, generated from the profile. Every
device path is normalised before it is joined to the root, so nothing can escape the folder.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import threading
from pathlib import Path

from sinet_deploy.device.sim.profile import DeviceProfile

WRITABLE_ROOT = "/data/local/tmp"


class SandboxError(OSError):
    """A device-side file operation that a real device would refuse (errno + message)."""


class Sandbox:
    """Maps device paths to a host folder and keeps the ``/data`` free-space budget."""

    def __init__(self, root: Path, profile: DeviceProfile) -> None:
        self.root = Path(root).resolve()
        self.profile = profile
        self.lock = threading.Lock()
        (self.root / WRITABLE_ROOT.lstrip("/")).mkdir(parents=True, exist_ok=True)
        self._write_system_files()
        self._baseline = self._data_usage()

    # -- paths -------------------------------------------------------------------------------
    def host_path(self, device_path: str, cwd: str = "/") -> Path:
        """The host file for a device path (absolute or relative to ``cwd``)."""
        if "\0" in device_path or "\0" in cwd:
            # A C string ends at NUL; Python's os functions raise ValueError instead, which
            # would kill the service thread rather than answer the host with an error.
            raise SandboxError(22, "Invalid argument")
        full = posixpath.normpath(posixpath.join(cwd, device_path))
        if full.startswith("//"):
            full = full[1:]
        host = (self.root / full.lstrip("/")).resolve()
        if host != self.root and self.root not in host.parents:
            raise SandboxError(13, "Permission denied")
        return host

    def device_path(self, device_path: str, cwd: str = "/") -> str:
        return posixpath.normpath(posixpath.join(cwd, device_path))

    def check_writable(self, device_path: str, cwd: str = "/") -> Path:
        """The host path if the shell user may write there, else EACCES/EROFS like a phone."""
        full = self.device_path(device_path, cwd)
        if full != WRITABLE_ROOT and not full.startswith(WRITABLE_ROOT + "/"):
            if full.startswith(("/system", "/vendor", "/proc", "/sys")):
                raise SandboxError(30, "Read-only file system")
            raise SandboxError(13, "Permission denied")
        return self.host_path(full)

    # -- free space --------------------------------------------------------------------------
    def _data_usage(self) -> int:
        total = 0
        for dirpath, _dirs, files in os.walk(self.root / "data"):
            for name in files:
                with contextlib.suppress(OSError):
                    total += (Path(dirpath) / name).stat().st_size
        return total

    def free_bytes(self) -> int:
        """What ``df /data`` would call available: the profile's budget minus what was written."""
        return max(0, self.profile.data_free_bytes - (self._data_usage() - self._baseline))

    # -- generated system files --------------------------------------------------------------
    def _write_system_files(self) -> None:
        p = self.profile
        arm64 = p.abi == "arm64-v8a"
        features = (
            "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics"
            if arm64
            else "half thumb fastmult vfp edsp neon vfpv3 tls vfpv4 idiva idivt lpae evtstrm"
        )
        blocks = []
        for i in range(len(p.cpu_max_khz)):
            blocks.append(
                f"processor\t: {i}\nBogoMIPS\t: 38.40\n"
                f"Features\t: {features}\n"
                f"CPU implementer\t: 0x41\nCPU architecture: {8 if arm64 else 7}\n"
                f"CPU variant\t: 0x0\nCPU part\t: {p.cpu_part}\nCPU revision\t: 0\n"
            )
        cpuinfo = "\n".join(blocks) + "\nHardware\t: SIMULATED (sinet-deploy simulator)\n"
        self._put("proc/cpuinfo", cpuinfo)
        self._put(
            "proc/meminfo",
            "MemTotal:        7812345 kB\nMemFree:         2345678 kB\n"
            "MemAvailable:    4567890 kB\n",
        )
        ncpu = len(p.cpu_max_khz)
        cpu = "sys/devices/system/cpu"
        for name in ("possible", "present", "online"):
            self._put(f"{cpu}/{name}", f"0-{ncpu - 1}\n")
        for i, khz in enumerate(p.cpu_max_khz):
            self._put(f"{cpu}/cpu{i}/cpufreq/cpuinfo_max_freq", f"{khz}\n")
            self._put(f"{cpu}/cpu{i}/cpufreq/scaling_cur_freq", f"{khz // 2}\n")
        self._put("sys/class/power_supply/battery/temp", f"{p.battery_temp_decic}\n")
        self._put("system/build.prop", "".join(f"{k}={v}\n" for k, v in sorted(p.props.items())))

    def _put(self, rel: str, text: str) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
