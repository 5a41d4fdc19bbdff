"""Property-based fuzzing of the parsers that read what other programs (or files) say.

Each parser may only fail with its documented error type, and must always return: the
``benchmark_model`` output parser (:class:`BenchOutputError`), the simulated device's adb message
decoder (:class:`ProtocolError`, ``None`` at end of stream), its sync-service framing (answers
``FAIL`` and stops, never raises), and the manifest reader (:class:`ArtifactError`). 2,000
generated cases each, no deadline (the machine may be busy), a few seconds each in practice.
"""

from __future__ import annotations

import json
import socket
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sinet_deploy.core.errors import ArtifactError
from sinet_deploy.core.manifest import read_manifest
from sinet_deploy.device.bench_output import BenchOutput, BenchOutputError, parse_benchmark_output
from sinet_deploy.device.sim.protocol import (
    A_CNXN,
    A_OKAY,
    A_WRTE,
    HEADER_SIZE,
    Message,
    ProtocolError,
    pack,
    read_message,
)
from tests.device.test_device_parsers import ALL_SAME, CURRENT, LEGACY, OP_PROFILE

FUZZ = settings(
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,  # the same cases on every run: a failure is reproducible, never luck
)

# --- benchmark_model output -----------------------------------------------------------------

_SAMPLE_LINES = sorted(
    {ln for text in (CURRENT, LEGACY, ALL_SAME, OP_PROFILE) for ln in text.splitlines()}
)
_NUMBERS = st.sampled_from(
    ["0", "-1", "1e400", "nan", "inf", "3.5", "2.95034e+06", "99999999999999999999", "", "-"]
)


@st.composite
def _mutated_line(draw: st.DrawFn) -> str:
    """A real output line, with its numbers replaced by odd ones or cut short."""
    line = draw(st.sampled_from(_SAMPLE_LINES))
    words = line.split(" ")
    for i, word in enumerate(words):
        if any(c.isdigit() for c in word) and draw(st.booleans()):
            words[i] = draw(_NUMBERS)
    line = " ".join(words)
    if draw(st.integers(0, 4)) == 0:
        line = line[: draw(st.integers(0, len(line)))]
    return line


_BENCH_TEXT = st.lists(
    st.one_of(
        st.sampled_from(_SAMPLE_LINES),
        _mutated_line(),
        st.text(max_size=80),
    ),
    max_size=40,
).map(lambda lines: "\n".join(lines))


@FUZZ
@given(_BENCH_TEXT, st.sampled_from(["\n", "\r\n", "\r"]))
def test_bench_output_parser_raises_only_bench_output_error(text: str, newline: str) -> None:
    try:
        out = parse_benchmark_output(text.replace("\n", newline))
    except BenchOutputError:
        return
    assert isinstance(out, BenchOutput)


# --- adb transport messages -----------------------------------------------------------------

_MESSAGES = st.builds(
    Message,
    st.sampled_from([A_CNXN, A_OKAY, A_WRTE, 0, 0xFFFFFFFF]),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    st.binary(max_size=64),
)


@st.composite
def _adb_stream(draw: st.DrawFn) -> bytes:
    """Well-formed messages, broken headers (bad magic, huge lengths) and raw bytes, mixed."""
    parts = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.integers(0, 3))
        if kind == 0:
            parts.append(pack(draw(_MESSAGES)))
        elif kind == 1:  # a header with a random field
            fields = list(struct.unpack("<6I", pack(draw(_MESSAGES))[:HEADER_SIZE]))
            fields[draw(st.integers(0, 5))] = draw(st.integers(0, 2**32 - 1))
            parts.append(struct.pack("<6I", *fields) + draw(st.binary(max_size=32)))
        else:
            parts.append(draw(st.binary(max_size=40)))
    return b"".join(parts)


