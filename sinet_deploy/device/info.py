"""What a device is: model, SoC, Android version, ABI, cores and clocks, battery temperature.

Everything comes from two ``adb shell`` round trips (``getprop``, ``/proc``, ``/sys``,
``dumpsys battery``, ``df``), parsed here by pure functions that the tests feed with captured
text. A device whose ``ro.sinet_deploy.simulated`` property is ``1`` is the sinet-deploy
simulator and is reported as ``simulated: true``.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from sinet_deploy.device.adb import Adb

#: The property that marks a device as the sinet-deploy simulator (set by ``device.sim``).
SIMULATED_PROP = "ro.sinet_deploy.simulated"

SEP = "__SINET_DEPLOY_SEP__"
_CPU = "/sys/devices/system/cpu"
_BATTERY_SYSFS = "/sys/class/power_supply/battery/temp"


@dataclass
class DeviceInfo:
    """A device's description, as reported by ``device info --json``."""

    serial: str
    model: str | None = None
    manufacturer: str | None = None
    brand: str | None = None
    device: str | None = None
    soc: str | None = None
    board: str | None = None
    android: str | None = None
    sdk: int | None = None
    abi: str | None = None
    abilist: list[str] = field(default_factory=list)
    cores: int | None = None
    max_freq_mhz: list[int | None] = field(default_factory=list)
    clusters: str | None = None
    ram_mb: int | None = None
    storage_free_mb: int | None = None
    battery_temp_c: float | None = None
    fingerprint: str | None = None
    adb_features: list[str] = field(default_factory=list)
    simulated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def label(self) -> str:
        name = " ".join(x for x in (self.manufacturer, self.model) if x) or self.serial
        return f"{name} [SIMULATED]" if self.simulated else name


# -- parsers ---------------------------------------------------------------------------------
def parse_getprop(text: str) -> dict[str, str]:
    """``getprop`` output (``[key]: [value]`` lines; values may span lines) → dict."""
    props: dict[str, str] = {}
    for m in re.finditer(r"^\[([^\]]+)\]: \[(.*?)\]\s*$", text, re.M | re.S):
        props[m.group(1)] = m.group(2)
    return props


def parse_cpuinfo(text: str) -> dict[str, Any]:
    """``/proc/cpuinfo`` → number of ``processor`` entries and the ``Hardware`` line if any."""
    cores = len(re.findall(r"^processor\s*:", text, re.M))
    hw = re.search(r"^Hardware\s*:\s*(.+)$", text, re.M)
    return {"cores": cores or None, "hardware": hw.group(1).strip() if hw else None}


