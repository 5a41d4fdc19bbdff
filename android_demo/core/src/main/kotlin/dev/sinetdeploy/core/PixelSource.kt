package dev.sinetdeploy.core

import java.nio.ByteBuffer

/** Read access to an 8-bit RGB picture in its own (sensor) orientation. */
interface PixelSource {
    val width: Int
    val height: Int

    /** The pixel at column [x], row [y] as `0xRRGGBB` (any alpha bits are dropped). */
    fun rgb(x: Int, y: Int): Int
}

/**
 * RGBA bytes, e.g. CameraX `ImageAnalysis.OUTPUT_IMAGE_FORMAT_RGBA_8888`: plane 0 with its
 * `rowStride` (which may exceed `4 * width`) and `pixelStride` (4). Reads are absolute, so the
 * buffer's position is left alone.
 */
class RgbaBufferSource(
    private val buffer: ByteBuffer,
    override val width: Int,
    override val height: Int,
    private val rowStride: Int = width * 4,
    private val pixelStride: Int = 4,
    private val offset: Int = 0
) : PixelSource {
    init {
        require(pixelStride >= 3) { "pixelStride $pixelStride is too small for RGB" }
        require(rowStride >= width * pixelStride) { "rowStride $rowStride < width*pixelStride" }
        val last = offset + (height - 1) * rowStride + (width - 1) * pixelStride + 2
        require(last < buffer.limit()) { "buffer of ${buffer.limit()} bytes is too small for ${width}x$height" }
    }

    override fun rgb(x: Int, y: Int): Int {
        val i = offset + y * rowStride + x * pixelStride
        val r = buffer.get(i).toInt() and 0xFF
        val g = buffer.get(i + 1).toInt() and 0xFF
        val b = buffer.get(i + 2).toInt() and 0xFF
        return (r shl 16) or (g shl 8) or b
    }
}

/** ARGB ints as `android.graphics.Bitmap.getPixels` returns them (row [stride] in pixels). */
class ArgbIntSource(
    private val pixels: IntArray,
    override val width: Int,
    override val height: Int,
    private val stride: Int = width,
    private val offset: Int = 0
) : PixelSource {
    init {
        require(stride >= width) { "stride $stride < width $width" }
        require(offset + (height - 1) * stride + width <= pixels.size) { "pixel array too small" }
    }

    override fun rgb(x: Int, y: Int): Int = pixels[offset + y * stride + x] and 0xFFFFFF
}