@FUZZ
@given(_adb_stream())
def test_adb_decoder_raises_only_protocol_error(data: bytes) -> None:
    host, device = socket.socketpair()
    try:
        host.sendall(data)
        host.shutdown(socket.SHUT_WR)  # end of stream after the data: the reader must stop
        device.settimeout(5)  # a decoder waiting for more than was sent would hang: fail
        for _ in range(len(data) // HEADER_SIZE + 2):
            try:
                msg = read_message(device)
            except ProtocolError:
                return
            if msg is None:
                return
            assert isinstance(msg, Message)
        pytest.fail("the decoder read more messages than the bytes could hold")
    finally:
        host.close()
        device.close()


@FUZZ
@given(st.lists(_MESSAGES, max_size=5))
def test_adb_pack_read_round_trip(messages: list[Message]) -> None:
    host, device = socket.socketpair()
    try:
        host.sendall(b"".join(pack(m) for m in messages))
        host.shutdown(socket.SHUT_WR)
        device.settimeout(5)
        got = []
        while (msg := read_message(device)) is not None:
            got.append(msg)
        assert got == messages
    finally:
        host.close()
        device.close()


# --- sync service framing -------------------------------------------------------------------


class _BytesIO:
    """The device end of a stream that holds ``data`` and then ends."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos, self.replies = data, 0, bytearray()

    def read(self, size: int) -> bytes:
        chunk = self.data[self.pos : self.pos + size]
        self.pos += len(chunk)
        return chunk

    def write(self, data: bytes) -> None:
        self.replies += data


_IDENTS = st.sampled_from([b"STAT", b"LIST", b"SEND", b"RECV", b"DATA", b"DONE", b"QUIT", b"XXXX"])
_PATHS = st.one_of(
    st.sampled_from(
        [
            "/data/local/tmp/f.bin,33188",
            "/data/local/tmp/d/",
            "/data/local/tmp/../../etc/passwd",
            "/system/bin/sh",
            "/data/local/tmp/f.bin,notamode",
            "",
            "/",
        ]
    ),
    st.text(max_size=30),
).map(lambda s: s.encode("utf-8", "surrogatepass"))


@st.composite
def _sync_stream(draw: st.DrawFn) -> bytes:
    parts = []
    for _ in range(draw(st.integers(0, 6))):
        ident = draw(_IDENTS)
        body = draw(_PATHS) if ident != b"DATA" else draw(st.binary(max_size=64))
        length = len(body)
        if draw(st.integers(0, 5)) == 0:  # a length that lies
            length = draw(st.sampled_from([0, 1025, 65537, 2**32 - 1, len(body) + 7]))
        parts.append(ident + struct.pack("<I", length) + body)
    if draw(st.booleans()):
        parts.append(draw(st.binary(max_size=16)))
    return b"".join(parts)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[tuple[Path, Any]]:
    """One simulated device for all cases (made once: it writes its system files)."""
    from sinet_deploy.device.sim.profile import get_profile
    from sinet_deploy.device.sim.sandbox import Sandbox

    with tempfile.TemporaryDirectory(prefix="sinet_fuzz_sync_") as tmp:
        yield Path(tmp), Sandbox(Path(tmp) / "dev", get_profile("current"))


@FUZZ
@given(_sync_stream())
def test_sync_service_framing_never_raises(sandbox: tuple[Path, Any], data: bytes) -> None:
    from sinet_deploy.device.sim.services import SyncService

    sandbox_root, device = sandbox
    io = _BytesIO(data)
    SyncService(io, device, lambda n: None).serve()  # returns; never raises
    assert io.pos <= len(data)
    # nothing escapes the sandbox, whatever the paths said
    assert not (sandbox_root / "etc").exists()


# --- manifest reader ------------------------------------------------------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
_MANIFEST_BYTES = st.one_of(
    _JSON.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
    st.integers(1, 3000).map(lambda n: b"[" * n),  # nesting deeper than the decoder's stack
    st.integers(4300, 20_000).map(lambda n: b'{"a": ' + b"7" * n + b"}"),  # int digit limit
    st.text(max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass")),
)


@pytest.fixture(scope="module")
def manifest_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="sinet_fuzz_manifest_") as tmp:
        yield Path(tmp)


@FUZZ
@given(_MANIFEST_BYTES)
def test_manifest_reader_raises_only_artifact_error(manifest_dir: Path, data: bytes) -> None:
    artifact = manifest_dir / "sinet_224x224_fp32.onnx"
    (manifest_dir / "sinet_224x224_fp32.json").write_bytes(data)
    try:
        manifest = read_manifest(artifact)
    except ArtifactError:
        return
    assert isinstance(manifest, dict)
