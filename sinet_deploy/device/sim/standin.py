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
--input_layer_value_files --output_filepath --enable_op_profiling --require_full_delegation``.
Unknown flags get the real tool's ``Unconsumed cmdline flags`` warning and are ignored.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    "tf2.4": {"output_filepath"},
    "legacy": {
        "output_filepath",
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


def _run(args: list[str], shell: Shell, log: _Log) -> tuple[bytes, int]:
    import numpy as np

    profile = shell.profile
    vintage = profile.bench_format
    try:
        flags, unconsumed = _parse_flags(args, vintage)
    except ValueError as exc:
        log.error(f"Failed to parse the flag: {exc}")
        return b"", 1
    log.info("STARTING!")
    if unconsumed:
        log.warn("Unconsumed cmdline flags: " + " ".join(unconsumed))

    if profile.failure == "garbage":
        junk = bytes((i * 37 + 11) % 256 for i in range(300))
        return junk + b"\ncount=?? Inference timings in us: Init: n/a\n", 0

    num_threads = flags.get("num_threads", 1 if vintage != "current" else -1)
    num_runs = flags.get("num_runs", 50)
    warmup_runs = flags.get("warmup_runs", 1)
    min_secs = flags.get("min_secs", 1.0)
    warmup_min_secs = flags.get("warmup_min_secs", 0.5)
    max_secs = flags.get("max_secs", 150.0)
    graph = flags.get("graph", "")
    for label, key in (
        ("Min num runs", "num_runs"),
        ("Min runs duration (seconds)", "min_secs"),
        ("Num threads", "num_threads"),
        ("Min warmup runs", "warmup_runs"),
        ("Min warmup runs duration (seconds)", "warmup_min_secs"),
    ):
        if key in flags or vintage == "legacy":
            value = flags.get(
                key,
                {
                    "num_runs": 50,
                    "min_secs": 1,
                    "warmup_runs": 1,
                    "warmup_min_secs": 0.5,
                    "num_threads": 1,
                }[key],
            )
            log.info(f"{label}: [{_fmt_g(value) if isinstance(value, float) else value}]")
    log.info(f"Graph: [{graph}]")
    if not graph:
        log.error("Please specify the name of your TF Lite input file with --graph")
        log.error("Benchmarking failed.")
        return b"", 1

    names = [n for n in flags.get("input_layer", "").split(",") if n]
    shapes = [s for s in flags.get("input_layer_shape", "").split(":") if s]
    if len(names) != len(shapes):
        log.error(
            f"The number of items in --input_layer_shape ({flags.get('input_layer_shape', '')}, "
            f"with {len(shapes)} items) must match the number of items in --input_layer "
            f"({flags.get('input_layer', '')}, with {len(names)} items). For example "
            "--input_layer=input1,input2 --input_layer_shape=1,224,224,4:1,20"
        )
        log.error("Benchmarking failed.")
        return b"", 1
    files: dict[str, str] = {}
    for item in [v for v in flags.get("input_layer_value_files", "").split(",") if v]:
        parts = item.replace("::", "\0").split(":")
        if len(parts) != 2:
            log.error(f"Wrong input value file item specified: {item}")
            log.error("Benchmarking failed.")
            return b"", 1
        name = parts[0].replace("\0", ":")
        if name not in names:
            raise _Abort(
                f"Cannot find the corresponding input_layer name({name}) in "
                f"--input_layer as {flags.get('input_layer', '')}"
            )
        files[name] = parts[1].replace("\0", ":")

    if profile.failure == "crash":
        log.info(f"Loaded model {graph}")
        return b"", 139  # the shell reports SIGSEGV as 128 + 11

    try:
        host_graph = shell.sandbox.host_path(graph, shell.cwd)
        model_bytes = host_graph.read_bytes()
    except OSError:
        log.error(f"Could not open '{graph}'.")
        log.error(f"Failed to mmap model {graph}")
        log.error("Benchmarking failed.")
        return b"", 1

    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    use_gpu = flags.get("use_gpu", False)
    use_nnapi = flags.get("use_nnapi", False)
    # Current builds apply XNNPACK by default; TF 2.4-era builds did so only when asked.
    xnnpack_default = vintage == "current"
    use_xnnpack = flags.get("use_xnnpack", xnnpack_default)
    explicit_xnnpack = flags.get("use_xnnpack", False)
    t0 = time.perf_counter()
    try:
        interp = Interpreter(
            model_content=model_bytes,
            num_threads=num_threads if num_threads > 0 else None,
            experimental_op_resolver_type=(
                OpResolverType.AUTO
                if use_xnnpack
                else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
            ),
        )
    except (ValueError, RuntimeError) as exc:
        log.error(f"The model is not a valid Flatbuffer buffer ({str(exc).splitlines()[0]})")
        log.error(f"Failed to mmap model {graph}")
        log.error("Benchmarking failed.")
        return b"", 1
    if vintage != "legacy":
        log.info(f"#threads used for CPU inference: [{num_threads}]")
    if explicit_xnnpack:
        log.info("Use xnnpack: [1]")
    log.info(f"Loaded model {graph}")
    if vintage == "legacy":
        log.info("resolved reporter")

    inputs = interp.get_input_details()
    if names and len(names) != len(inputs):
        raise _Abort(f"Inputs mismatch: Model inputs #:{len(names)} expected: {len(inputs)}")
    for j, name in enumerate(names):
        shape = [int(x) for x in shapes[j].split(",")]
        if name != inputs[j]["name"]:
            log.warn(
                f"Tensor # {inputs[j]['index']} is named {inputs[j]['name']} but flags "
                f"call it {name}"
            )
        if len(shape) != len(inputs[j]["shape"]):
            log.error(
                f"Input tensor #{inputs[j]['index']} should have "
                f"{len(inputs[j]['shape'])} dimensions!"
            )
            log.error("Benchmarking failed.")
            return b"", 1
        if list(inputs[j]["shape"]) != shape:
            interp.resize_tensor_input(inputs[j]["index"], shape)
    interp.allocate_tensors()
    init_us = int((time.perf_counter() - t0) * 1e6)

    if use_xnnpack:
        replaced, total, kernels, partitions = _delegate_coverage(interp._get_ops_details())
        log.info("Created TensorFlow Lite XNNPACK delegate for CPU.")
        if explicit_xnnpack:
            log.info("XNNPACK delegate created.")
        if kernels:
            log.info(
                f"Replacing {replaced} out of {total} node(s) with delegate "
                f"(TfLiteXNNPackDelegate) node, yielding {partitions} partitions for the "
                "whole graph."
            )
        if explicit_xnnpack:
            full = kernels == 1 and replaced == total
            if flags.get("require_full_delegation") and not full:
                log.error("Disallowed CPU fallback detected.")
                log.error("Benchmarking failed.")
                return b"", 1
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
    # This host has neither a phone GPU nor NNAPI: say so the way the real tool does on a
    # platform without them, and run on the CPU (the runner reports "not applied").
    if use_gpu:
        log.warn("GPU acceleration is unsupported on this platform.")
    if use_nnapi:
        log.warn("NNAPI acceleration is unsupported on this platform.")
    if (use_gpu or use_nnapi) and flags.get("require_full_delegation"):
        log.error("Disallowed CPU fallback detected.")
        log.error("Benchmarking failed.")
        return b"", 1

    rng = np.random.default_rng(0)
    inputs = interp.get_input_details()
    for j, detail in enumerate(inputs):
        name = names[j] if j < len(names) else detail["name"]
        if name in files:
            try:
                raw = shell.sandbox.host_path(files[name], shell.cwd).read_bytes()
            except OSError:
                raise _Abort(f"Failed to read the input_layer_value_file:{files[name]}") from None
            expected = int(np.prod(detail["shape"])) * np.dtype(detail["dtype"]).itemsize
            if len(raw) != expected:
                raise _Abort(
                    f"The size of {files[name]} is {len(raw)} bytes. It should be {expected} bytes."
                )
            value = np.frombuffer(raw, dtype=detail["dtype"]).reshape(detail["shape"])
        else:
            value = _random_input(detail["dtype"], detail["shape"], rng)
        interp.set_tensor(detail["index"], value)

    size_mb = len(model_bytes) / 1e6
    if vintage != "legacy":
        log.info(f"The input model file size (MB): {_fmt_g(size_mb)}")
    log.info(
        f"Initialized session in {_fmt_g(init_us / 1000)}ms" + ("." if vintage != "legacy" else "")
    )

    def loop(min_runs: int, min_s: float) -> list[int]:
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

    tail = " but terminate if exceeding 150 seconds." if vintage != "legacy" else ""
    pct = vintage == "current"
    log.info(
        f"Running benchmark for at least {warmup_runs} iterations and at least "
        f"{_fmt_g(warmup_min_secs)} seconds{tail}"
    )
    warm = loop(warmup_runs, warmup_min_secs)
    log.info(_stat_line(warm, pct))
    log.lines.append("")
    log.info(
        f"Running benchmark for at least {num_runs} iterations and at least "
        f"{_fmt_g(min_secs)} seconds{tail}"
    )
    runs = loop(num_runs, min_secs)
    log.info(_stat_line(runs, pct))
    log.lines.append("")

    def avg(xs: list[int]) -> float:
        return sum(xs) / len(xs) if xs else 0.0

    if vintage == "legacy":
        log.info(
            f"Average inference timings in us: Warmup: {_fmt_g(avg(warm))}, "
            f"Init: {init_us}, no stats: {_fmt_g(avg(runs))}"
        )
    else:
        first = warm[0] if warm else (runs[0] if runs else 0)
        log.info(
            f"Inference timings in us: Init: {init_us}, First inference: {first}, "
            f"Warmup (avg): {_fmt_g(avg(warm))}, Inference (avg): {_fmt_g(avg(runs))}"
        )
    if flags.get("enable_op_profiling"):
        # LiteRT's Python interpreter has no op profiler, so the stand-in cannot print the
        # real per-operator tables; it says so instead of inventing numbers.
        log.info(
            "Operator-wise profiling is not available in the SIMULATED benchmark_model "
            "(LiteRT's Python API has no op profiler)."
        )

    out_path = flags.get("output_filepath")
    if out_path:
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
    return b"", 0
