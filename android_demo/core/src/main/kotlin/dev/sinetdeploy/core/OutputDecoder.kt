package dev.sinetdeploy.core

import java.nio.ByteBuffer

/**
 * Model output tensor -> person probability per model pixel, as the manifest's [ForegroundOutput]
 * describes it: float32 as is, float16 widened, uint8/int8 dequantized with
 * `(q - zero_point) * scale` in float32 (the same arithmetic as the Python golden generator).
 */
class OutputDecoder(private val output: ForegroundOutput) {
    /** Pixels in the probability map (H * W). */
    val size: Int get() = output.height * output.width

    /** Reads [buf] from index 0 (absolute reads; multi-byte values in [buf]'s byte order). */
    fun decode(buf: ByteBuffer, dst: FloatArray) {
        val n = size
        require(dst.size >= n) { "destination holds ${dst.size} values, needs $n" }
        require(buf.capacity() >= n * output.dtype.bytesPerElement) { "output buffer too small" }
        val q = output.quantization
        when (output.dtype) {
            DType.FLOAT32 -> for (i in 0 until n) dst[i] = buf.getFloat(i * 4)
            DType.FLOAT16 -> for (i in 0 until n) dst[i] = Half.toFloat(buf.getShort(i * 2))
            DType.UINT8 -> for (i in 0 until n) dst[i] = q!!.dequantize(buf.get(i).toInt() and 0xFF)
            DType.INT8 -> for (i in 0 until n) dst[i] = q!!.dequantize(buf.get(i).toInt())
        }
    }
}

/** IEEE 754 half precision to float (for float16 outputs; exact, subnormals included). */
object Half {
    @JvmStatic
    fun toFloat(bits: Short): Float {
        val h = bits.toInt() and 0xFFFF
        val sign = (h ushr 15) and 1
        val exp = (h ushr 10) and 0x1F
        val mant = h and 0x3FF
        val magnitude: Float = when (exp) {
            0 -> mant * (1f / (1 shl 24)) // subnormal: mant * 2^-24
            0x1F -> if (mant == 0) Float.POSITIVE_INFINITY else Float.NaN
            else -> java.lang.Float.intBitsToFloat(((exp + 112) shl 23) or (mant shl 13))
        }
        return if (sign == 1) -magnitude else magnitude
    }
}

/**
 * Exponential moving average of the probability map over frames, to calm flicker at the
 * silhouette: `s = s_prev + weight * (p - s_prev)`; the first frame (or one after [reset]) is
 * taken as is. [weight] = 1 turns smoothing off.
 */
class TemporalSmoother(weight: Float) {
    /** Weight of the newest frame, 0 < weight <= 1. */
    var weight: Float = weight
        set(value) {
            require(value > 0f && value <= 1f) { "smoothing weight $value is not in (0, 1]" }
            field = value
        }

    private var state: FloatArray? = null

    init {
        this.weight = weight
    }

    /** Forget the history (camera switched, model changed). */
    fun reset() {
        state = null
    }

    /** Smooths [prob] in place (its first [n] values) and remembers the result. */
    fun apply(prob: FloatArray, n: Int = prob.size) {
        val s = state
        if (s == null || s.size != n || weight >= 1f) {
            state = prob.copyOf(n)
            return
        }
        val a = weight
        for (i in 0 until n) {
            val v = s[i] + a * (prob[i] - s[i])
            s[i] = v
            prob[i] = v
        }
    }
}
