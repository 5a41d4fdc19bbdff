"""The simulated device's stand-in for LiteRT's ``benchmark_model``.

The file ``device simulate`` hands out is a 64-byte ELF header claiming the profile's ABI
(AArch64 for arm64 profiles) followed by a marker and a note. It is **not** a program: real
phones would refuse it, and the simulated shell runs it by calling :func:`run_standin`, which
loads the pushed ``.tflite`` with LiteRT's Python interpreter on the host CPU and prints what
the real tool prints for the profile's vintage (``current``, ``tf2.4`` or ``legacy``). The
timings are real measurements of this host, never a phone's; every report built from them is
labelled SIMULATED.

Honoured flags: ``--graph --num_threads --use_xnnpack --use_gpu --use_nnapi --num_runs
--warmup_runs --min_secs --warmup_min_secs --max_secs --input_layer --input_layer_shape
--input_layer_value_files --output_filepath --enable_op_profiling --require_full_delegation
--xnnpack_force_fp16`` (run through LiteRT's ``CompiledModel``, which passes XNNPACK the flag).
Unknown flags get the real tool's ``Unconsumed cmdline flags`` warning and are ignored.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sinet_deploy.core.errors import SinetDeployError
from sinet_deploy.device.elf import ELF_HEADER_SIZE, elf_header_for_abi

if TYPE_CHECKING:
    import numpy as np

    from sinet_deploy.device.sim.shell import Shell

MARKER = b"SINET-DEPLOY-SIMULATED-BENCHMARK-MODEL/1"

NOTE = (
    b"\nThis file is the sinet-deploy stand-in for LiteRT's benchmark_model. It is not a\n"
    b"program: only `sinet-deploy device simulate` runs it (with LiteRT on the host CPU).\n"
    b"Its timings are the host's, reported as SIMULATED. A real phone needs the real\n"
    b"benchmark_model from LiteRT's releases.\n"
)

_STRING_FLAGS = {
    "graph",
    "input_layer",
    "input_layer_shape",
    "input_layer_value_files",
    "input_layer_value_range",
    "output_filepath",
    "benchmark_name",
    "output_prefix",
    "profiling_output_csv_file",
    "gpu_backend",
    "nnapi_accelerator_name",
    "nnapi_execution_preference",
}
_INT_FLAGS = {"num_threads", "num_runs", "warmup_runs", "max_profiling_buffer_entries"}
_FLOAT_FLAGS = {"min_secs", "warmup_min_secs", "max_secs", "run_delay"}
_BOOL_FLAGS = {
    "use_xnnpack",
    "xnnpack_force_fp16",
    "use_gpu",
    "use_nnapi",
    "enable_op_profiling",
    "require_full_delegation",
    "verbose",
    "allow_fp16",
    "use_caching",
    "gpu_precision_loss_allowed",
    "report_peak_memory_footprint",
}

#: Flags each vintage does not know yet (they land in "Unconsumed cmdline flags").
_MISSING = {
    "current": set(),
    "tf2.4": {"output_filepath", "xnnpack_force_fp16"},
    "legacy": {
        "output_filepath",
        "xnnpack_force_fp16",
        "input_layer_value_files",
        "use_xnnpack",
        "report_peak_memory_footprint",
    },
}


def write_standin(path: Path, abi: str) -> Path:
    """Write the stand-in file: an ELF header for ``abi``, the marker and a note; mode 0755."""
    path = Path(path)
    path.write_bytes(elf_header_for_abi(abi) + MARKER + NOTE)
    path.chmod(0o755)
    return path


def is_standin(head: bytes) -> bool:
    """Whether the first bytes of a file are the stand-in (marker right after the ELF header)."""
    return head[ELF_HEADER_SIZE : ELF_HEADER_SIZE + len(MARKER)] == MARKER


class _Abort(Exception):
    """TFLITE_LOG(FATAL): the real tool aborts (SIGABRT, exit 134)."""


@dataclass
class _Log:
    prefix: bool
    lines: list[str]

    def info(self, text: str) -> None:
        self.lines.append(("INFO: " if self.prefix else "") + text)

    def warn(self, text: str) -> None:
        self.lines.append(("WARNING: " if self.prefix else "") + text)

    def error(self, text: str) -> None:
        self.lines.append(("ERROR: " if self.prefix else "") + text)

    def text(self) -> bytes:
        return ("\n".join(self.lines) + "\n").encode()


def _parse_flags(argv: list[str], vintage: str) -> tuple[dict[str, Any], list[str]]:
    flags: dict[str, Any] = {}
    unconsumed: list[str] = []
    missing = _MISSING[vintage]
    for arg in argv:
        if not arg.startswith("--") or "=" not in arg:
            unconsumed.append(arg)
            continue
        name, value = arg[2:].split("=", 1)
        if name in missing:
            unconsumed.append(arg)
        elif name in _STRING_FLAGS:
            flags[name] = value
        elif name in _INT_FLAGS:
            flags[name] = int(value)
        elif name in _FLOAT_FLAGS:
            flags[name] = float(value)
        elif name in _BOOL_FLAGS:
            if value.lower() not in ("true", "false", "1", "0"):
                raise ValueError(arg)
            flags[name] = value.lower() in ("true", "1")
        else:
            unconsumed.append(arg)
    return flags, unconsumed


def _fmt_g(value: float) -> str:
    """``std::ostream << double`` (6 significant digits, %g)."""
    return f"{value:g}"


def _stat_line(samples: list[int], percentiles: bool) -> str:
    """tflite::benchmark Stat::OutputToStream, with the percentile suffix of current builds."""
    n = len(samples)
    if n == 0:
        return "count=0"
    if min(samples) == max(samples):
        line = f"count={n} curr={samples[-1]}" + ("(all same)" if n > 1 else "")
    else:
        avg = sum(samples) / n
        std = int(math.sqrt(max(0.0, sum(s * s for s in samples) / n - avg * avg)))
        line = (
            f"count={n} first={samples[0]} curr={samples[-1]} min={min(samples)} "
            f"max={max(samples)} avg={_fmt_g(avg)} std={std}"
        )
    if percentiles:
        ordered = sorted(samples)

        def pct(p: float) -> int:
            return ordered[min(n - 1, int(p * n))]

        line += f" p5={pct(0.05)} median={pct(0.5)} p95={pct(0.95)}"
    return line


def _delegate_coverage(ops: list[dict[str, Any]]) -> tuple[int, int, int, int]:
    """(replaced nodes, original nodes, delegate kernels, partitions) from LiteRT's op list.

    A DELEGATE node's inputs are the tensors entering its partition; walking back from its
    outputs through producers until those tensors finds the original nodes it replaced.
    """
    originals = [op for op in ops if op["op_name"] != "DELEGATE"]
    delegates = [op for op in ops if op["op_name"] == "DELEGATE"]
    producer = {int(t): op["index"] for op in originals for t in op["outputs"]}
    by_index = {op["index"]: op for op in originals}
    replaced: set[int] = set()
    for d in delegates:
        boundary = {int(t) for t in d["inputs"]}
        stack = [int(t) for t in d["outputs"]]
        while stack:
            t = stack.pop()
            node = producer.get(t)
            if node is None or node in replaced:
                continue
            replaced.add(node)
            stack.extend(int(x) for x in by_index[node]["inputs"] if int(x) not in boundary)
    runs, inside = 0, True
    for op in originals:
        if op["index"] not in replaced and inside:
            runs += 1
        inside = op["index"] in replaced
    return len(replaced), len(originals), len(delegates), len(delegates) + runs


def _random_input(dtype: Any, shape: Any, rng: np.random.Generator) -> np.ndarray:
    import numpy as np

    if dtype == np.uint8:
        return rng.integers(0, 255, size=shape, dtype=np.uint8)
    if dtype == np.int8:
        return rng.integers(-127, 128, size=shape, dtype=np.int8)
    if np.issubdtype(dtype, np.integer):
        return rng.integers(0, 100, size=shape).astype(dtype)
    return rng.uniform(-0.5, 0.5, size=shape).astype(dtype)


def run_standin(argv: list[str], shell: Shell) -> tuple[bytes, bytes, int]:
    """Run the stand-in as ``argv`` inside the simulated shell; (stdout, stderr, exit code)."""
    profile = shell.profile
    vintage = profile.bench_format
    log = _Log(prefix=vintage == "current", lines=[])
    try:
        out, rc = _run(argv[1:], shell, log)
    except _Abort as exc:
        log.error(str(exc))
        return b"", log.text() + b"Aborted\n", 134
    except Exception as exc:  # a bug of the simulator, reported as such (never as a phone's)
        log.error(f"SIMULATOR internal error in the stand-in benchmark_model: {exc!r}")
        return b"", log.text(), 1
    # Current builds log to stderr; the 2019 tool wrote everything to stdout.
    if vintage == "legacy":
        return log.text() + out, b"", rc
    return out, log.text(), rc


class _Failed(Exception):
    """The tool logs these errors, then "Benchmarking failed.", and exits 1."""

    def __init__(self, *errors: str) -> None:
        super().__init__(*errors)
        self.errors = errors


@dataclass(frozen=True)
class _Settings:
    """The run's parameters: the flags given, else each vintage's defaults."""

    vintage: str
    graph: str
    num_threads: int
    num_runs: int
    warmup_runs: int
    min_secs: float
    warmup_min_secs: float
    max_secs: float
    use_gpu: bool
    use_nnapi: bool
    use_xnnpack: bool
    explicit_xnnpack: bool
    force_fp16: bool
    require_full_delegation: bool
    op_profiling: bool
    output_filepath: str | None


def _settings(flags: dict[str, Any], vintage: str) -> _Settings:
    return _Settings(
        vintage=vintage,
        graph=flags.get("graph", ""),
        num_threads=flags.get("num_threads", 1 if vintage != "current" else -1),
        num_runs=flags.get("num_runs", 50),
        warmup_runs=flags.get("warmup_runs", 1),
        min_secs=flags.get("min_secs", 1.0),
        warmup_min_secs=flags.get("warmup_min_secs", 0.5),
        max_secs=flags.get("max_secs", 150.0),
        use_gpu=flags.get("use_gpu", False),
        use_nnapi=flags.get("use_nnapi", False),
        # Current builds apply XNNPACK by default; TF 2.4-era builds did so only when asked.
        use_xnnpack=flags.get("use_xnnpack", vintage == "current"),
        explicit_xnnpack=flags.get("use_xnnpack", False),
        force_fp16=bool(flags.get("xnnpack_force_fp16")),
        require_full_delegation=bool(flags.get("require_full_delegation")),
        op_profiling=bool(flags.get("enable_op_profiling")),
        output_filepath=flags.get("output_filepath"),
    )


@dataclass(frozen=True)
class _InputLayers:
    """``--input_layer``, ``--input_layer_shape`` and ``--input_layer_value_files``, split."""

    names: list[str]
    shapes: list[str]
    files: dict[str, str]


def _run(args: list[str], shell: Shell, log: _Log) -> tuple[bytes, int]:
    profile = shell.profile
    try:
        flags, unconsumed = _parse_flags(args, profile.bench_format)
    except ValueError as exc:
        log.error(f"Failed to parse the flag: {exc}")
        return b"", 1
    log.info("STARTING!")
    if unconsumed:
        log.warn("Unconsumed cmdline flags: " + " ".join(unconsumed))
    if profile.failure == "garbage":
        junk = bytes((i * 37 + 11) % 256 for i in range(300))
        return junk + b"\ncount=?? Inference timings in us: Init: n/a\n", 0
    try:
        return _benchmark(flags, shell, log)
    except _Failed as failed:
        for error in failed.errors:
            log.error(error)
        log.error("Benchmarking failed.")
        return b"", 1


def _benchmark(flags: dict[str, Any], shell: Shell, log: _Log) -> tuple[bytes, int]:
    """The tool's run after its flags are read: load, delegate, feed, time, write the output."""
    s = _settings(flags, shell.profile.bench_format)
    _log_parameters(flags, s, log)
    layers = _input_layers(flags)
    if shell.profile.failure == "crash":
        log.info(f"Loaded model {s.graph}")
        return b"", 139  # the shell reports SIGSEGV as 128 + 11
    model_bytes = _read_model(shell, s.graph)
    t0 = time.perf_counter()
    interp = _interpreter(model_bytes, s, log)
    _resize_inputs(interp, layers, log)
    interp.allocate_tensors()
    if s.force_fp16 and s.use_xnnpack:
        interp = _ForceFp16Interpreter(interp, model_bytes, s)
    init_us = int((time.perf_counter() - t0) * 1e6)
    if s.use_xnnpack:
        _log_xnnpack(interp, s, log)
    _log_unsupported_delegates(s, log)
    _set_inputs(interp, layers, shell)
    _log_session(len(model_bytes), init_us, s.vintage, log)
    _time_runs(interp, s, init_us, log)
    if s.op_profiling:
        # LiteRT's Python interpreter has no op profiler, so the stand-in cannot print the
        # real per-operator tables; it says so instead of inventing numbers.
        log.info(
            "Operator-wise profiling is not available in the SIMULATED benchmark_model "
            "(LiteRT's Python API has no op profiler)."
        )
    if s.output_filepath:
        _write_output(interp, s.output_filepath, shell, log)
    return b"", 0


