package dev.sinetdeploy.core

/** Element type of a model input or output, as the manifest spells it (NumPy names). */
enum class DType(val manifestName: String, val bytesPerElement: Int) {
    UINT8("uint8", 1),
    INT8("int8", 1),
    FLOAT16("float16", 2),
    FLOAT32("float32", 4);

    companion object {
        /** The dtype called [name] in a manifest, or null when this demo cannot handle it. */
        @JvmStatic
        fun fromManifest(name: String): DType? {
            for (d in values()) if (d.manifestName == name) return d
            return null
        }
    }
}

/** Affine quantization of a tensor: `real = (q - zeroPoint) * scale`. */
data class Quantization(val scale: Float, val zeroPoint: Int) {
    /**
     * The stored value of [real], rounded half to even and clamped to [dtype]'s range. The
     * division is done in double precision, as NumPy does it in the golden generator.
     */
    fun quantize(real: Float, dtype: DType): Int {
        val q = Math.rint(real.toDouble() / scale.toDouble()) + zeroPoint
        return clampToType(q, dtype)
    }

    /** The real value a stored [q] stands for. */
    fun dequantize(q: Int): Float = (q - zeroPoint) * scale

    companion object {
        internal fun clampToType(q: Double, dtype: DType): Int = when (dtype) {
            DType.UINT8 -> Math.max(0.0, Math.min(255.0, q)).toInt()
            DType.INT8 -> Math.max(-128.0, Math.min(127.0, q)).toInt()
            else -> throw IllegalArgumentException("$dtype is not an integer type")
        }
    }
}

/** One entry of the manifest's `inputs` or `outputs`. */
class TensorSpec(
    val name: String,
    val shape: IntArray,
    val dtype: DType,
    /** `NHWC`, `NCHW` (normalised to upper case), or null when the manifest does not say. */
    val layout: String?,
    val quantization: Quantization?
) {
    /** Number of elements (product of the shape). */
    val elementCount: Int
        get() {
            var n = 1
            for (d in shape) n *= d
            return n
        }

    /** Size in bytes of the tensor's buffer. */
    val byteSize: Int get() = elementCount * dtype.bytesPerElement

    override fun toString(): String =
        "$name ${shape.joinToString(",", "[", "]")} ${dtype.manifestName} $layout $quantization"
}

/**
 * The image input as the app must fill it: [height] x [width] RGB pixels, [layout] NHWC or NCHW,
 * element type [dtype]; values are pixel levels 0..255, stored through [quantization] if any.
 */
class ImageInput(
    val spec: TensorSpec,
    val height: Int,
    val width: Int,
    val layout: String,
    val dtype: DType,
    val quantization: Quantization?
)

/** The `foreground` output: person probability 0..1 at [height] x [width] (one channel). */
class ForegroundOutput(
    val spec: TensorSpec,
    val height: Int,
    val width: Int,
    val dtype: DType,
    val quantization: Quantization?
)

/**
 * What the app needs from a model's JSON sidecar (`sinet_<H>x<W>_<precision>.json`, written by
 * `sinet-deploy export` / `android-assets`): input size and type, output meaning and type.
 *
 * Nothing here is a constant of the model: every number comes from the manifest.
 */
