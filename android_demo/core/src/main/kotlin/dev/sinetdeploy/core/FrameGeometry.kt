package dev.sinetdeploy.core

/**
 * How a camera frame becomes the upright picture the user sees.
 *
 * CameraX hands frames in sensor orientation plus `rotationDegrees`, the clockwise rotation that
 * makes them upright for the current display rotation. The front camera's picture is also
 * mirrored, like a mirror. The core works in *display* coordinates (rotated, then mirrored): the
 * model sees the upright picture and the mask lands on exactly the pixels that are drawn.
 *
 * A display pixel (dx, dy) reads source pixel (sx, sy) with
 * `sx = xx*dx + xy*dy + x0` and `sy = yx*dx + yy*dy + y0`: rotation and mirroring are an exact
 * permutation of pixels, so rotating first and then resizing (as the Python golden data does with
 * `np.rot90`) gives identical numbers.
 */
class FrameGeometry(
    /** Width of the frame as the camera delivers it (sensor orientation). */
    val width: Int,
    /** Height of the frame as the camera delivers it. */
    val height: Int,
    /** Clockwise rotation that makes the frame upright: 0, 90, 180 or 270. */
    val rotationDegrees: Int,
    /** Mirror left-right after rotating (front camera). */
    val mirror: Boolean
) {
    /** Width of the displayed (upright) picture. */
    val displayWidth: Int
    /** Height of the displayed (upright) picture. */
    val displayHeight: Int

    internal val xx: Int
    internal val xy: Int
    internal val x0: Int
    internal val yx: Int
    internal val yy: Int
    internal val y0: Int

    init {
        require(width > 0 && height > 0) { "frame size ${width}x$height is empty" }
        val quarter = ((rotationDegrees % 360) + 360) % 360
        require(quarter % 90 == 0) { "rotation $rotationDegrees is not a multiple of 90" }
        val swap = quarter == 90 || quarter == 270
        displayWidth = if (swap) height else width
        displayHeight = if (swap) width else height
        // ux = mx*dx + mc undoes the mirror; then each rotation maps upright (ux, uy) to source.
        val mx = if (mirror) -1 else 1
        val mc = if (mirror) displayWidth - 1 else 0
        when (quarter) {
            0 -> { // sx = ux, sy = uy
                xx = mx; xy = 0; x0 = mc
                yx = 0; yy = 1; y0 = 0
            }
            90 -> { // sx = uy, sy = H-1-ux
                xx = 0; xy = 1; x0 = 0
                yx = -mx; yy = 0; y0 = height - 1 - mc
            }
            180 -> { // sx = W-1-ux, sy = H-1-uy
                xx = -mx; xy = 0; x0 = width - 1 - mc
                yx = 0; yy = -1; y0 = height - 1
            }
            else -> { // 270: sx = W-1-uy, sy = ux
                xx = 0; xy = -1; x0 = width - 1
                yx = mx; yy = 0; y0 = mc
            }
        }
    }

    /** Source column of display pixel (dx, dy). */
    fun sourceX(dx: Int, dy: Int): Int = xx * dx + xy * dy + x0

    /** Source row of display pixel (dx, dy). */
    fun sourceY(dx: Int, dy: Int): Int = yx * dx + yy * dy + y0

    override fun toString(): String =
        "FrameGeometry(${width}x$height, rot=$rotationDegrees, mirror=$mirror)"
}