class _ForceFp16Interpreter:
    """The interpreter's face (details, delegation) with invokes run by LiteRT's CompiledModel
    under XNNPACK's force-fp16 flag, which the Python ``Interpreter`` cannot set."""

    def __init__(self, interp: Any, model_bytes: bytes, s: _Settings) -> None:
        from sinet_deploy.runtimes.litert_rt import ForceFp16Runner

        self._interp = interp
        threads = s.num_threads if s.num_threads > 0 else 1
        try:
            self._runner = ForceFp16Runner(Path(s.graph), threads, model_bytes)
        except SinetDeployError as exc:
            raise _Failed(f"Failed to apply XNNPACK delegate with FP16: {exc}") from None
        self._in = {d["index"]: j for j, d in enumerate(interp.get_input_details())}
        self._out = {d["index"]: j for j, d in enumerate(interp.get_output_details())}
        self._feed: list[Any] = [None] * len(self._in)
        self._got: list[Any] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._interp, name)

    def set_tensor(self, index: int, value: Any) -> None:
        self._feed[self._in[index]] = value

    def invoke(self) -> None:
        self._got = self._runner.run(self._feed)

    def get_tensor(self, index: int) -> Any:
        return self._got[self._out[index]]


def _log_parameters(flags: dict[str, Any], s: _Settings, log: _Log) -> None:
    """The parameter lines: the flags given (legacy builds list every one, with defaults)."""
    defaults = {
        "num_runs": 50,
        "min_secs": 1,
        "warmup_runs": 1,
        "warmup_min_secs": 0.5,
        "num_threads": 1,
    }
    for label, key in (
        ("Min num runs", "num_runs"),
        ("Min runs duration (seconds)", "min_secs"),
        ("Num threads", "num_threads"),
        ("Min warmup runs", "warmup_runs"),
        ("Min warmup runs duration (seconds)", "warmup_min_secs"),
    ):
        if key in flags or s.vintage == "legacy":
            value = flags.get(key, defaults[key])
            log.info(f"{label}: [{_fmt_g(value) if isinstance(value, float) else value}]")
    log.info(f"Graph: [{s.graph}]")
    if not s.graph:
        raise _Failed("Please specify the name of your TF Lite input file with --graph")


