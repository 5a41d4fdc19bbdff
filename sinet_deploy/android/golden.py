"""Golden data for the Android demo's JVM-tested core (``android_demo/core``).

The demo's pre/post-processing is plain Kotlin so that it can be checked here, on a JVM, against
the numbers this package computes for the same inputs. ``android_demo/jvm-test.sh`` runs::

    sinet-deploy android-golden OUTDIR [--profile full|compact] [--artifact X.tflite]

and the JUnit tests read ``OUTDIR/cases.json``. Every expected value comes from the tool's own
functions: ``preprocessing.image_input`` (the model input), ``inference.resize_probability`` (the
probability at view size, as ``predict`` makes its masks), the PyTorch reference for the model
output when the weights are at hand, and LiteRT for any ``--artifact`` given. What this module
adds is only what the phone does and the tool does not: rotating/mirroring a camera frame,
storing the input in the manifest's dtype and dequantizing outputs (both with the sessions'
own ``runtimes.base`` arithmetic), temporal smoothing and the 8-bit alpha. The ``compact``
profile (small sizes) is what ``android_demo`` commits as a fallback for machines without the
Python environment.

File formats: ``cases.json`` is the index; ``manifest_*.json`` are model manifests; every other
file is a raw little-endian array whose dtype and shape ``cases.json`` gives (``frame_*.rgba``:
RGBA rows of ``row_stride`` bytes, padded like a CameraX plane).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from sinet_deploy.core.errors import ArtifactError, UserInputError
from sinet_deploy.core.manifest import read_manifest, write_json_atomic
from sinet_deploy.models.inference import resize_probability
from sinet_deploy.models.preprocessing import image_input, preprocessing_contract, read_image
from sinet_deploy.runtimes.base import (
    dequantize_affine,
    quantization_from_manifest,
    quantize_affine,
)

SCHEMA = 1
#: TFLite's usual output quantization of a probability in [0, 1] (uint8 and int8 flavours).
UINT8_PROB = {"scale": 1.0 / 255.0, "zero_point": 0}
INT8_PROB = {"scale": 1.0 / 256.0, "zero_point": -128}
#: int8 input quantization that covers pixel levels 0..255 exactly.
INT8_PIXELS = {"scale": 1.0, "zero_point": -128}


@dataclass(frozen=True)
class Profile:
    """Sizes of one golden set (all ``(height, width)``)."""

    base: int  # side of the square astronaut the frames are cut from
    model: tuple[int, int]  # main model input size
    model_b: tuple[int, int]  # a non-square model input size
    odd_view: tuple[int, int]  # an awkward view size for the mask upscale


PROFILES = {
    "full": Profile(base=512, model=(224, 224), model_b=(320, 256), odd_view=(97, 61)),
    "compact": Profile(base=128, model=(64, 64), model_b=(48, 32), odd_view=(37, 23)),
}


# ---------------------------------------------------------------- what the phone does, in NumPy
def to_display(frame: np.ndarray, rotation: int, mirror: bool) -> np.ndarray:
    """Camera frame (sensor orientation) -> the upright picture shown on screen.

    ``rotation`` is CameraX's ``rotationDegrees``: the *clockwise* rotation that makes the frame
    upright (``np.rot90`` turns counter-clockwise, hence the minus). The front camera's picture is
    then mirrored left-right.
    """
    if rotation % 90:
        raise ValueError(f"rotation {rotation} is not a multiple of 90")
    out = np.rot90(frame, k=-(rotation // 90) % 4)
    if mirror:
        out = out[:, ::-1]
    return np.ascontiguousarray(out)


def rgba_bytes(rgb: np.ndarray, row_padding: int = 0, pad_value: int = 0xAB) -> bytes:
    """RGBA_8888 bytes like a CameraX plane, each row followed by ``row_padding`` junk bytes."""
    h, w = rgb.shape[:2]
    rows = np.full((h, w * 4 + row_padding), pad_value, dtype=np.uint8)
    px = rows[:, : w * 4].reshape(h, w, 4)
    px[..., :3] = rgb
    px[..., 3] = 255
    return rows.tobytes()


def input_tensor(
    levels: np.ndarray, dtype: str, quantization: dict[str, Any] | None, layout: str = "NHWC"
) -> np.ndarray:
    """uint8 RGB levels ``[H, W, 3]`` (from ``image_input``) stored as the model's input.

    Integer inputs with quantization hold ``rint(level / scale) + zero_point`` (half to even,
    the division in float64 with the scale as float32, as TFLite stores it), clamped to the type.
    """
    if dtype not in ("float32", "uint8", "int8"):
        raise ValueError(f"unsupported input dtype {dtype}")
    if dtype == "int8" and quantization is None:
        raise ValueError("int8 input needs quantization parameters")
    out = quantize_affine(
        levels.astype(np.float64), dtype, quantization_from_manifest(quantization)
    )
    if layout.upper() == "NCHW":
        out = out.transpose(2, 0, 1)
    return np.ascontiguousarray(out[None])


def quantize_probability(
    prob: np.ndarray, dtype: str, quantization: dict[str, Any] | None
) -> np.ndarray:
    """A probability map as a model with that output type would emit it."""
    if np.dtype(dtype).kind != "f" and quantization is None:
        raise ValueError(f"{dtype} output needs quantization parameters")
    return quantize_affine(prob, dtype, quantization_from_manifest(quantization))


def dequantize(raw: np.ndarray, quantization: dict[str, Any] | None) -> np.ndarray:
    """Model output -> probability, float32: ``(q - zero_point) * scale`` for integer types."""
    if raw.dtype.kind == "f":
        return raw.astype(np.float32)
    if quantization is None:
        raise ValueError(f"{raw.dtype} output needs quantization parameters")
    return dequantize_affine(raw, quantization_from_manifest(quantization))


def smooth(frames: list[np.ndarray], weight: float) -> list[np.ndarray]:
    """Temporal EMA of probability maps: ``s = s + weight * (p - s)`` in float32; first as is."""
    w = np.float32(weight)
    out: list[np.ndarray] = []
    state: np.ndarray | None = None
    for p in frames:
        p = p.astype(np.float32)
        state = p.copy() if state is None else (state + w * (p - state)).astype(np.float32)
        out.append(state.copy())
    return out


def alpha_from_probability(prob: np.ndarray) -> np.ndarray:
    """8-bit alpha of a probability: ``rint(clip(p, 0, 1) * 255)``, float32 product."""
    return np.rint(np.clip(prob.astype(np.float32), 0, 1) * np.float32(255)).astype(np.uint8)


def demo_manifest(
    height: int,
    width: int,
    *,
    in_dtype: str = "uint8",
    in_quant: dict[str, Any] | None = None,
    out_dtype: str = "float32",
    out_quant: dict[str, Any] | None = None,
    layout: str = "nhwc",
    precision: str = "fp32",
) -> dict[str, Any]:
    """A manifest with the fields CONTRACTS.md lists, for cases without a real artifact."""
    nhwc = layout.upper() == "NHWC"
    in_shape = [1, height, width, 3] if nhwc else [1, 3, height, width]
    out_shape = [1, height, width, 1] if nhwc else [1, 1, height, width]
    return {
        "schema_version": 1,
        "format": "tflite",
        "precision": precision,
        "artifact": f"sinet_{height}x{width}_{precision}.tflite",
        "input_size": [height, width],
        "inputs": [
            {
                "name": "image",
                "shape": in_shape,
                "dtype": in_dtype,
                "layout": layout,
                "quantization": in_quant,
            }
        ],
        "outputs": [
            {
                "name": "foreground",
                "shape": out_shape,
                "dtype": out_dtype,
                "layout": layout,
                "quantization": out_quant,
            }
        ],
        "preprocessing": preprocessing_contract(),
        "options": {"io": "image", "input_size": [height, width]},
        "note": "synthesized by sinet_deploy.android.golden for the JVM tests (no artifact)",
    }


def manifest_summary(manifest: dict[str, Any]) -> dict[str, Any]:
    """What the Kotlin ``ModelManifest`` must read from ``manifest`` (the tests compare)."""
    inp = manifest["inputs"][0]
    out = next(o for o in manifest["outputs"] if o["name"] == "foreground")
    layout = (inp.get("layout") or ("NHWC" if inp["shape"][3] == 3 else "NCHW")).upper()
    h, w = inp["shape"][1:3] if layout == "NHWC" else inp["shape"][2:4]
    oshape = out["shape"]
    oh, ow = oshape[1:3] if (len(oshape) == 3 or oshape[-1] == 1) else oshape[2:4]
    return {
        "input_height": h,
        "input_width": w,
        "input_dtype": inp["dtype"],
        "input_layout": layout,
        "input_quantization": _quant(inp.get("quantization")),
        "output_height": oh,
        "output_width": ow,
        "output_dtype": out["dtype"],
        "output_quantization": _quant(out.get("quantization")),
        "precision": manifest.get("precision"),
    }


def _quant(q: dict[str, Any] | None) -> list[float] | None:
    pair = quantization_from_manifest(q)
    return None if pair is None else [float(np.float32(pair[0])), pair[1]]


# ---------------------------------------------------------------- inputs and model outputs
def _shared_dir() -> Path:
    env = os.environ.get("SINET_SHARED")
    # The folder beside the project: sinet_deploy/android/golden.py -> <project>/../shared.
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared"


def _base_image(profile: Profile, shared: Path) -> tuple[np.ndarray, str]:
    """The public-domain astronaut (resized to the profile), or a synthetic picture without it."""
    from sinet_deploy.models.preprocessing import resize_bilinear

    path = shared / "golden" / "astronaut.png"
    if path.is_file():
        img = read_image(path)
        if img.shape[:2] != (profile.base, profile.base):
            img = resize_bilinear(img, profile.base, profile.base)
        return img, f"astronaut.png resized to {profile.base}x{profile.base}"
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0 : profile.base, 0 : profile.base]
    base = np.stack(
        [xx * 255 // profile.base, yy * 255 // profile.base, (xx + yy) * 127 // profile.base],
        axis=-1,
    )
    noise = rng.integers(0, 40, size=base.shape)
    return np.clip(base + noise, 0, 255).astype(np.uint8), "synthetic gradient + noise"


class _ProbabilitySource:
    """Foreground probability of a uint8 RGB NHWC input: the PyTorch reference if the weights
    are at hand, else a synthetic soft disc (labelled as such in ``cases.json``)."""

    def __init__(self, weights: Path | None) -> None:
        self._model: Any = None
        self.label = "synthetic soft disc (no weights given)"
        if weights is not None:
            from sinet_deploy.models import load_model

            self._model = load_model(weights)
            self.label = f"PyTorch reference SINet, weights {weights.name}"

    def __call__(self, nhwc: np.ndarray) -> np.ndarray:
        if self._model is not None:
            from sinet_deploy.models.inference import reference_probability

            return reference_probability(self._model, nhwc)[0, :, :, 0]
        h, w = nhwc.shape[1:3]
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
        d = np.hypot((yy - 0.55 * h) / h, (xx - 0.5 * w) / w)
        return (1.0 / (1.0 + np.exp((d - 0.3) / 0.04))).astype(np.float32)


def _run_tflite(path: Path, tensor: np.ndarray) -> np.ndarray:
    """One LiteRT invocation of an artifact (raw output tensor, its own dtype)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as exc:
        from sinet_deploy.core.errors import MissingDependencyError

        raise MissingDependencyError(
            f"cannot run {path.name}: LiteRT is not installed ({exc})",
            hint="pip install 'sinet-deploy[tflite]'",
        ) from None
    interp = Interpreter(model_path=str(path))
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], tensor)
    interp.invoke()
    outs = interp.get_output_details()
    detail = next((o for o in outs if "foreground" in o["name"]), outs[0])
    return np.array(interp.get_tensor(detail["index"]))


