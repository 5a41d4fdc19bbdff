"""The simulated device's stand-in for ExecuTorch's ``executor_runner``.

Like the benchmark_model stand-in (``sim/standin.py``), the file ``device simulate`` hands out
is a 64-byte ELF header claiming the profile's ABI, then a marker and a note; it is not a
program. The simulated shell runs it by calling :func:`run_et_standin`, which loads the pushed
``.pte`` with ``executorch.runtime`` on the host CPU and prints what the real runner prints
(``examples/portable/executor_runner/executor_runner.cpp``): ``ET_LOG`` lines in the posix PAL's
format on stderr, the output summary on stdout. The ``current`` profile prints today's runner
(``Model loaded in``, one ``Iteration i of N`` line per execution, the total); the older
profiles print the earlier runner, which prints only the total. Its timings are this
host's, and every report built from them is labelled SIMULATED.

Honoured flags (gflags ``--name=value`` or ``--name value``): ``--model_path --num_executions
--cpu_threads --inputs --output_file --method_name --print_output`` (``--print_all_output`` on
the older profiles). An unknown flag fails as gflags does (``ERROR: unknown command line flag``,
exit 1). ``--cpu_threads`` sizes ExecuTorch's process-wide thread pool only for the first
program the simulator loads (it cannot be resized safely under a loaded program); the runner
reports the number asked for, as the real one does.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sinet_deploy.device.elf import ELF_HEADER_SIZE, elf_header_for_abi

if TYPE_CHECKING:
    from sinet_deploy.device.sim.shell import Shell
    from sinet_deploy.runtimes.executorch_rt import ExecuTorchSession

MARKER = b"SINET-DEPLOY-SIMULATED-EXECUTOR-RUNNER/1"

NOTE = (
    b"\nThis file is the sinet-deploy stand-in for ExecuTorch's executor_runner. It is not a\n"
    b"program: only `sinet-deploy device simulate` runs it (with ExecuTorch on the host CPU).\n"
    b"Its timings are the host's, reported as SIMULATED. A real phone needs executor_runner\n"
    b"built for Android with XNNPACK from the ExecuTorch sources.\n"
)

_STRING = {"model_path", "data_path", "inputs", "output_file", "method_name", "etdump_path"}
_INT = {"num_executions", "cpu_threads"}
_CURRENT_ONLY = {"method_name", "print_output", "input_shapes", "server_mode"}
_OLD_ONLY = {"print_all_output"}

_FILE = "executor_runner.cpp"


def write_et_standin(path: Path, abi: str) -> Path:
    """Write the stand-in file: an ELF header for ``abi``, the marker and a note; mode 0755."""
    path = Path(path)
    path.write_bytes(elf_header_for_abi(abi) + MARKER + NOTE)
    path.chmod(0o755)
    return path


def is_et_standin(head: bytes) -> bool:
    """Whether the first bytes of a file are this stand-in (marker right after the header)."""
    return head[ELF_HEADER_SIZE : ELF_HEADER_SIZE + len(MARKER)] == MARKER


class _Log:
    """``ET_LOG`` through the posix PAL: ``L hh:mm:ss.uuuuuu executorch:file:line] message``.

    The line numbers are this stand-in's own (the real ones change with every release).
    """

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.lines: list[str] = []

    def __call__(self, level: str, line: int, message: str) -> None:
        us = int((time.perf_counter() - self.start) * 1e6)
        sec, us = divmod(us, 1_000_000)
        minute, sec = divmod(sec, 60)
        hour, minute = divmod(minute, 60)
        self.lines.append(
            f"{level} {hour:02d}:{minute:02d}:{sec:02d}.{us:06d} executorch:{_FILE}:{line}] "
            f"{message}"
        )

    def text(self) -> bytes:
        return ("\n".join(self.lines) + "\n").encode() if self.lines else b""


class _Fail(Exception):
    """The runner stops: ``(exit code, message)``; 134 for ``ET_CHECK_MSG`` (abort)."""

    def __init__(self, rc: int, message: str) -> None:
        super().__init__(message)
        self.rc = rc


def _parse_flags(argv: list[str], current: bool) -> tuple[dict[str, Any], list[str], list[str]]:
    """gflags: (known flags, unknown flag names, positional leftovers)."""
    flags: dict[str, Any] = {}
    unknown: list[str] = []
    extra: list[str] = []
    known = _STRING | _INT | (_CURRENT_ONLY if current else _OLD_ONLY)
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if not arg.startswith("-") or arg in ("-", "--"):
            extra.append(arg)
            continue
        name, sep, value = arg.lstrip("-").partition("=")
        if name not in known:
            unknown.append(name)
            continue
        if not sep:
            if name in ("print_all_output", "server_mode"):
                value = "true"
            elif i < len(argv):
                value, i = argv[i], i + 1
            else:
                raise _Fail(1, f"ERROR: flag '--{name}' is missing its argument")
        if name in _INT:
            try:
                flags[name] = int(value)
            except ValueError:
                raise _Fail(
                    1, f"ERROR: illegal value '{value}' specified for int32 flag '{name}'"
                ) from None
        else:
            flags[name] = value
    return flags, unknown, extra


def _summary(values: Any) -> str:
    """``print_evalue``'s edge items: up to 100 first and 100 last elements."""
    flat = [float(v) for v in values.reshape(-1)]
    shown = flat if len(flat) <= 200 else [*flat[:100], None, *flat[-100:]]
    return ", ".join("..." if v is None else f"{v:g}" for v in shown)