def _input_layers(flags: dict[str, Any]) -> _InputLayers:
    """The input flags, checked the way benchmark_tflite_model.cc checks them."""
    layer_flag = flags.get("input_layer", "")
    shape_flag = flags.get("input_layer_shape", "")
    names = [n for n in layer_flag.split(",") if n]
    shapes = [s for s in shape_flag.split(":") if s]
    if len(names) != len(shapes):
        raise _Failed(
            f"The number of items in --input_layer_shape ({shape_flag}, "
            f"with {len(shapes)} items) must match the number of items in --input_layer "
            f"({layer_flag}, with {len(names)} items). For example "
            "--input_layer=input1,input2 --input_layer_shape=1,224,224,4:1,20"
        )
    files: dict[str, str] = {}
    for item in [v for v in flags.get("input_layer_value_files", "").split(",") if v]:
        # A name containing ':' is written with '::'.
        parts = item.replace("::", "\0").split(":")
        if len(parts) != 2:
            raise _Failed(f"Wrong input value file item specified: {item}")
        name = parts[0].replace("\0", ":")
        if name not in names:
            raise _Abort(
                f"Cannot find the corresponding input_layer name({name}) in "
                f"--input_layer as {layer_flag}"
            )
        files[name] = parts[1].replace("\0", ":")
    return _InputLayers(names, shapes, files)