# ---------------------------------------------------------------- writing the set
class _Writer:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.bytes = 0

    def array(self, name: str, arr: np.ndarray) -> dict[str, Any]:
        a = np.ascontiguousarray(arr)
        data = a.astype(a.dtype.newbyteorder("<")).tobytes()
        (self.out / name).write_bytes(data)
        self.bytes += len(data)
        return {"file": name, "dtype": str(a.dtype), "shape": list(a.shape)}

    def raw(self, name: str, data: bytes) -> dict[str, Any]:
        (self.out / name).write_bytes(data)
        self.bytes += len(data)
        return {"file": name, "dtype": "uint8", "shape": [len(data)]}

    def manifest(self, name: str, manifest: dict[str, Any]) -> str:
        write_json_atomic(self.out / name, manifest)
        self.bytes += (self.out / name).stat().st_size
        return name


class _Manifests:
    """Manifest files, each written once per key, and what the Kotlin reader must make of each
    (the ``manifests`` list of ``cases.json``, in the order they were first used)."""

    def __init__(self, wr: _Writer) -> None:
        self._wr = wr
        self.files: dict[str, str] = {}
        self.summaries: list[dict[str, Any]] = []

    def add(self, key: str, m: dict[str, Any]) -> str:
        """The file name of manifest ``key``, writing ``m`` there the first time."""
        if key not in self.files:
            self.files[key] = self._wr.manifest(f"manifest_{key}.json", m)
            self.summaries.append(
                {
                    "manifest": self.files[key],
                    "expected": manifest_summary(m),
                    "real": "note" not in m,
                }
            )
        return self.files[key]


