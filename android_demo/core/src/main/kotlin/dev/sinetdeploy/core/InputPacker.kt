package dev.sinetdeploy.core

import java.nio.ByteBuffer

/**
 * Camera frame -> model input tensor, as the manifest's [ImageInput] describes it.
 *
 * The display picture (frame rotated upright and mirrored, see [FrameGeometry]) is resized whole
 * to the model's H x W — no crop, as the checkpoint was trained — with the exact arithmetic of
 * `sinet_deploy.models.preprocessing.resize_bilinear` (float32 interpolation, `np.rint` rounding
 * half to even), so a frame gives the same uint8 pixels here as `image_input` gives in Python.
 * The levels are then stored as the input's dtype: uint8 as is, int8/uint8 through the manifest's
 * quantization (`q = rint(v / scale) + zero_point`), float32 as the level value.
 */
class InputPacker(private val input: ImageInput) {
    private val h = input.height
    private val w = input.width
    private val levels = IntArray(h * w * 3)
    private var ay: ResizeAxis? = null
    private var ax: ResizeAxis? = null

    /** Bytes [pack] writes. */
    val byteSize: Int get() = input.spec.byteSize

    /**
     * Resizes the display picture of [src] into [h] x [w] RGB levels (0..255), row-major, RGB
     * interleaved; returns an internal array that the next call overwrites.
     */
    fun resize(src: PixelSource, geometry: FrameGeometry): IntArray {
        require(src.width == geometry.width && src.height == geometry.height) {
            "source ${src.width}x${src.height} does not match $geometry"
        }
        val ayy = axis(ay, geometry.displayHeight, h).also { ay = it }
        val axx = axis(ax, geometry.displayWidth, w).also { ax = it }
        for (oy in 0 until h) {
            val y0 = ayy.i0[oy]
            val y1 = ayy.i1[oy]
            val wy = ayy.w[oy]
            val iwy = 1f - wy
            for (ox in 0 until w) {
                val x0 = axx.i0[ox]
                val x1 = axx.i1[ox]
                val wx = axx.w[ox]
                val iwx = 1f - wx
                val p00 = src.rgb(geometry.sourceX(x0, y0), geometry.sourceY(x0, y0))
                val p01 = src.rgb(geometry.sourceX(x1, y0), geometry.sourceY(x1, y0))
                val p10 = src.rgb(geometry.sourceX(x0, y1), geometry.sourceY(x0, y1))
                val p11 = src.rgb(geometry.sourceX(x1, y1), geometry.sourceY(x1, y1))
                val o = (oy * w + ox) * 3
                var shift = 16
                for (c in 0 until 3) {
                    val f00 = ((p00 shr shift) and 0xFF).toFloat()
                    val f01 = ((p01 shr shift) and 0xFF).toFloat()
                    val f10 = ((p10 shr shift) and 0xFF).toFloat()
                    val f11 = ((p11 shr shift) and 0xFF).toFloat()
                    // Same float32 operation order as the NumPy reference: rows, then columns.
                    val top = f00 * iwx + f01 * wx
                    val bot = f10 * iwx + f11 * wx
                    levels[o + c] = Bilinear.roundToByte(top * iwy + bot * wy)
                    shift -= 8
                }
            }
        }
        return levels
    }

    /**
     * Writes the model input for [src] into [out] from its position 0 (absolute writes; the
     * position is left alone). Multi-byte types use [out]'s byte order: give it
     * `ByteOrder.nativeOrder()` for LiteRT.
     */
    fun pack(src: PixelSource, geometry: FrameGeometry, out: ByteBuffer) {
        require(out.capacity() >= byteSize) { "input buffer holds ${out.capacity()} bytes, needs $byteSize" }
        store(resize(src, geometry), out)
    }

    /** Stores already-resized levels ([h] x [w] x 3, RGB) as the input's dtype and layout. */
    fun store(rgbLevels: IntArray, out: ByteBuffer) {
        val planar = input.layout == "NCHW"
        val plane = h * w
        val q = input.quantization
        for (p in 0 until plane) {
            for (c in 0 until 3) {
                val v = rgbLevels[p * 3 + c]
                val idx = if (planar) c * plane + p else p * 3 + c
                when (input.dtype) {
                    DType.UINT8 -> out.put(idx, (if (q == null) v else q.quantize(v.toFloat(), DType.UINT8)).toByte())
                    DType.INT8 -> out.put(idx, q!!.quantize(v.toFloat(), DType.INT8).toByte())
                    DType.FLOAT32 -> out.putFloat(idx * 4, v.toFloat())
                    DType.FLOAT16 -> throw IllegalStateException("float16 inputs are refused by ModelManifest")
                }
            }
        }
    }

    private fun axis(cached: ResizeAxis?, inSize: Int, outSize: Int): ResizeAxis =
        if (cached != null && cached.inSize == inSize && cached.outSize == outSize) cached
        else ResizeAxis(inSize, outSize)
}
