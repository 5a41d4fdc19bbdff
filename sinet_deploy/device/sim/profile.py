"""What a simulated device claims to be, and how it can be told to fail.

Every profile sets ``ro.sinet_deploy.simulated=1``, a property no real phone has; the device
runner reads it and labels every number from such a device SIMULATED.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from sinet_deploy.device.info import SIMULATED_PROP

#: Ways a real device fails that the simulator reproduces (``device simulate --fail MODE``).
FAILURES = {
    "none": "behave",
    "crash": "the benchmark binary dies with SIGSEGV (exit 139) after its first lines",
    "garbage": "the benchmark binary prints garbage and exits 0",
    "disconnect-push": "the connection drops during the first push larger than 1 KiB (once)",
    "disk-full": "/data is full: every push fails with ENOSPC",
    "unauthorized": "the device answers CNXN with AUTH and never accepts the host's key",
    "offline": "the device accepts the TCP connection but never answers CNXN",
}

#: Output formats of LiteRT's benchmark_model over the years (see ``sim/standin.py``).
BENCH_FORMATS = ("current", "tf2.4", "legacy")


@dataclass(frozen=True)
class DeviceProfile:
    """A simulated phone: properties, CPU, battery, benchmark_model vintage, failure mode."""

    name: str
    props: dict[str, str]
    cpu_max_khz: tuple[int, ...]
    cpu_part: str = "0xd05"
    battery_temp_decic: int = 290
    #: adb features in the CNXN banner; without ``shell_v2`` the host gets no exit codes.
    features: tuple[str, ...] = ("shell_v2", "cmd", "fixed_push_mkdir")
    bench_format: str = "current"
    #: Whether the stand-in knows ``--output_filepath`` (LiteRT added it long after TF 2.4).
    supports_output_filepath: bool = True
    data_free_bytes: int = 48 * 1024**3
    failure: str = "none"
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def abi(self) -> str:
        return self.props["ro.product.cpu.abi"]

    def with_failure(self, failure: str) -> DeviceProfile:
        if failure not in FAILURES:
            raise ValueError(f"unknown failure mode {failure!r}; choose from {', '.join(FAILURES)}")
        free = 0 if failure == "disk-full" else self.data_free_bytes
        return replace(self, failure=failure, data_free_bytes=free)


def _props(model: str, release: str, sdk: str, abi: str, abilist: str, soc: str) -> dict[str, str]:
    return {
        "ro.product.model": model,
        "ro.product.manufacturer": "sinet-deploy",
        "ro.product.brand": "sinet",
        "ro.product.name": "sinet_sim",
        "ro.product.device": "sinet_sim",
        "ro.product.board": "simboard",
        "ro.board.platform": "simplatform",
        "ro.hardware": "simulated",
        "ro.soc.manufacturer": "sinet-deploy",
        "ro.soc.model": soc,
        "ro.build.version.release": release,
        "ro.build.version.sdk": sdk,
        "ro.build.type": "userdebug",
        "ro.build.fingerprint": f"sinet/sinet_sim/sinet_sim:{release}/SIM/1:userdebug/test-keys",
        "ro.product.cpu.abi": abi,
        "ro.product.cpu.abilist": abilist,
        "ro.serialno": "SINETSIM0001",
        SIMULATED_PROP: "1",
    }


PROFILES: dict[str, DeviceProfile] = {
    # A current phone: Android 14, arm64, 4+3+1 cores, today's benchmark_model output.
    "current": DeviceProfile(
        name="current",
        props=_props(
            "SINet Simulated Phone",
            "14",
            "34",
            "arm64-v8a",
            "arm64-v8a,armeabi-v7a,armeabi",
            "SIMULATED-8CORE",
        ),
        cpu_max_khz=(1800000,) * 4 + (2400000,) * 3 + (3000000,),
    ),
    # A 2020 phone whose benchmark_model is TF 2.4-era: no percentiles, no --output_filepath.
    "old": DeviceProfile(
        name="old",
        props=_props(
            "SINet Simulated Phone (2020)",
            "10",
            "29",
            "arm64-v8a",
            "arm64-v8a,armeabi-v7a,armeabi",
            "SIMULATED-OLD",
        ),
        cpu_max_khz=(1700000,) * 4 + (2200000,) * 4,
        bench_format="tf2.4",
        supports_output_filepath=False,
    ),
    # A 32-bit Android 7 device: armeabi-v7a, no shell_v2 (no exit codes), oldest output.
    "legacy": DeviceProfile(
        name="legacy",
        props=_props(
            "SINet Simulated Phone (2016)",
            "7.1.2",
            "25",
            "armeabi-v7a",
            "armeabi-v7a,armeabi",
            "SIMULATED-LEGACY",
        ),
        cpu_max_khz=(1400000,) * 4,
        cpu_part="0xc07",
        features=(),
        bench_format="legacy",
        supports_output_filepath=False,
    ),
}


def get_profile(name: str, failure: str = "none") -> DeviceProfile:
    """A named profile, optionally with a failure mode; ``ValueError`` for unknown names."""
    if name not in PROFILES:
        raise ValueError(f"unknown device profile {name!r}; choose from {', '.join(PROFILES)}")
    return PROFILES[name].with_failure(failure)