ROW_PADDING = 64  # bytes after each RGBA row: CameraX planes often have rowStride > 4 * width
#: The end-to-end frame comes from a front camera in a portrait phone: rotationDegrees 90, mirrored.
E2E_ROTATION, E2E_MIRROR = 90, True
#: Output types of the post-processing cases, with the quantization each is emitted with.
OUT_TYPES: tuple[tuple[str, dict[str, Any] | None], ...] = (
    ("float32", None),
    ("uint8", UINT8_PROB),
    ("int8", INT8_PROB),
    ("float16", None),
)
EMA_WEIGHT = 0.6


class _PreSpec(NamedTuple):
    """One pre-processing case: a frame, how the camera hands it over, the model input."""

    frame: str
    source_format: str  # "rgba" or "argb"
    rotation: int
    mirror: bool
    dtype: str
    quant: dict[str, Any] | None
    layout: str
    size: tuple[int, int]


def _preprocess_specs(prof: Profile) -> list[_PreSpec]:
    """Every rotation and mirroring, then each input dtype, layout and an odd size."""
    model, model_b = prof.model, prof.model_b
    specs = [
        _PreSpec("landscape", "rgba", r, m, "uint8", None, "NHWC", model)
        for r in (0, 90, 180, 270)
        for m in (False, True)
    ]
    specs += [
        _PreSpec("landscape", "argb", 270, False, "uint8", None, "NHWC", model),
        _PreSpec("landscape", "rgba", 90, True, "int8", INT8_PIXELS, "NHWC", model),
        _PreSpec(
            "landscape", "rgba", 90, False, "uint8", {"scale": 2.0, "zero_point": 3}, "NHWC", model
        ),
        _PreSpec("landscape", "argb", 90, False, "float32", None, "NHWC", model_b),
        _PreSpec("landscape", "rgba", 0, False, "uint8", None, "NCHW", model_b),
        _PreSpec("tiny", "rgba", 90, True, "uint8", None, "NHWC", (24, 32)),
        _PreSpec("tiny", "argb", 180, False, "int8", INT8_PIXELS, "NCHW", (5, 3)),
    ]
    return specs