def _read_model(shell: Shell, graph: str) -> bytes:
    try:
        return shell.sandbox.host_path(graph, shell.cwd).read_bytes()
    except OSError:
        raise _Failed(f"Could not open '{graph}'.", f"Failed to mmap model {graph}") from None


def _interpreter(model_bytes: bytes, s: _Settings, log: _Log) -> Any:
    """LiteRT's interpreter for the model, with XNNPACK applied or not, and the load lines."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    try:
        interp = Interpreter(
            model_content=model_bytes,
            num_threads=s.num_threads if s.num_threads > 0 else None,
            experimental_op_resolver_type=(
                OpResolverType.AUTO
                if s.use_xnnpack
                else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
            ),
        )
    except (ValueError, RuntimeError) as exc:
        raise _Failed(
            f"The model is not a valid Flatbuffer buffer ({str(exc).splitlines()[0]})",
            f"Failed to mmap model {s.graph}",
        ) from None
    if s.vintage != "legacy":
        log.info(f"#threads used for CPU inference: [{s.num_threads}]")
    if s.explicit_xnnpack:
        log.info("Use xnnpack: [1]")
    log.info(f"Loaded model {s.graph}")
    if s.vintage == "legacy":
        log.info("resolved reporter")
    return interp


def _resize_inputs(interp: Any, layers: _InputLayers, log: _Log) -> None:
    """Check the named inputs against the model and resize those given another shape."""
    inputs = interp.get_input_details()
    if layers.names and len(layers.names) != len(inputs):
        raise _Abort(f"Inputs mismatch: Model inputs #:{len(layers.names)} expected: {len(inputs)}")
    for j, name in enumerate(layers.names):
        detail = inputs[j]
        shape = [int(x) for x in layers.shapes[j].split(",")]
        if name != detail["name"]:
            log.warn(
                f"Tensor # {detail['index']} is named {detail['name']} but flags call it {name}"
            )
        if len(shape) != len(detail["shape"]):
            raise _Failed(
                f"Input tensor #{detail['index']} should have {len(detail['shape'])} dimensions!"
            )
        if list(detail["shape"]) != shape:
            interp.resize_tensor_input(detail["index"], shape)


def _log_xnnpack(interp: Any, s: _Settings, log: _Log) -> None:
    """What the XNNPACK delegate took; with ``--use_xnnpack=true``, how much of the graph."""
    replaced, total, kernels, partitions = _delegate_coverage(interp._get_ops_details())
    log.info("Created TensorFlow Lite XNNPACK delegate for CPU.")
    if s.explicit_xnnpack:
        log.info("XNNPACK delegate created.")
    if kernels:
        log.info(
            f"Replacing {replaced} out of {total} node(s) with delegate "
            f"(TfLiteXNNPackDelegate) node, yielding {partitions} partitions for the "
            "whole graph."
        )
    if not s.explicit_xnnpack:
        return
    full = kernels == 1 and replaced == total
    if s.require_full_delegation and not full:
        raise _Failed("Disallowed CPU fallback detected.")
    if full:
        log.info(
            "Explicitly applied XNNPACK delegate, and the model graph will be "
            "completely executed by the delegate."
        )
    elif kernels:
        log.info(
            "Explicitly applied XNNPACK delegate, and the model graph will be "
            f"partially executed by the delegate w/ {kernels} delegate kernels."
        )
    else:
        log.info(
            "Though XNNPACK delegate is explicitly applied, the model graph will "
            "not be executed by the delegate."
        )


def _log_unsupported_delegates(s: _Settings, log: _Log) -> None:
    # This host has neither a phone GPU nor NNAPI: say so the way the real tool does on a
    # platform without them, and run on the CPU (the runner reports "not applied").
    if s.use_gpu:
        log.warn("GPU acceleration is unsupported on this platform.")
    if s.use_nnapi:
        log.warn("NNAPI acceleration is unsupported on this platform.")
    if (s.use_gpu or s.use_nnapi) and s.require_full_delegation:
        raise _Failed("Disallowed CPU fallback detected.")


def _set_inputs(interp: Any, layers: _InputLayers, shell: Shell) -> None:
    """Each input from its ``--input_layer_value_files`` file, else random values."""
    import numpy as np

    rng = np.random.default_rng(0)
    for j, detail in enumerate(interp.get_input_details()):
        name = layers.names[j] if j < len(layers.names) else detail["name"]
        if name in layers.files:
            value = _read_input_file(layers.files[name], detail, shell)
        else:
            value = _random_input(detail["dtype"], detail["shape"], rng)
        interp.set_tensor(detail["index"], value)


def _read_input_file(path: str, detail: dict[str, Any], shell: Shell) -> np.ndarray:
    import numpy as np

    try:
        raw = shell.sandbox.host_path(path, shell.cwd).read_bytes()
    except OSError:
        raise _Abort(f"Failed to read the input_layer_value_file:{path}") from None
    expected = int(np.prod(detail["shape"])) * np.dtype(detail["dtype"]).itemsize
    if len(raw) != expected:
        raise _Abort(f"The size of {path} is {len(raw)} bytes. It should be {expected} bytes.")
    return np.frombuffer(raw, dtype=detail["dtype"]).reshape(detail["shape"])


def _log_session(model_size: int, init_us: int, vintage: str, log: _Log) -> None:
    if vintage != "legacy":
        log.info(f"The input model file size (MB): {_fmt_g(model_size / 1e6)}")
    log.info(
        f"Initialized session in {_fmt_g(init_us / 1000)}ms" + ("." if vintage != "legacy" else "")
    )


def _invoke_until(interp: Any, min_runs: int, min_s: float, max_secs: float) -> list[int]:
    """Invoke until ``min_runs`` runs and ``min_s`` seconds (or ``max_secs``); each run's us."""
    samples: list[int] = []
    start = time.perf_counter()
    while True:
        elapsed = time.perf_counter() - start
        if (len(samples) >= min_runs and elapsed >= min_s) or elapsed > max_secs:
            break
        t = time.perf_counter()
        interp.invoke()
        samples.append(max(1, int((time.perf_counter() - t) * 1e6)))
    return samples


