"""Golden data for the Android demo's JVM-tested core (``android_demo/core``).

The demo's pre/post-processing is plain Kotlin so that it can be checked here, on a JVM, against
the numbers this package computes for the same inputs. ``android_demo/jvm-test.sh`` runs::

    python -m sinet_deploy.android.golden OUTDIR [--profile full|compact] [--artifact X.tflite]

and the JUnit tests read ``OUTDIR/cases.json``. Every expected value comes from the tool's own
functions: ``preprocessing.image_input`` (the model input), ``inference.resize_probability`` (the
probability at view size, as ``predict`` makes its masks), the PyTorch reference for the model
output when the weights are at hand, and LiteRT for any ``--artifact`` given. What this module
adds is only what the phone does and the tool does not: rotating/mirroring a camera frame,
storing the input in the manifest's dtype, dequantizing outputs, temporal smoothing and the 8-bit
alpha. The ``compact`` profile (small sizes) is what ``android_demo`` commits as a fallback for
machines without the Python environment.

File formats: ``cases.json`` is the index; ``manifest_*.json`` are model manifests; every other
file is a raw little-endian array whose dtype and shape ``cases.json`` gives (``frame_*.rgba``:
RGBA rows of ``row_stride`` bytes, padded like a CameraX plane).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sinet_deploy.core.errors import ArtifactError, SinetDeployError, UserInputError
from sinet_deploy.core.manifest import read_manifest, write_json_atomic
from sinet_deploy.models.inference import resize_probability
from sinet_deploy.models.preprocessing import image_input, preprocessing_contract, read_image

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
    x = levels.astype(np.float64)
    if dtype == "float32":
        out: np.ndarray = x.astype(np.float32)
    elif dtype in ("uint8", "int8"):
        info = np.iinfo(dtype)
        if quantization is None:
            if dtype == "int8":
                raise ValueError("int8 input needs quantization parameters")
            q = x
        else:
            scale = float(np.float32(quantization["scale"]))
            q = np.rint(x / scale) + int(quantization["zero_point"])
        out = np.clip(q, info.min, info.max).astype(dtype)
    else:
        raise ValueError(f"unsupported input dtype {dtype}")
    if layout.upper() == "NCHW":
        out = out.transpose(2, 0, 1)
    return np.ascontiguousarray(out[None])


def quantize_probability(
    prob: np.ndarray, dtype: str, quantization: dict[str, Any] | None
) -> np.ndarray:
    """A probability map as a model with that output type would emit it."""
    if dtype == "float32":
        return prob.astype(np.float32)
    if dtype == "float16":
        return prob.astype(np.float16)
    assert quantization is not None
    info = np.iinfo(dtype)
    scale = float(np.float32(quantization["scale"]))
    q = np.rint(prob.astype(np.float64) / scale) + int(quantization["zero_point"])
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(raw: np.ndarray, quantization: dict[str, Any] | None) -> np.ndarray:
    """Model output -> probability, float32: ``(q - zero_point) * scale`` for integer types."""
    if raw.dtype.kind == "f":
        return raw.astype(np.float32)
    assert quantization is not None
    centred = (raw.astype(np.int32) - int(quantization["zero_point"])).astype(np.float32)
    return centred * np.float32(quantization["scale"])


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
    if q is None:
        return None
    scale, zp = q["scale"], q.get("zero_point", 0)
    scale = scale[0] if isinstance(scale, list) else scale
    zp = zp[0] if isinstance(zp, list) else zp
    return [float(np.float32(scale)), int(zp)]


# ---------------------------------------------------------------- inputs and model outputs
def _shared_dir() -> Path:
    env = os.environ.get("SINET_SHARED")
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


ROW_PADDING = 64  # bytes after each RGBA row: CameraX planes often have rowStride > 4 * width


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
    """
    if profile not in PROFILES:
        raise UserInputError(
            f"unknown golden profile {profile!r}", hint=f"use one of {', '.join(PROFILES)}"
        )
    prof = PROFILES[profile]
    for art in artifacts:  # fail before writing anything
        if not Path(art).is_file():
            raise ArtifactError(f"artifact {art} does not exist", hint="check the path")
        read_manifest(Path(art))
    shared = shared if shared is not None else _shared_dir()
    if not reference:
        weights = None
    elif weights is None:
        candidate = shared / "weights" / "SINet_EG1800.pth"
        weights = candidate if candidate.is_file() else None
    out.mkdir(parents=True, exist_ok=True)
    wr = _Writer(out)
    base, image_source = _base_image(prof, shared)
    prob_source = _ProbabilitySource(weights)
    b = prof.base
    quarter = b // 8

    # A landscape "sensor" frame (4:3) and, for the end-to-end case, the sensor frame of a front
    # camera in a portrait phone: rotationDegrees 90 and mirrored, so its display is the upright
    # portrait crop of the astronaut.
    landscape = np.ascontiguousarray(base[quarter : b - quarter])
    portrait = np.ascontiguousarray(base[:, quarter : b - quarter])
    e2e_rotation, e2e_mirror = 90, True
    e2e_sensor = np.ascontiguousarray(np.rot90(portrait[:, ::-1], k=1))
    assert np.array_equal(to_display(e2e_sensor, e2e_rotation, e2e_mirror), portrait)

    frames = {
        "landscape": landscape,
        "e2e": e2e_sensor,
        "tiny": np.random.default_rng(3).integers(0, 256, (7, 9, 3), dtype=np.uint8),
    }
    frame_index = {}
    for name, f in frames.items():
        # Only RGBA is stored; the tests pack the ARGB-int (0xFFRRGGBB) variant from it.
        frame_index[name] = {
            "width": int(f.shape[1]),
            "height": int(f.shape[0]),
            "rgba": {
                **wr.raw(f"frame_{name}.rgba", rgba_bytes(f, ROW_PADDING)),
                "row_stride": int(f.shape[1]) * 4 + ROW_PADDING,
            },
        }

    manifests: dict[str, str] = {}
    summaries: list[dict[str, Any]] = []

    def manifest(key: str, m: dict[str, Any]) -> str:
        if key not in manifests:
            manifests[key] = wr.manifest(f"manifest_{key}.json", m)
            summaries.append(
                {
                    "manifest": manifests[key],
                    "expected": manifest_summary(m),
                    "real": "note" not in m,
                }
            )
        return manifests[key]

    mh, mw = prof.model
    bh, bw = prof.model_b
    pre_specs: list[tuple[str, str, int, bool, str, dict[str, Any] | None, str, tuple[int, int]]]
    pre_specs = [
        ("landscape", "rgba", r, m, "uint8", None, "NHWC", (mh, mw))
        for r in (0, 90, 180, 270)
        for m in (False, True)
    ]
    pre_specs += [
        ("landscape", "argb", 270, False, "uint8", None, "NHWC", (mh, mw)),
        ("landscape", "rgba", 90, True, "int8", INT8_PIXELS, "NHWC", (mh, mw)),
        (
            "landscape",
            "rgba",
            90,
            False,
            "uint8",
            {"scale": 2.0, "zero_point": 3},
            "NHWC",
            (mh, mw),
        ),
        ("landscape", "argb", 90, False, "float32", None, "NHWC", (bh, bw)),
        ("landscape", "rgba", 0, False, "uint8", None, "NCHW", (bh, bw)),
        ("tiny", "rgba", 90, True, "uint8", None, "NHWC", (24, 32)),
        ("tiny", "argb", 180, False, "int8", INT8_PIXELS, "NCHW", (5, 3)),
    ]
    preprocess = []
    for i, (fname, fmt, rot, mir, dtype, quant, layout, (h, w)) in enumerate(pre_specs):
        key = f"{h}x{w}_{dtype}_{layout}_{'q' if quant else 'n'}{i if quant else ''}"
        # The exporter writes layouts in lower case; one manifest keeps upper case.
        spelled = layout if i == 0 else layout.lower()
        m = manifest(key, demo_manifest(h, w, in_dtype=dtype, in_quant=quant, layout=spelled))
        display = to_display(frames[fname], rot, mir)
        levels = image_input(display, h, w)[0]
        tensor = input_tensor(levels, dtype, quant, layout)
        tag = f"pre{i:02d}_{fname}_r{rot}{'m' if mir else ''}_{fmt}_{dtype}_{layout}"
        same = tensor.dtype == np.uint8 and tensor.tobytes() == levels.tobytes()
        preprocess.append(
            {
                "name": tag,
                "frame": fname,
                "source_format": fmt,
                "rotation": rot,
                "mirror": mir,
                "manifest": m,
                "levels": wr.array(f"{tag}.levels", levels),
                # The stored tensor only where it differs from the levels (keeps the set small).
                "tensor": None if same else wr.array(f"{tag}.tensor", tensor),
                "display": wr.array(f"{tag}.display", display) if fname == "tiny" else None,
                "tolerance_levels": 0,
            }
        )

    # The end-to-end frame through the model: the output every post-processing case starts from.
    e2e_display = to_display(e2e_sensor, e2e_rotation, e2e_mirror)
    e2e_levels = image_input(e2e_display, mh, mw)
    prob = prob_source(e2e_levels).astype(np.float32)
    view = e2e_display.shape[:2]

    postprocess = []
    out_types: list[tuple[str, dict[str, Any] | None]] = [
        ("float32", None),
        ("uint8", UINT8_PROB),
        ("int8", INT8_PROB),
        ("float16", None),
    ]
    for dtype, quant in out_types:
        m = manifest(f"out_{dtype}", demo_manifest(mh, mw, out_dtype=dtype, out_quant=quant))
        raw = quantize_probability(prob, dtype, quant)
        deq = dequantize(raw, quant)
        for vh, vw in (view, prof.odd_view):
            if dtype != "float32" and (vh, vw) == view and profile == "compact":
                continue  # keep the committed set small; the odd view covers these types
            up = resize_probability(deq, vh, vw)
            tag = f"post_{dtype}_{vh}x{vw}"
            postprocess.append(
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

    weight = 0.6
    strip = prob[: max(1, prob.shape[0] // 4)]  # the EMA is per pixel: a strip is enough
    seq = [strip, np.roll(strip, 3, axis=1), (strip * np.float32(0.25) + np.float32(0.1))]
    seq = [s.astype(np.float32) for s in seq]
    temporal = {
        "name": "ema",
        "weight": weight,
        "frames": [wr.array(f"ema_in{i}", s) for i, s in enumerate(seq)],
        "expected": [wr.array(f"ema_out{i}", s) for i, s in enumerate(smooth(seq, weight))],
        "tolerance_probability": 1e-6,
    }

    frame_index["e2e"]["display"] = wr.array("frame_e2e.display", e2e_display)
    pipeline = []
    for dtype, quant in (("float32", None), ("uint8", UINT8_PROB)):
        m_key = f"out_{dtype}"
        raw = quantize_probability(prob, dtype, quant)[None, :, :, None]
        up = resize_probability(dequantize(raw[0, :, :, 0], quant), *view)
        pipeline.append(
            _pipeline_case(
                wr,
                f"e2e_{dtype}",
                manifests[m_key],
                e2e_levels[0],
                input_tensor(e2e_levels[0], "uint8", None),
                raw,
                up,
                prob_source.label,
            )
        )
    for art in artifacts:
        pipeline.append(_artifact_case(wr, Path(art), e2e_display, manifest))

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
        "manifests": summaries,
        "e2e": {"frame": "e2e", "rotation": e2e_rotation, "mirror": e2e_mirror},
    }
    write_json_atomic(out / "cases.json", index)
    index["total_bytes"] = wr.bytes + (out / "cases.json").stat().st_size
    return index


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


def _artifact_case(wr: _Writer, art: Path, display: np.ndarray, manifest: Any) -> dict[str, Any]:
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


def main(argv: list[str] | None = None) -> int:
    """``python -m sinet_deploy.android.golden OUTDIR``: write the golden set, print a summary."""
    ap = argparse.ArgumentParser(
        prog="python -m sinet_deploy.android.golden",
        description="Golden data for the Android demo's JVM tests.",
    )
    ap.add_argument("out", type=Path, help="folder to write (created)")
    ap.add_argument("--profile", choices=sorted(PROFILES), default="full")
    ap.add_argument("--shared", type=Path, default=None, help="the ../shared folder")
    ap.add_argument(
        "--weights",
        default=None,
        help="checkpoint for the reference output (default: the official one in "
        "--shared); 'none' for a synthetic probability map",
    )
    ap.add_argument(
        "--artifact",
        type=Path,
        action="append",
        default=[],
        help="a .tflite artifact (manifest beside it) to run with LiteRT; repeatable",
    )
    args = ap.parse_args(argv)
    try:
        index = generate(
            args.out,
            profile=args.profile,
            shared=args.shared,
            weights=None if args.weights in (None, "none") else Path(args.weights),
            reference=args.weights != "none",
            artifacts=tuple(args.artifact),
        )
    except SinetDeployError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code
    counts = {
        k: len(index[k]) for k in ("preprocess", "postprocess", "temporal", "pipeline", "manifests")
    }
    summary = {
        k: index[k] for k in ("profile", "image_source", "probability_source", "total_bytes")
    }
    print(json.dumps({**summary, "cases": counts}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