def generate(
    out: Path,
    *,
    profile: str = "full",
    shared: Path | None = None,
    weights: Path | None = None,
    reference: bool = True,
    artifacts: tuple[Path, ...] = (),
) -> dict[str, Any]:
    """Write the golden set into ``out`` (created) and return the ``cases.json`` index.

    Args:
        out: destination folder.
        profile: ``"full"`` (real sizes: 224x224 model, 512-pixel frames) or ``"compact"``
            (small sizes, for committing).
        shared: the ``../shared`` folder (for the astronaut); defaults to ``$SINET_SHARED`` or
            the folder beside the project. A synthetic picture stands in when it is absent.
        weights: checkpoint for the PyTorch reference output; ``None``: the official one from
            ``shared`` if present, else a synthetic probability map.
        reference: ``False`` forces the synthetic probability map (no torch needed).
        artifacts: TFLite artifacts (manifests beside them) to run with LiteRT on the golden
            frame; their real manifests and outputs become pipeline cases.

    Raises:
        UserInputError: an unknown profile.
        ArtifactError: an artifact that is missing or has no readable manifest (checked before
            anything is written).
    """
    prof = _profile(profile)
    _check_artifacts(artifacts)
    shared = shared if shared is not None else _shared_dir()
    weights = _reference_weights(shared, weights, reference)
    out.mkdir(parents=True, exist_ok=True)
    wr = _Writer(out)
    manifests = _Manifests(wr)
    base, image_source = _base_image(prof, shared)
    prob_source = _ProbabilitySource(weights)
    frames = _cut_frames(base, prof)
    frame_index = {name: _frame_entry(wr, name, f) for name, f in frames.items()}
    preprocess = _preprocess_cases(wr, manifests, frames, prof)

    # The end-to-end frame through the model: the output every post-processing case starts from.
    e2e_display = to_display(frames["e2e"], E2E_ROTATION, E2E_MIRROR)
    e2e_levels = image_input(e2e_display, *prof.model)
    prob = prob_source(e2e_levels).astype(np.float32)
    view = (int(e2e_display.shape[0]), int(e2e_display.shape[1]))
    postprocess = _postprocess_cases(
        wr, manifests, prob, [view, prof.odd_view], compact=profile == "compact"
    )
    temporal = _temporal_case(wr, prob)
    frame_index["e2e"]["display"] = wr.array("frame_e2e.display", e2e_display)
    pipeline = _reference_pipeline_cases(
        wr, manifests, e2e_levels[0], prob, view, prob_source.label
    )
    pipeline += [_artifact_case(wr, Path(art), e2e_display, manifests.add) for art in artifacts]

    index = {
        "schema": SCHEMA,
        "generator": "sinet_deploy.android.golden",
        "profile": profile,
        "image_source": image_source,
        "probability_source": prob_source.label,
        "frames": frame_index,
        "preprocess": preprocess,
        "postprocess": postprocess,
        "temporal": [temporal],
        "pipeline": pipeline,
        "manifests": manifests.summaries,
        "e2e": {"frame": "e2e", "rotation": E2E_ROTATION, "mirror": E2E_MIRROR},
    }
    write_json_atomic(out / "cases.json", index)
    index["total_bytes"] = wr.bytes + (out / "cases.json").stat().st_size
    return index


