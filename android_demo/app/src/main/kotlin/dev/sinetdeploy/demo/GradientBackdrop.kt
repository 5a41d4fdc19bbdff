package dev.sinetdeploy.demo

import android.graphics.Bitmap
import android.graphics.Canvas
import android.graphics.LinearGradient
import android.graphics.Paint
import android.graphics.Shader
import dev.sinetdeploy.core.Backdrop

/** The replacement background: a diagonal gradient, rendered once per frame size. */
class GradientBackdrop(private val from: Int, private val to: Int) : Backdrop {
    private var pixels = IntArray(0)
    private var w = 0
    private var h = 0

    override fun pixels(width: Int, height: Int): IntArray {
        if (width != w || height != h) {
            val bitmap = Bitmap.createBitmap(width, height, Bitmap.Config.ARGB_8888)
            val paint = Paint().apply {
                shader = LinearGradient(0f, 0f, width.toFloat(), height.toFloat(), from, to, Shader.TileMode.CLAMP)
            }
            Canvas(bitmap).drawRect(0f, 0f, width.toFloat(), height.toFloat(), paint)
            pixels = IntArray(width * height)
            bitmap.getPixels(pixels, 0, width, 0, 0, width, height)
            bitmap.recycle()
            w = width
            h = height
        }
        return pixels
    }
}
