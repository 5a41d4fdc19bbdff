"""What machine a benchmark ran on: CPU model, cores, memory, OS, Python and library versions.

Numbers from two machines are not comparable; every report carries this block so a reader can
tell. Versions come from package metadata (``sinet_deploy.core.environment``): nothing heavy is
imported here.
"""

from __future__ import annotations

import contextlib
import os
import platform
from typing import Any

from sinet_deploy.core.environment import cpu_model, int8_dot_product, package_versions
from sinet_deploy.core.version import __version__


def usable_cores() -> int:
    """Cores this process may run on (the affinity mask where the OS has one, e.g. Linux)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


#: Thread counts above this many times the usable cores are refused: they only measure the
#: scheduler (a 1000-thread run on 2 cores takes minutes and reports noise).
MAX_THREADS_PER_CORE = 4


def check_threads(values: list[int], option: str = "--threads") -> list[int]:
    """Thread counts that are at least 1 and at most :data:`MAX_THREADS_PER_CORE` x the usable
    cores; :class:`~sinet_deploy.core.errors.UserInputError` otherwise."""
    from sinet_deploy.core.errors import UserInputError

    cores = usable_cores()
    limit = MAX_THREADS_PER_CORE * cores
    for v in values:
        if not 1 <= v <= limit:
            raise UserInputError(
                f"{option} {v} must be between 1 and {limit} ({MAX_THREADS_PER_CORE} x the "
                f"{cores} usable core(s) here)",
                hint=f"e.g. {option} 1 or {option} {cores}",
            )
    return values


def machine_info() -> dict[str, Any]:
    """A JSON-ready description of this machine and its software.

    Returns:
        ``cpu_model``, ``int8_dot_product`` / ``int8_flags`` (see
        :func:`sinet_deploy.core.environment.int8_dot_product`), ``logical_cores``,
        ``usable_cores`` (the affinity mask: what a container actually gets), ``memory_gb``,
        ``os``, ``platform``, ``python``, ``sinet_deploy`` and ``libraries`` (distribution
        name → version, ``None`` when not installed).
    """
    usable = usable_cores()
    memory_gb: float | None = None
    with contextlib.suppress(AttributeError, ValueError, OSError):
        memory_gb = round(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30, 1)
    return {
        "cpu_model": cpu_model(),
        **int8_dot_product(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "memory_gb": memory_gb,
        "os": f"{platform.system()} {platform.release()}",
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sinet_deploy": __version__,
        "libraries": package_versions(),
    }