def index_summary(index: dict[str, Any]) -> dict[str, Any]:
    """Profile, sources, size and the number of cases of each kind, from ``generate``'s index."""
    counts = {
        k: len(index[k]) for k in ("preprocess", "postprocess", "temporal", "pipeline", "manifests")
    }
    summary = {
        k: index[k] for k in ("profile", "image_source", "probability_source", "total_bytes")
    }
    return {**summary, "cases": counts}


def _profile(name: str) -> Profile:
    if name not in PROFILES:
        raise UserInputError(
            f"unknown golden profile {name!r}", hint=f"use one of {', '.join(PROFILES)}"
        )
    return PROFILES[name]


def _check_artifacts(artifacts: tuple[Path, ...]) -> None:
    """Fail before anything is written: every artifact exists and has a readable manifest."""
    for art in artifacts:
        if not Path(art).is_file():
            raise ArtifactError(f"artifact {art} does not exist", hint="check the path")
        read_manifest(Path(art))


def _reference_weights(shared: Path, weights: Path | None, reference: bool) -> Path | None:
    """The checkpoint for the reference output: ``weights``, else the official one in
    ``shared`` when present; ``None`` (a synthetic map) without one or when not ``reference``."""
    if not reference:
        return None
    if weights is not None:
        return weights
    candidate = shared / "weights" / "SINet_EG1800.pth"
    return candidate if candidate.is_file() else None