class ModelManifest(
    val format: String?,
    val precision: String?,
    val artifact: String?,
    val artifactSha256: String?,
    val input: ImageInput,
    val output: ForegroundOutput,
    /** The whole parsed JSON, for fields this class does not model. */
    val raw: Map<String, Any?>
) {
    companion object {
        /** Name of the output that carries the person probability (CONTRACTS.md, "Artifacts"). */
        const val FOREGROUND = "foreground"

        /**
         * Parses and validates a manifest.
         *
         * @throws ManifestException with one line saying what is wrong and what to do.
         */
        @JvmStatic
        fun parse(text: String): ModelManifest {
            val root = try {
                Json.parse(text)
            } catch (e: JsonException) {
                throw ManifestException("manifest is not valid JSON (${e.message})")
            }
            val obj = root as? Map<*, *> ?: throw ManifestException("manifest is not a JSON object")
            @Suppress("UNCHECKED_CAST")
            val map = obj as Map<String, Any?>

            val options = map["options"] as? Map<*, *>
            val io = options?.get("io") as? String
            if (io != null && io != "image") {
                throw ManifestException(
                    "model was exported with --io $io; this demo needs the image I/O " +
                        "(re-run `sinet-deploy android-assets`)"
                )
            }
            val inputs = tensorList(map, "inputs")
            val outputs = tensorList(map, "outputs")
            if (inputs.size != 1) {
                throw ManifestException("model has ${inputs.size} inputs; expected one image input")
            }
            val output = outputs.firstOrNull { it.name == FOREGROUND } ?: throw ManifestException(
                "manifest has no output named '$FOREGROUND' (outputs: " +
                    outputs.joinToString(", ") { it.name } + "); export with --io image"
            )
            return ModelManifest(
                format = map["format"] as? String,
                precision = map["precision"] as? String,
                artifact = map["artifact"] as? String,
                artifactSha256 = map["artifact_sha256"] as? String,
                input = imageInput(inputs[0]),
                output = foregroundOutput(output),
                raw = map
            )
        }

        private fun tensorList(map: Map<String, Any?>, key: String): List<TensorSpec> {
            val list = map[key] as? List<*> ?: throw ManifestException("manifest has no '$key' list")
            val out = ArrayList<TensorSpec>()
            for ((i, item) in list.withIndex()) {
                val t = item as? Map<*, *> ?: throw ManifestException("$key[$i] is not an object")
                out.add(tensorSpec(t, "$key[$i]"))
            }
            return out
        }

        private fun tensorSpec(t: Map<*, *>, where: String): TensorSpec {
            val name = t["name"] as? String ?: throw ManifestException("$where has no name")
            val shapeList = t["shape"] as? List<*> ?: throw ManifestException("$where ($name) has no shape")
            val shape = IntArray(shapeList.size)
            for ((i, d) in shapeList.withIndex()) {
                val v = d as? Double
                if (v == null || v < 1 || v != Math.floor(v) || v > Int.MAX_VALUE) {
                    throw ManifestException("$where ($name) has a non-static shape $shapeList")
                }
                shape[i] = v.toInt()
            }
            val dtypeName = t["dtype"] as? String ?: throw ManifestException("$where ($name) has no dtype")
            val dtype = DType.fromManifest(dtypeName)
                ?: throw ManifestException("$where ($name) has dtype '$dtypeName', which this demo cannot feed")
            return TensorSpec(name, shape, dtype, layoutName(t["layout"] as? String), quantization(t["quantization"], "$where ($name)"))
        }

        /** `nhwc`/`NHWC` -> `NHWC` (the exporter writes lower case); other values kept as is. */
        private fun layoutName(layout: String?): String? = when {
            layout == null -> null
            layout.equals("nhwc", ignoreCase = true) -> "NHWC"
            layout.equals("nchw", ignoreCase = true) -> "NCHW"
            else -> layout
        }

        /** `null`, `{"scale": s, "zero_point": z}`; one-element lists are accepted for each field. */
        private fun quantization(q: Any?, where: String): Quantization? {
            if (q == null) return null
            val m = q as? Map<*, *> ?: throw ManifestException("$where quantization is not an object")
            val scale = scalar(m["scale"]) ?: throw ManifestException("$where quantization has no scale")
            val zero = scalar(m["zero_point"]) ?: 0.0
            if (!(scale > 0.0) || scale.isInfinite()) throw ManifestException("$where quantization scale $scale is not positive")
            if (zero != Math.floor(zero)) throw ManifestException("$where zero_point $zero is not an integer")
            return Quantization(scale.toFloat(), zero.toInt())
        }

        private fun scalar(v: Any?): Double? = when (v) {
            is Double -> v
            is List<*> -> if (v.size == 1) v[0] as? Double else null
            else -> null
        }

        private fun imageInput(t: TensorSpec): ImageInput {
            val s = t.shape
            // Layout: trust the manifest's field; without one, the channel axis of size 3 says it.
            val layout = t.layout ?: when {
                s.size == 4 && s[3] == 3 -> "NHWC"
                s.size == 4 && s[1] == 3 -> "NCHW"
                else -> ""
            }
            val ok = s.size == 4 && s[0] == 1 &&
                ((layout == "NHWC" && s[3] == 3) || (layout == "NCHW" && s[1] == 3))
            if (!ok) {
                throw ManifestException(
                    "input ${t.name} has shape ${s.joinToString(",", "[", "]")} layout $layout; " +
                        "expected an RGB image [1,H,W,3] NHWC or [1,3,H,W] NCHW"
                )
            }
            if (t.dtype == DType.INT8 && t.quantization == null) {
                throw ManifestException("input ${t.name} is int8 without quantization parameters")
            }
            if (t.dtype == DType.FLOAT16) {
                throw ManifestException("input ${t.name} is float16; LiteRT apps feed uint8, int8 or float32")
            }
            val h = if (layout == "NHWC") s[1] else s[2]
            val w = if (layout == "NHWC") s[2] else s[3]
            val q = if (t.dtype == DType.FLOAT32) null else t.quantization
            return ImageInput(t, h, w, layout, t.dtype, q)
        }

        private fun foregroundOutput(t: TensorSpec): ForegroundOutput {
            val s = t.shape
            // One channel, so NHWC [1,H,W,1], NCHW [1,1,H,W] and [1,H,W] share one memory order.
            val hw: IntArray = when {
                s.size == 4 && s[0] == 1 && s[3] == 1 && t.layout != "NCHW" -> intArrayOf(s[1], s[2])
                s.size == 4 && s[0] == 1 && s[1] == 1 -> intArrayOf(s[2], s[3])
                s.size == 3 && s[0] == 1 -> intArrayOf(s[1], s[2])
                else -> throw ManifestException(
                    "output ${t.name} has shape ${s.joinToString(",", "[", "]")}; " +
                        "expected one probability channel [1,H,W,1]"
                )
            }
            if ((t.dtype == DType.UINT8 || t.dtype == DType.INT8) && t.quantization == null) {
                throw ManifestException(
                    "output ${t.name} is ${t.dtype.manifestName} without quantization parameters; " +
                        "cannot map it back to a probability"
                )
            }
            val q = if (t.dtype == DType.UINT8 || t.dtype == DType.INT8) t.quantization else null
            return ForegroundOutput(t, hw[0], hw[1], t.dtype, q)
        }
    }
}

/** A manifest that the demo cannot use; the message says why in one line. */
class ManifestException(message: String) : RuntimeException(message)
