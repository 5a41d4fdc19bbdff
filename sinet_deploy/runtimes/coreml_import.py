"""Importing coremltools without its noise: shared by the CoreML runtime and converter.

coremltools logs and warns at import and while converting; both are collected into a list the
caller shows once (manifest notes, ``--verbose``), instead of pages on stderr.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator
from typing import Any

from sinet_deploy.core.errors import MissingDependencyError


class _Collect(logging.Handler):
    def __init__(self, sink: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(record.getMessage())


@contextlib.contextmanager
def quiet_coremltools(sink: list[str]) -> Iterator[None]:
    """Collect coremltools' log warnings into ``sink`` and swallow its progress bars.

    coremltools logs "Torch version 2.13 has not been tested" (newest tested: 2.7) and, off
    macOS, one "Failed to load ... libcoremlpython" line per proxy class; its conversion passes
    draw tqdm bars on stderr. The library never prints, so these are recorded instead.
    """
    logger = logging.getLogger("coremltools")
    handler = _Collect(sink)
    old = (logger.level, logger.propagate)
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    try:
        with contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings(record=True) as ws:
            warnings.simplefilter("always")
            yield
        sink.extend(f"{w.category.__name__}: {w.message}" for w in ws)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old[0])
        logger.propagate = old[1]


_IMPORT_WARNINGS: list[str] = []


def import_coremltools(sink: list[str] | None = None) -> Any:
    """``import coremltools`` quietly; its import-time warnings are added to ``sink``.

    coremltools imports TensorFlow at import time when it is installed (it is, for the TFLite
    work), only to check its version: 5-8 s here and a page of C++ log lines on stderr that no
    Python redirect can catch. We never convert from TensorFlow, so while coremltools is first
    imported ``tensorflow`` is made unimportable (``sys.modules`` entry ``None``); the entry is
    removed right after, so any later ``import tensorflow`` works as usual.

    Raises:
        MissingDependencyError: coremltools is not installed.
    """
    import sys

    if "coremltools" not in sys.modules:
        block_tf = "tensorflow" not in sys.modules
        if block_tf:
            sys.modules["tensorflow"] = None  # type: ignore[assignment]
        try:
            with quiet_coremltools(_IMPORT_WARNINGS):
                import coremltools  # noqa: F401
        except ImportError as exc:
            raise MissingDependencyError(
                f"coremltools cannot be imported ({exc})", hint="pip install 'sinet-deploy[coreml]'"
            ) from None
        finally:
            if block_tf and sys.modules.get("tensorflow", 0) is None:
                del sys.modules["tensorflow"]
    if sink is not None:
        sink.extend(_IMPORT_WARNINGS)
    return sys.modules["coremltools"]