def _cut_frames(base: np.ndarray, prof: Profile) -> dict[str, np.ndarray]:
    """The camera frames, in sensor orientation: a landscape (4:3) one, the end-to-end one
    (whose display is the upright portrait crop of ``base``) and a tiny random one."""
    b = prof.base
    quarter = b // 8
    landscape = np.ascontiguousarray(base[quarter : b - quarter])
    portrait = np.ascontiguousarray(base[:, quarter : b - quarter])
    e2e_sensor = np.ascontiguousarray(np.rot90(portrait[:, ::-1], k=1))
    assert np.array_equal(to_display(e2e_sensor, E2E_ROTATION, E2E_MIRROR), portrait)
    return {
        "landscape": landscape,
        "e2e": e2e_sensor,
        "tiny": np.random.default_rng(3).integers(0, 256, (7, 9, 3), dtype=np.uint8),
    }


def _frame_entry(wr: _Writer, name: str, frame: np.ndarray) -> dict[str, Any]:
    # Only RGBA is stored; the tests pack the ARGB-int (0xFFRRGGBB) variant from it.
    return {
        "width": int(frame.shape[1]),
        "height": int(frame.shape[0]),
        "rgba": {
            **wr.raw(f"frame_{name}.rgba", rgba_bytes(frame, ROW_PADDING)),
            "row_stride": int(frame.shape[1]) * 4 + ROW_PADDING,
        },
    }


def _preprocess_cases(
    wr: _Writer, manifests: _Manifests, frames: dict[str, np.ndarray], prof: Profile
) -> list[dict[str, Any]]:
    return [
        _preprocess_case(wr, manifests, i, spec, frames[spec.frame])
        for i, spec in enumerate(_preprocess_specs(prof))
    ]


def _preprocess_case(
    wr: _Writer, manifests: _Manifests, i: int, spec: _PreSpec, frame: np.ndarray
) -> dict[str, Any]:
    """Case ``i``: the frame turned upright, its levels and the model input stored from them."""
    h, w = spec.size
    dtype, quant, layout = spec.dtype, spec.quant, spec.layout
    key = f"{h}x{w}_{dtype}_{layout}_{'q' if quant else 'n'}{i if quant else ''}"
    # The exporter writes layouts in lower case; one manifest keeps upper case.
    spelled = layout if i == 0 else layout.lower()
    m = manifests.add(key, demo_manifest(h, w, in_dtype=dtype, in_quant=quant, layout=spelled))
    display = to_display(frame, spec.rotation, spec.mirror)
    levels = image_input(display, h, w)[0]
    tensor = input_tensor(levels, dtype, quant, layout)
    mirrored = "m" if spec.mirror else ""
    tag = (
        f"pre{i:02d}_{spec.frame}_r{spec.rotation}{mirrored}_{spec.source_format}_{dtype}_{layout}"
    )
    same = tensor.dtype == np.uint8 and tensor.tobytes() == levels.tobytes()
    return {
        "name": tag,
        "frame": spec.frame,
        "source_format": spec.source_format,
        "rotation": spec.rotation,
        "mirror": spec.mirror,
        "manifest": m,
        "levels": wr.array(f"{tag}.levels", levels),
        # The stored tensor only where it differs from the levels (keeps the set small).
        "tensor": None if same else wr.array(f"{tag}.tensor", tensor),
        "display": wr.array(f"{tag}.display", display) if spec.frame == "tiny" else None,
        "tolerance_levels": 0,
    }


def _postprocess_cases(
    wr: _Writer,
    manifests: _Manifests,
    prob: np.ndarray,
    views: list[tuple[int, int]],
    compact: bool,
) -> list[dict[str, Any]]:
    """``prob`` as each output type emits it, dequantized, upscaled to each view, as alpha.

    ``views`` is the end-to-end frame's view, then an awkward one.
    """
    mh, mw = prob.shape
    cases = []
    for dtype, quant in OUT_TYPES:
        m = manifests.add(f"out_{dtype}", demo_manifest(mh, mw, out_dtype=dtype, out_quant=quant))
        raw = quantize_probability(prob, dtype, quant)
        deq = dequantize(raw, quant)
        for vh, vw in views:
            if dtype != "float32" and (vh, vw) == views[0] and compact:
                continue  # keep the committed set small; the odd view covers these types
            up = resize_probability(deq, vh, vw)
            tag = f"post_{dtype}_{vh}x{vw}"
            cases.append(
                {
                    "name": tag,
                    "manifest": m,
                    "view_height": int(vh),
                    "view_width": int(vw),
                    "output": wr.array(f"{tag}.output", raw[None, :, :, None]),
                    "probability": wr.array(f"{tag}.prob", deq),
                    "upscaled": wr.array(f"{tag}.up", up),
                    "alpha": wr.array(f"{tag}.alpha", alpha_from_probability(up)),
                    "tolerance_probability": 1.0 / 255.0,
                    "tolerance_alpha_levels": 1,
                }
            )
    return cases


