"""Which Android ABI an executable is built for, read from its ELF header.

A phone refuses a binary for another architecture with a cryptic ``not executable: 64-bit ELF
file``; reading ``e_ident`` and ``e_machine`` locally gives a clear message before anything is
pushed.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from sinet_deploy.core.errors import DeviceError

EM_386 = 3
EM_ARM = 40
EM_X86_64 = 62
EM_AARCH64 = 183
EM_RISCV = 243

#: (ELF class bits, e_machine) of each Android ABI.
ABI_MACHINE = {
    "arm64-v8a": (64, EM_AARCH64),
    "armeabi-v7a": (32, EM_ARM),
    "armeabi": (32, EM_ARM),
    "x86": (32, EM_386),
    "x86_64": (64, EM_X86_64),
    "riscv64": (64, EM_RISCV),
}

_MACHINE_NAMES = {
    EM_386: "x86",
    EM_ARM: "ARM",
    EM_X86_64: "x86-64",
    EM_AARCH64: "AArch64",
    EM_RISCV: "RISC-V",
}

ELF_HEADER_SIZE = 64


@dataclass(frozen=True)
class ElfInfo:
    """What the ELF header says."""

    bits: int
    machine: int
    elf_type: int

    @property
    def machine_name(self) -> str:
        return _MACHINE_NAMES.get(self.machine, f"machine {self.machine}")

    @property
    def abi(self) -> str | None:
        """The Android ABI this binary runs as (``armeabi-v7a`` for 32-bit ARM), if any."""
        for abi, (bits, machine) in ABI_MACHINE.items():
            if (bits, machine) == (self.bits, self.machine):
                return abi
        return None

    def describe(self) -> str:
        return f"a {self.bits}-bit {self.machine_name} ELF ({self.abi or 'no Android ABI'})"


def read_elf_header(head: bytes) -> ElfInfo | None:
    """Parse the first bytes of a file; ``None`` when they are not an ELF header."""
    if len(head) < 20 or head[:4] != b"\x7fELF":
        return None
    ei_class, ei_data = head[4], head[5]
    if ei_class not in (1, 2) or ei_data not in (1, 2):
        return None
    endian = "<" if ei_data == 1 else ">"
    elf_type, machine = struct.unpack_from(endian + "HH", head, 16)
    return ElfInfo(bits=32 if ei_class == 1 else 64, machine=machine, elf_type=elf_type)


def elf_header_for_abi(abi: str) -> bytes:
    """A minimal, valid ELF header (no program headers) claiming ``abi``; used by the stand-in."""
    bits, machine = ABI_MACHINE[abi]
    if bits == 64:
        # e_ident, e_type=ET_DYN, e_machine, e_version, e_entry, e_phoff, e_shoff, e_flags,
        # e_ehsize, e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx
        ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
        return ident + struct.pack("<HHIQQQIHHHHHH", 3, machine, 1, 0, 0, 0, 0, 64, 56, 0, 64, 0, 0)
    ident = b"\x7fELF" + bytes([1, 1, 1, 0]) + bytes(8)
    header = ident + struct.pack(
        "<HHIIIIIHHHHHH", 3, machine, 1, 0, 0, 0, 0x05000000, 52, 32, 0, 40, 0, 0
    )
    return header + bytes(ELF_HEADER_SIZE - len(header))


_HINTS = {
    "benchmark_model": (
        "download LiteRT's android_aarch64 benchmark_model and pass its path",
        "pass LiteRT's prebuilt benchmark_model for Android (android_aarch64 for arm64 phones)",
    ),
    "executor_runner": (
        "build ExecuTorch's executor_runner for Android (with XNNPACK) and pass its path",
        "pass ExecuTorch's executor_runner built for Android with the NDK",
    ),
}


def read_binary(path: Path, tool: str = "benchmark_model") -> ElfInfo:
    """The ELF header of a local executable (``tool``: benchmark_model or executor_runner);
    :class:`DeviceError` if it is not one."""
    path = Path(path)
    missing_hint, build_hint = _HINTS[tool]
    label = "benchmark binary" if tool == "benchmark_model" else "runner"
    if not path.is_file():
        raise DeviceError(f"{label} {path} does not exist", hint=missing_hint)
    with open(path, "rb") as fh:
        head = fh.read(ELF_HEADER_SIZE)
    info = read_elf_header(head)
    if info is None:
        what = "a script" if head.startswith(b"#!") else "not an ELF executable"
        raise DeviceError(f"{label} {path.name} is {what}", hint=build_hint)
    if info.elf_type not in (2, 3):
        raise DeviceError(
            f"{label} {path.name} is an ELF object/core file, not an executable",
            hint=f"pass the {tool} executable itself",
        )
    return info


def check_binary_for_device(
    path: Path, abilist: list[str], tool: str = "benchmark_model"
) -> ElfInfo:
    """Check that ``path`` is an executable the device's ABIs can run; :class:`DeviceError` if not.

    Args:
        path: the local ``benchmark_model`` (or ``executor_runner``) binary.
        abilist: the device's ``ro.product.cpu.abilist`` (primary ABI first).
        tool: which of the two it is, for the messages.
    """
    info = read_binary(path, tool)
    if info.abi not in abilist:
        want = abilist[0] if abilist else "unknown"
        label = "benchmark binary" if tool == "benchmark_model" else "runner"
        if tool == "benchmark_model":
            hint = (
                f"use the benchmark_model built for {want} "
                f"(LiteRT's {'android_aarch64' if want == 'arm64-v8a' else 'android_' + want})"
            )
        else:
            hint = f"build executor_runner for {want} (-DANDROID_ABI={want})"
        raise DeviceError(
            f"{label} {path.name} is {info.describe()} but the device runs "
            f"{', '.join(abilist) or 'an unknown ABI'}",
            hint=hint,
        )
    return info