def parse_cpu_range(text: str) -> list[int]:
    """``/sys/devices/system/cpu/possible`` (``0-3,6-7``) → CPU numbers."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        if lo.isdigit() and (not hi or hi.isdigit()):
            cpus.extend(range(int(lo), int(hi or lo) + 1))
    return cpus


def parse_battery_temp(dumpsys: str, sysfs: str = "") -> float | None:
    """Battery temperature in °C from ``dumpsys battery`` (tenths of °C), else the sysfs file."""
    m = re.search(r"^\s*temperature:\s*(-?\d+)", dumpsys, re.M)
    raw = m.group(1) if m else sysfs.strip()
    if not re.fullmatch(r"-?\d+", raw or ""):
        return None
    value = int(raw)
    # sysfs reports tenths on most phones, millidegrees on a few.
    return round(value / 1000.0 if abs(value) > 2000 else value / 10.0, 1)


def parse_df_free_mb(text: str) -> int | None:
    """``df`` (toybox, 1K blocks) → available MiB on the first data line."""
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 4 and parts[3].isdigit():
            return int(parts[3]) // 1024
    return None


def parse_meminfo_mb(text: str) -> int | None:
    m = re.search(r"^MemTotal:\s*(\d+)\s*kB", text, re.M)
    return int(m.group(1)) // 1024 if m else None


def summarize_clusters(freqs_mhz: list[int | None]) -> str | None:
    """``[1800, 1800, 2400]`` → ``"2x1.80 GHz + 1x2.40 GHz"`` (cores grouped by max clock)."""
    known = [f for f in freqs_mhz if f]
    if not known:
        return None
    counts: dict[int, int] = {}
    for f in known:
        counts[f] = counts.get(f, 0) + 1
    return " + ".join(f"{n}x{f / 1000:.2f} GHz" for f, n in sorted(counts.items()))


def build_info(
    serial: str,
    props: dict[str, str],
    sections: dict[str, str],
    freqs_khz: list[str],
    features: set[str],
) -> DeviceInfo:
    """Assemble a :class:`DeviceInfo` from parsed pieces (pure; used by tests directly)."""
    cpu = parse_cpuinfo(sections.get("cpuinfo", ""))
    possible = parse_cpu_range(sections.get("possible", ""))
    soc_parts = [props.get("ro.soc.manufacturer"), props.get("ro.soc.model")]
    soc = (
        " ".join(p for p in soc_parts if p)
        or cpu["hardware"]
        or props.get("ro.board.platform")
        or props.get("ro.hardware")
        or None
    )
    sdk = props.get("ro.build.version.sdk", "")
    mhz: list[int | None] = [int(f) // 1000 if f.strip().isdigit() else None for f in freqs_khz]
    abilist = [a for a in props.get("ro.product.cpu.abilist", "").split(",") if a]
    abi = props.get("ro.product.cpu.abi") or (abilist[0] if abilist else None)
    if abi and not abilist:
        abilist = [abi]
    return DeviceInfo(
        serial=serial,
        model=props.get("ro.product.model") or None,
        manufacturer=props.get("ro.product.manufacturer") or None,
        brand=props.get("ro.product.brand") or None,
        device=props.get("ro.product.device") or None,
        soc=soc,
        board=props.get("ro.product.board") or props.get("ro.board.platform") or None,
        android=props.get("ro.build.version.release") or None,
        sdk=int(sdk) if sdk.isdigit() else None,
        abi=abi,
        abilist=abilist,
        cores=len(possible) or cpu["cores"],
        max_freq_mhz=mhz,
        clusters=summarize_clusters(mhz),
        ram_mb=parse_meminfo_mb(sections.get("meminfo", "")),
        storage_free_mb=parse_df_free_mb(sections.get("df", "")),
        battery_temp_c=parse_battery_temp(
            sections.get("battery", ""), sections.get("battery_sysfs", "")
        ),
        fingerprint=props.get("ro.build.fingerprint") or None,
        adb_features=sorted(features),
        simulated=props.get(SIMULATED_PROP) == "1",
    )


# -- gathering -------------------------------------------------------------------------------
_SECTIONS = {
    "getprop": "getprop",
    "cpuinfo": "cat /proc/cpuinfo",
    "meminfo": "cat /proc/meminfo",
    "possible": f"cat {_CPU}/possible",
    "battery": "dumpsys battery",
    "battery_sysfs": f"cat {_BATTERY_SYSFS}",
    "df": "df /data/local/tmp",
}


def _split_sections(text: str, names: list[str]) -> dict[str, str]:
    parts = text.split(SEP + "\n")
    return {name: parts[i] if i < len(parts) else "" for i, name in enumerate(names)}


def read_device_info(adb: Adb, serial: str) -> DeviceInfo:
    """Query a device (two ``adb shell`` calls) and describe it."""
    names = list(_SECTIONS)
    command = "; ".join(f"{_SECTIONS[n]} 2>/dev/null; echo {SEP}" for n in names)
    res = adb.shell(serial, command, timeout=60)
    sections = _split_sections(res.out, names)
    props = parse_getprop(sections["getprop"])
    cpus = parse_cpu_range(sections["possible"]) or list(
        range(parse_cpuinfo(sections["cpuinfo"])["cores"] or 0)
    )
    freqs: list[str] = []
    if cpus:
        files = [f"{_CPU}/cpu{i}/cpufreq/cpuinfo_max_freq" for i in cpus]
        res2 = adb.shell(
            serial, "; ".join(f"cat {f} 2>/dev/null; echo {SEP}" for f in files), timeout=60
        )
        freqs = [s.strip() for s in res2.out.split(SEP + "\n")][: len(cpus)]
    return build_info(serial, props, sections, freqs, adb.features(serial))


def battery_temperature(adb: Adb, serial: str) -> float | None:
    """The battery temperature now (°C), or ``None`` when the device does not report it."""
    res = adb.shell(
        serial,
        f"dumpsys battery 2>/dev/null; echo {SEP}; cat {_BATTERY_SYSFS} 2>/dev/null",
        timeout=30,
    )
    dumpsys, _, sysfs = res.out.partition(SEP + "\n")
    return parse_battery_temp(dumpsys, sysfs)