def _temporal_case(wr: _Writer, prob: np.ndarray) -> dict[str, Any]:
    """The EMA over three frames derived from ``prob``."""
    strip = prob[: max(1, prob.shape[0] // 4)]  # the EMA is per pixel: a strip is enough
    seq = [strip, np.roll(strip, 3, axis=1), (strip * np.float32(0.25) + np.float32(0.1))]
    seq = [s.astype(np.float32) for s in seq]
    return {
        "name": "ema",
        "weight": EMA_WEIGHT,
        "frames": [wr.array(f"ema_in{i}", s) for i, s in enumerate(seq)],
        "expected": [wr.array(f"ema_out{i}", s) for i, s in enumerate(smooth(seq, EMA_WEIGHT))],
        "tolerance_probability": 1e-6,
    }


def _reference_pipeline_cases(
    wr: _Writer,
    manifests: _Manifests,
    levels: np.ndarray,
    prob: np.ndarray,
    view: tuple[int, int],
    source: str,
) -> list[dict[str, Any]]:
    """The end-to-end frame with the reference output, as a float32 and a uint8 model."""
    cases = []
    for dtype, quant in (("float32", None), ("uint8", UINT8_PROB)):
        raw = quantize_probability(prob, dtype, quant)[None, :, :, None]
        up = resize_probability(dequantize(raw[0, :, :, 0], quant), *view)
        tensor = input_tensor(levels, "uint8", None)
        file = manifests.files[f"out_{dtype}"]
        cases.append(_pipeline_case(wr, f"e2e_{dtype}", file, levels, tensor, raw, up, source))
    return cases


def _pipeline_case(
    wr: _Writer,
    tag: str,
    manifest_file: str,
    levels: np.ndarray,
    tensor: np.ndarray,
    raw_out: np.ndarray,
    upscaled: np.ndarray,
    source: str,
) -> dict[str, Any]:
    """The end-to-end frame: expected model input, the model's output, the alpha at view size."""
    return {
        "name": tag,
        "frame": "e2e",
        "manifest": manifest_file,
        "source": source,
        "levels": wr.array(f"{tag}.levels", levels),
        "tensor": wr.array(f"{tag}.tensor", tensor),
        "output": wr.array(f"{tag}.output", raw_out),
        "alpha": wr.array(f"{tag}.alpha", alpha_from_probability(upscaled)),
        "tolerance_alpha_levels": 1,
    }


def _artifact_case(
    wr: _Writer, art: Path, display: np.ndarray, manifest: Callable[[str, dict[str, Any]], str]
) -> dict[str, Any]:
    """A real TFLite artifact run by LiteRT on the end-to-end frame, with its real manifest."""
    m = read_manifest(art)
    summary = manifest_summary(m)
    h, w = summary["input_height"], summary["input_width"]
    levels = image_input(display, h, w)[0]
    inp = m["inputs"][0]
    tensor = input_tensor(levels, inp["dtype"], inp.get("quantization"), summary["input_layout"])
    raw = _run_tflite(art, tensor)
    out_spec = next(o for o in m["outputs"] if o["name"] == "foreground")
    prob = dequantize(
        raw.reshape(summary["output_height"], summary["output_width"]), out_spec.get("quantization")
    )
    up = resize_probability(prob, *display.shape[:2])
    file = manifest(f"real_{art.stem}", m)
    return _pipeline_case(
        wr, f"artifact_{art.stem}", file, levels, tensor, raw, up, f"LiteRT running {art.name}"
    )