def run_et_standin(argv: list[str], shell: Shell) -> tuple[bytes, bytes, int]:
    """Run the stand-in as ``argv`` in the simulated shell; (stdout, stderr, exit code)."""
    log = _Log()
    out: list[str] = []
    try:
        rc = _run(argv[1:], shell, log, out)
    except _Fail as exc:
        if exc.rc == 134:
            log("F", 0, f"In function main(), assert failed: {exc}")
            return ("\n".join(out)).encode(), log.text() + b"Aborted\n", 134
        if str(exc).startswith("ERROR:"):
            return b"", log.text() + (str(exc) + "\n").encode(), exc.rc
        log("E", 0, str(exc))
        return b"", log.text(), exc.rc
    except Exception as exc:  # a bug of the simulator, reported as such (never as a phone's)
        log("E", 0, f"SIMULATOR internal error in the stand-in executor_runner: {exc!r}")
        return b"", log.text(), 1
    stdout = ("\n".join(out) + "\n").encode() if out else b""
    return stdout, log.text(), rc


def _run(args: list[str], shell: Shell, log: _Log, out: list[str]) -> int:
    """The runner's main(): flags, inputs, program load, executions, outputs; the exit code."""
    profile = shell.profile
    current = profile.bench_format == "current"
    flags, unknown, extra = _parse_flags(args, current)
    if unknown:
        raise _Fail(1, f"ERROR: unknown command line flag '{unknown[0]}'")
    if extra:
        raise _Fail(1, "Extra commandline args: " + " ".join(extra))
    if profile.failure == "garbage":
        junk = bytes((i * 53 + 7) % 256 for i in range(300)).decode("latin-1")
        out.append(junk + "\nModel executed successfully ?? time(s) in n/a ms.")
        return 0

    threads = int(flags.get("cpu_threads", -1))
    performant = max(1, len(profile.cpu_max_khz) // 2)
    pool = performant if threads == -1 else threads
    log("I", 210, f"Resetting threadpool with num threads = {pool}")

    model_path = str(flags.get("model_path", "model.pte"))
    input_bytes = _read_inputs(str(flags.get("inputs", "")), shell, log)
    host_model = _model_file(model_path, shell, log)
    _import_executorch()
    session = _load_program(host_model, model_path, pool, log)
    if session is None:
        return 1
    log("I", 343, f"Using method {flags.get('method_name') or 'forward'}")
    if profile.failure == "crash":
        return 139  # the shell reports SIGSEGV as 128 + 11
    load_ms = (time.perf_counter() - session.started) * 1000.0
    if current:
        log("I", 470, f"Model loaded in {load_ms:f} ms.")
    else:
        log("I", 470, "Method loaded.")

    values = _input_values(session.program, input_bytes, log)
    n = int(flags.get("num_executions", 1))
    outputs = _execute(session.program, values, n, current, log)
    _write_outputs(outputs, str(flags.get("output_file", "")), shell, log)
    mode = str(flags.get("print_output", "summary"))
    if mode != "none":
        label = "OutputX" if current else "Output"
        for i, value in enumerate(outputs):
            sizes = ", ".join(str(d) for d in value.shape)
            out.append(f"{label} {i}: tensor(sizes=[{sizes}], [{_summary(value)}])")
    return 0


def _read_inputs(inputs_flag: str, shell: Shell, log: _Log) -> list[bytes]:
    """The bytes of each ``--inputs`` file, in order (none: the runner's default inputs)."""
    input_files = [p for p in inputs_flag.split(",") if p] if inputs_flag else []
    input_bytes: list[bytes] = []
    if input_files:
        log("I", 260, "Loading inputs from input file(s).")
        for name in input_files:
            try:
                input_bytes.append(shell.sandbox.host_path(name, shell.cwd).read_bytes())
            except OSError:
                log("E", 150, f"Failed to open input file: {name}")
                raise _Fail(134, "Could not load inputs: 0x22") from None
    return input_bytes


def _model_file(model_path: str, shell: Shell, log: _Log) -> Path:
    """The host path of the pushed program; the runner's abort when it is not there."""
    try:
        host_model = shell.sandbox.host_path(model_path, shell.cwd)
        if not host_model.is_file():
            raise OSError(2, "No such file or directory")
    except OSError:
        log("E", 0, f"open({model_path}) failed: No such file or directory")
        raise _Fail(134, "FileDataLoader::from() failed: 0x22") from None
    return host_model


def _import_executorch() -> None:
    """Import executorch ahead of the load timing.

    Importing executorch takes seconds the first time in the simulator's process; a real
    runner has it linked in, so "Model loaded in" must time the program and method only.
    """
    from sinet_deploy.runtimes.executorch_rt import quiet_executorch_import

    with quiet_executorch_import(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import executorch.runtime  # noqa: F401
        except ImportError:
            raise _Fail(1, "SIMULATOR: executorch is not installed on the host") from None


@dataclass(frozen=True)
class _Loaded:
    """The loaded program and when its load started (``time.perf_counter()``)."""

    program: ExecuTorchSession
    started: float


def _load_program(host_model: Path, model_path: str, pool: int, log: _Log) -> _Loaded | None:
    """Load the program with ``pool`` threads; ``None`` (exit 1) when it does not parse."""
    from sinet_deploy.core.errors import SinetDeployError
    from sinet_deploy.runtimes.executorch_rt import ExecuTorchSession

    t0 = time.perf_counter()
    try:
        session = ExecuTorchSession(host_model, None, threads=pool)
    except SinetDeployError:
        log("E", 330, f"Failed to parse model file {model_path}")
        return None
    log("I", 333, f"Model file {model_path} is loaded.")
    return _Loaded(session, t0)


def _input_values(session: ExecuTorchSession, input_bytes: list[bytes], log: _Log) -> list[Any]:
    """One array per program input: from its ``--inputs`` file, else all ones (the runner's
    default)."""
    import numpy as np

    values: list[np.ndarray] = []
    for k, spec in enumerate(session.contract.inputs):
        dtype = np.dtype(spec.dtype)
        if k < len(input_bytes):
            raw = input_bytes[k]
            want = int(np.prod(spec.shape)) * dtype.itemsize
            if len(raw) != want:
                log("E", 0, f"Input {k} has {len(raw)} bytes, expected {want}")
                raise _Fail(134, "Could not prepare inputs: 0x12")
            values.append(np.frombuffer(raw, dtype=dtype).reshape(spec.shape).copy())
        else:
            values.append(np.ones(spec.shape, dtype=dtype))  # the runner's default: all ones
    return values


def _execute(
    session: ExecuTorchSession, values: list[Any], n: int, current: bool, log: _Log
) -> list[Any]:
    """``n`` executions in a row, each timed (per-iteration lines on the current runner)."""
    total_ms = 0.0
    outputs: list[Any] = []
    for i in range(n):
        t = time.perf_counter()
        outputs = session.run_native(values)
        elapsed = (time.perf_counter() - t) * 1000.0
        total_ms += elapsed
        if current:
            log("I", 640, f"Iteration {i + 1} of {n}: {elapsed:f} ms")
    log("I", 650, f"Model executed successfully {n} time(s) in {total_ms:f} ms.")
    log("I", 660, f"{len(outputs)} outputs: ")
    return outputs


def _write_outputs(outputs: list[Any], base: str, shell: Shell, log: _Log) -> None:
    """``--output_file BASE``: each output's bytes to ``BASE-<i>.bin``."""
    import numpy as np

    if not base:
        return
    for i, value in enumerate(outputs):
        name = f"{base}-{i}.bin"
        log("I", 675, f"Writing output to file: {name}")
        try:
            host_out = shell.sandbox.check_writable(name, shell.cwd)
            data = np.ascontiguousarray(value).tobytes()
            if len(data) > shell.sandbox.free_bytes():
                raise OSError(28, "No space left on device")
            host_out.write_bytes(data)
        except OSError:
            raise _Fail(134, f"Failed to open output file: {name}") from None
