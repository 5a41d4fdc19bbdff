package dev.sinetdeploy.core

/**
 * A cheap strong blur for the background: average-downscale by [factor], two passes of a
 * separable box blur of [radius] (close to a Gaussian), bilinear upscale back. Costs a few
 * milliseconds on a phone CPU at 640x480, with no RenderScript (deprecated) or GPU needed.
 */
class BackgroundBlur(val factor: Int = 4, val radius: Int = 3) {
    private var small = IntArray(0)
    private var tmp = IntArray(0)

    init {
        require(factor >= 1) { "factor $factor < 1" }
        require(radius >= 0) { "radius $radius < 0" }
    }

    /** Blurs [src] ([w] x [h] ARGB) into [dst] (same size, opaque). */
    fun blur(src: IntArray, w: Int, h: Int, dst: IntArray) {
        val sw = (w + factor - 1) / factor
        val sh = (h + factor - 1) / factor
        if (small.size < sw * sh * 3) {
            small = IntArray(sw * sh * 3)
            tmp = IntArray(sw * sh * 3)
        }
        downscale(src, w, h, sw, sh)
        for (pass in 0 until 2) {
            boxHorizontal(small, tmp, sw, sh)
            boxVertical(tmp, small, sw, sh)
        }
        upscale(sw, sh, w, h, dst)
    }

    /** Mean of each factor x factor block (partial blocks at the edges average what they hold). */
    private fun downscale(src: IntArray, w: Int, h: Int, sw: Int, sh: Int) {
        for (sy in 0 until sh) {
            val yEnd = Math.min(h, (sy + 1) * factor)
            for (sx in 0 until sw) {
                val xEnd = Math.min(w, (sx + 1) * factor)
                var r = 0
                var g = 0
                var b = 0
                var count = 0
                for (y in sy * factor until yEnd) {
                    for (x in sx * factor until xEnd) {
                        val p = src[y * w + x]
                        r += (p shr 16) and 0xFF
                        g += (p shr 8) and 0xFF
                        b += p and 0xFF
                        count++
                    }
                }
                val o = (sy * sw + sx) * 3
                small[o] = (r + count / 2) / count
                small[o + 1] = (g + count / 2) / count
                small[o + 2] = (b + count / 2) / count
            }
        }
    }

    /** Box filter along rows, edge samples repeated; interleaved RGB ints. */
    internal fun boxHorizontal(src: IntArray, dst: IntArray, w: Int, h: Int) {
        val n = 2 * radius + 1
        for (y in 0 until h) {
            val row = y * w
            for (c in 0 until 3) {
                var sum = 0
                for (k in -radius..radius) sum += src[(row + clamp(k, w)) * 3 + c]
                for (x in 0 until w) {
                    dst[(row + x) * 3 + c] = (sum + n / 2) / n
                    sum += src[(row + clamp(x + radius + 1, w)) * 3 + c] - src[(row + clamp(x - radius, w)) * 3 + c]
                }
            }
        }
    }

    /** Box filter along columns, edge samples repeated. */
    internal fun boxVertical(src: IntArray, dst: IntArray, w: Int, h: Int) {
        val n = 2 * radius + 1
        for (x in 0 until w) {
            for (c in 0 until 3) {
                var sum = 0
                for (k in -radius..radius) sum += src[(clamp(k, h) * w + x) * 3 + c]
                for (y in 0 until h) {
                    dst[(y * w + x) * 3 + c] = (sum + n / 2) / n
                    sum += src[(clamp(y + radius + 1, h) * w + x) * 3 + c] - src[(clamp(y - radius, h) * w + x) * 3 + c]
                }
            }
        }
    }

    private fun upscale(sw: Int, sh: Int, w: Int, h: Int, dst: IntArray) {
        val ax = ResizeAxis(sw, w)
        val ay = ResizeAxis(sh, h)
        for (y in 0 until h) {
            val r0 = ay.i0[y] * sw
            val r1 = ay.i1[y] * sw
            val wy = ay.w[y]
            for (x in 0 until w) {
                val wx = ax.w[x]
                var px = Compositor.OPAQUE
                var shift = 16
                for (c in 0 until 3) {
                    val top = small[(r0 + ax.i0[x]) * 3 + c] * (1f - wx) + small[(r0 + ax.i1[x]) * 3 + c] * wx
                    val bot = small[(r1 + ax.i0[x]) * 3 + c] * (1f - wx) + small[(r1 + ax.i1[x]) * 3 + c] * wx
                    px = px or (Bilinear.roundToByte(top * (1f - wy) + bot * wy) shl shift)
                    shift -= 8
                }
                dst[y * w + x] = px
            }
        }
    }

    /** Intermediate RGB buffer after the box passes (tests read it). */
    internal fun smallRgb(): IntArray = small

    private fun clamp(i: Int, n: Int): Int = if (i < 0) 0 else if (i >= n) n - 1 else i
}
