package dev.sinetdeploy.core

/**
 * Display-size drawing: the upright frame, the alpha mask, and the composite of the two over a
 * background. Pixels are `0xAARRGGBB` ints, as `android.graphics.Bitmap.setPixels` takes them.
 */
object Compositor {
    /** Copies the display picture of [src] (rotated and mirrored by [g]) into [dst], opaque. */
    @JvmStatic
    fun displayFrame(src: PixelSource, g: FrameGeometry, dst: IntArray) {
        val w = g.displayWidth
        require(dst.size >= w * g.displayHeight) { "destination too small for ${w}x${g.displayHeight}" }
        for (dy in 0 until g.displayHeight) {
            val row = dy * w
            for (dx in 0 until w) {
                dst[row + dx] = OPAQUE or src.rgb(g.sourceX(dx, dy), g.sourceY(dx, dy))
            }
        }
    }

    /**
     * Probability (model resolution [inH] x [inW]) -> alpha 0..255 at [outH] x [outW]: bilinear
     * upscale of the probability (no rounding in between), then `rint(clip(p, 0, 1) * 255)`.
     * [scratch] receives the upscaled probability and must hold outH * outW floats.
     */
    @JvmStatic
    fun alphaMask(
        prob: FloatArray, inH: Int, inW: Int, outH: Int, outW: Int,
        scratch: FloatArray, alpha: IntArray
    ) {
        val n = outH * outW
        require(alpha.size >= n) { "alpha array too small" }
        Bilinear.resizeFloat(prob, inH, inW, outH, outW, scratch)
        for (i in 0 until n) alpha[i] = toAlpha(scratch[i])
    }

    /** One probability as an 8-bit alpha, the rounding the golden data uses. */
    @JvmStatic
    fun toAlpha(p: Float): Int {
        val c = if (p < 0f) 0f else if (p > 1f) 1f else p
        return Bilinear.roundToByte(c * 255f)
    }

    /** `dst = fg * a + bg * (1 - a)` per channel, with [alpha] in 0..255; [n] pixels. */
    @JvmStatic
    fun blend(fg: IntArray, bg: IntArray, alpha: IntArray, dst: IntArray, n: Int) {
        for (i in 0 until n) {
            val a = alpha[i]
            val f = fg[i]
            val b = bg[i]
            when (a) {
                255 -> dst[i] = f or OPAQUE
                0 -> dst[i] = b or OPAQUE
                else -> {
                    val ia = 255 - a
                    val r = (((f shr 16) and 0xFF) * a + ((b shr 16) and 0xFF) * ia + 127) / 255
                    val g = (((f shr 8) and 0xFF) * a + ((b shr 8) and 0xFF) * ia + 127) / 255
                    val bl = ((f and 0xFF) * a + (b and 0xFF) * ia + 127) / 255
                    dst[i] = OPAQUE or (r shl 16) or (g shl 8) or bl
                }
            }
        }
    }

    /** Debug view: the frame with the person tinted by [tint] in proportion to alpha / 2. */
    @JvmStatic
    fun tint(fg: IntArray, alpha: IntArray, tint: Int, dst: IntArray, n: Int) {
        val tr = (tint shr 16) and 0xFF
        val tg = (tint shr 8) and 0xFF
        val tb = tint and 0xFF
        for (i in 0 until n) {
            val a = alpha[i] / 2
            val ia = 255 - a
            val f = fg[i]
            val r = (((f shr 16) and 0xFF) * ia + tr * a + 127) / 255
            val g = (((f shr 8) and 0xFF) * ia + tg * a + 127) / 255
            val b = ((f and 0xFF) * ia + tb * a + 127) / 255
            dst[i] = OPAQUE or (r shl 16) or (g shl 8) or b
        }
    }

    internal const val OPAQUE = -0x1000000 // 0xFF000000
}
