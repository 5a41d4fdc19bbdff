package dev.sinetdeploy.core

/**
 * Sampling positions of one axis for a bilinear resize from [inSize] to [outSize] samples, with
 * OpenCV `INTER_LINEAR` semantics: half-pixel centres, clamped at the edges, no antialiasing.
 *
 * This mirrors `sinet_deploy.models.preprocessing._axis` operation for operation — positions in
 * double precision, weights rounded to float — so that the interpolation below reproduces the
 * Python tool's float32 arithmetic bit for bit.
 */
class ResizeAxis(val inSize: Int, val outSize: Int) {
    /** Lower neighbour of each output sample. */
    val i0 = IntArray(outSize)
    /** Upper neighbour (clamped to the last input sample). */
    val i1 = IntArray(outSize)
    /** Weight of the upper neighbour. */
    val w = FloatArray(outSize)

    init {
        require(inSize > 0 && outSize > 0) { "resize $inSize -> $outSize is empty" }
        val scale = inSize.toDouble() / outSize.toDouble()
        for (o in 0 until outSize) {
            var pos = (o + 0.5) * scale - 0.5
            if (pos < 0.0) pos = 0.0
            if (pos > (inSize - 1).toDouble()) pos = (inSize - 1).toDouble()
            val lo = Math.floor(pos).toInt()
            i0[o] = lo
            i1[o] = Math.min(lo + 1, inSize - 1)
            w[o] = (pos - lo).toFloat()
        }
    }
}

/** Bilinear resizes with the Python tool's exact arithmetic. */
object Bilinear {
    /**
     * Resizes a single-channel float map ([inH] x [inW], row-major) to [outH] x [outW] without
     * rounding: the mask upscale. Same float32 operation order as the uint8 image resize, minus
     * the final `rint`, matching `sinet_deploy.android.golden.resize_bilinear_float`.
     */
    @JvmStatic
    fun resizeFloat(src: FloatArray, inH: Int, inW: Int, outH: Int, outW: Int, dst: FloatArray) {
        require(src.size >= inH * inW) { "source smaller than ${inH}x$inW" }
        require(dst.size >= outH * outW) { "destination smaller than ${outH}x$outW" }
        val ax = ResizeAxis(inW, outW)
        val ay = ResizeAxis(inH, outH)
        resizeFloat(src, inW, ay, ax, dst)
    }

    /** As above with precomputed axes (reused frame after frame). */
    @JvmStatic
    fun resizeFloat(src: FloatArray, inW: Int, ay: ResizeAxis, ax: ResizeAxis, dst: FloatArray) {
        val outW = ax.outSize
        for (oy in 0 until ay.outSize) {
            val r0 = ay.i0[oy] * inW
            val r1 = ay.i1[oy] * inW
            val wy = ay.w[oy]
            val iwy = 1f - wy
            val base = oy * outW
            for (ox in 0 until outW) {
                val x0 = ax.i0[ox]
                val x1 = ax.i1[ox]
                val wx = ax.w[ox]
                val iwx = 1f - wx
                val top = src[r0 + x0] * iwx + src[r0 + x1] * wx
                val bot = src[r1 + x0] * iwx + src[r1 + x1] * wx
                dst[base + ox] = top * iwy + bot * wy
            }
        }
    }

    /** `np.rint` then clip to 0..255: round half to even, as the Python tool rounds. */
    @JvmStatic
    fun roundToByte(v: Float): Int {
        val r = Math.rint(v.toDouble())
        return if (r <= 0.0) 0 else if (r >= 255.0) 255 else r.toInt()
    }
}
