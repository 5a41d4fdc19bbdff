"""``adb devices -l``: parse it and pick the device(s) a command should use.

Selection follows adb's own conventions: ``--serial`` (repeatable, or ``all``), else
``$ANDROID_SERIAL``, else the only attached device; two or more without a choice is an error,
as it is for ``adb shell``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sinet_deploy.core.errors import DeviceError

#: The ``key:value`` fields adb appends in long (``-l``) listings.
_LONG_KEYS = {"usb", "product", "model", "device", "transport_id", "features"}
_KV = re.compile(r"^([a-z_]+):(\S*)$")

#: What each non-``device`` state means for the user, and what to do about it.
STATE_HINTS = {
    "unauthorized": "unlock the phone and accept the 'Allow USB debugging?' prompt "
    "(tick 'Always allow'), then retry",
    "offline": "reconnect the cable (or `adb reconnect`; for a network device "
    "`adb disconnect` then `adb connect HOST:PORT`) and retry",
    "no permissions": "your user may not open the USB device: add a udev rule for the phone "
    "(see developer.android.com/studio/run/device) or use the plugdev group",
    "authorizing": "the device is still checking the host's key; retry in a few seconds",
    "connecting": "adb is still connecting; retry in a few seconds",
    "bootloader": "the device is in the bootloader; boot Android first",
    "recovery": "the device is in recovery; boot Android first",
    "sideload": "the device is in sideload mode; boot Android first",
    "rescue": "the device is in rescue mode; boot Android first",
    "host": "this is another adb host, not a device",
}


@dataclass(frozen=True)
class DeviceEntry:
    """One line of ``adb devices -l``."""

    serial: str
    state: str
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def online(self) -> bool:
        return self.state == "device"

    @property
    def is_network(self) -> bool:
        """``host:port`` serials come from ``adb connect`` (Wi-Fi, a device farm, the simulator)."""
        return bool(re.match(r"^[\w.\-\[\]:]+:\d+$", self.serial))

    def to_dict(self) -> dict[str, str]:
        return {"serial": self.serial, "state": self.state, **self.fields}


def parse_devices(text: str) -> list[DeviceEntry]:
    """Parse the output of ``adb devices -l`` (or plain ``adb devices``).

    The state can contain spaces (``no permissions (…); see [http://…]``), so a line is split
    into the serial, then words up to the first known ``key:value`` field.
    """
    entries: list[DeviceEntry] = []
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line or line.startswith(("List of devices", "* ", "adb server", "adb: ")):
            continue
        parts = line.split()
        if len(parts) < 2:
            continue
        serial, rest = parts[0], parts[1:]
        state_words: list[str] = []
        fields: dict[str, str] = {}
        for i, word in enumerate(rest):
            m = _KV.match(word)
            if m and m.group(1) in _LONG_KEYS and state_words:
                for w in rest[i:]:
                    m2 = _KV.match(w)
                    if m2:
                        fields[m2.group(1)] = m2.group(2)
                break
            state_words.append(word)
        state = " ".join(state_words)
        if state.startswith("no permissions"):
            fields["detail"] = state
            state = "no permissions"
        entries.append(DeviceEntry(serial, state, fields))
    return entries


def _unusable(entry: DeviceEntry) -> DeviceError:
    hint = STATE_HINTS.get(entry.state, "check the device and `adb devices -l`")
    return DeviceError(f"device {entry.serial} is {entry.state}", hint=hint)


def select_devices(
    entries: list[DeviceEntry], requested: list[str] | None, env_serial: str | None = None
) -> list[DeviceEntry]:
    """The devices a command runs on; :class:`DeviceError` when the choice is impossible.

    Args:
        entries: the parsed device list.
        requested: ``--serial`` values (``["all"]`` for every online device) or ``None``.
        env_serial: ``$ANDROID_SERIAL``, used when nothing was requested.
    """
    wanted = [s for s in (requested or []) if s]
    if not wanted and env_serial:
        wanted = [env_serial]
    if wanted == ["all"]:
        online = [e for e in entries if e.online]
        if not online:
            raise _no_device(entries)
        return online
    if wanted:
        chosen = []
        by_serial = {e.serial: e for e in entries}
        for serial in dict.fromkeys(wanted):
            entry = by_serial.get(serial)
            if entry is None:
                listed = ", ".join(by_serial) or "none"
                hint = (
                    f"run `adb connect {serial}` first"
                    if re.search(r":\d+$", serial)
                    else "check the cable and `adb devices -l`"
                )
                raise DeviceError(f"device {serial} not found (attached: {listed})", hint=hint)
            if not entry.online:
                raise _unusable(entry)
            chosen.append(entry)
        return chosen
    if not entries:
        raise _no_device(entries)
    if len(entries) > 1:
        listed = ", ".join(f"{e.serial} ({e.state})" for e in entries)
        raise DeviceError(
            f"more than one device attached: {listed}",
            hint="pick one with --serial SERIAL (or --serial all), or set ANDROID_SERIAL",
        )
    if not entries[0].online:
        raise _unusable(entries[0])
    return [entries[0]]


def _no_device(entries: list[DeviceEntry]) -> DeviceError:
    if entries:
        states = ", ".join(f"{e.serial} is {e.state}" for e in entries)
        return DeviceError(
            f"no usable device ({states})",
            hint=STATE_HINTS.get(entries[0].state, "check `adb devices -l`"),
        )
    return DeviceError(
        "no Android device attached",
        hint="connect a phone with USB debugging on (or `adb connect HOST:PORT`) "
        "and check `adb devices`",
    )