def _time_runs(interp: Any, s: _Settings, init_us: int, log: _Log) -> None:
    """The warm-up and timed loops, each with its statistics line, then the summary line."""
    tail = " but terminate if exceeding 150 seconds." if s.vintage != "legacy" else ""
    pct = s.vintage == "current"
    log.info(
        f"Running benchmark for at least {s.warmup_runs} iterations and at least "
        f"{_fmt_g(s.warmup_min_secs)} seconds{tail}"
    )
    warm = _invoke_until(interp, s.warmup_runs, s.warmup_min_secs, s.max_secs)
    log.info(_stat_line(warm, pct))
    log.lines.append("")
    log.info(
        f"Running benchmark for at least {s.num_runs} iterations and at least "
        f"{_fmt_g(s.min_secs)} seconds{tail}"
    )
    runs = _invoke_until(interp, s.num_runs, s.min_secs, s.max_secs)
    log.info(_stat_line(runs, pct))
    log.lines.append("")
    log.info(_timings_line(warm, runs, init_us, s.vintage))


def _timings_line(warm: list[int], runs: list[int], init_us: int, vintage: str) -> str:
    def avg(xs: list[int]) -> float:
        return sum(xs) / len(xs) if xs else 0.0

    if vintage == "legacy":
        return (
            f"Average inference timings in us: Warmup: {_fmt_g(avg(warm))}, "
            f"Init: {init_us}, no stats: {_fmt_g(avg(runs))}"
        )
    first = warm[0] if warm else (runs[0] if runs else 0)
    return (
        f"Inference timings in us: Init: {init_us}, First inference: {first}, "
        f"Warmup (avg): {_fmt_g(avg(warm))}, Inference (avg): {_fmt_g(avg(runs))}"
    )


def _write_output(interp: Any, out_path: str, shell: Shell, log: _Log) -> None:
    """``--output_filepath``: every output tensor's bytes, in order; a failure is logged only."""
    import numpy as np

    try:
        host_out = shell.sandbox.check_writable(out_path, shell.cwd)
        data = b"".join(
            np.ascontiguousarray(interp.get_tensor(d["index"])).tobytes()
            for d in interp.get_output_details()
        )
        if len(data) > shell.sandbox.free_bytes():
            raise OSError(28, "No space left on device")
        host_out.write_bytes(data)
    except OSError:
        log.error(f"Failed to write the output file {out_path}")
