package dev.sinetdeploy.demo

import android.content.Context
import android.graphics.Bitmap
import android.graphics.Canvas
import android.graphics.Paint
import android.graphics.Rect
import android.util.AttributeSet
import android.view.View
import java.util.ArrayDeque

/**
 * Shows the latest composited frame, scaled to fill the view (centre crop).
 *
 * Frames are produced on the analysis thread and drawn on the UI thread; three bitmaps rotate
 * between them so a bitmap is never written while it is drawn: the producer fills a *free* one
 * ([obtain]) and hands it over ([publish]); [onDraw] swaps the newest *pending* bitmap in front
 * and returns the old front to the free list. All exchanges happen under [lock].
 */
class ResultView @JvmOverloads constructor(
    context: Context, attrs: AttributeSet? = null
) : View(context, attrs) {
    private val lock = Any()
    private val free = ArrayDeque<Bitmap>()
    private var pending: Bitmap? = null
    private var front: Bitmap? = null // touched by the UI thread only (under lock when swapped)
    private val paint = Paint(Paint.FILTER_BITMAP_FLAG)
    private val src = Rect()
    private val dst = Rect()

    /** A bitmap of [width] x [height] that nobody is drawing (analysis thread). */
    fun obtain(width: Int, height: Int): Bitmap = synchronized(lock) {
        while (free.isNotEmpty()) {
            val b = free.poll()!!
            if (b.width == width && b.height == height) return b
            b.recycle() // frame size changed (camera switched): drop the old ones
        }
        Bitmap.createBitmap(width, height, Bitmap.Config.ARGB_8888)
    }

    /** Hands a filled bitmap to the UI thread; an undrawn older one goes back to the free list. */
    fun publish(bitmap: Bitmap) {
        synchronized(lock) {
            pending?.let { free.add(it) }
            pending = bitmap
        }
        postInvalidate()
    }

    /** Forget every frame (no model, camera stopped). UI thread. */
    fun clear() {
        synchronized(lock) {
            pending?.let { free.add(it) }
            pending = null
            front?.let { free.add(it) }
            front = null
        }
        invalidate()
    }

    override fun onDraw(canvas: Canvas) {
        super.onDraw(canvas)
        val bitmap = synchronized(lock) {
            pending?.let { next ->
                front?.let { free.add(it) }
                front = next
                pending = null
            }
            front
        } ?: return
        // Centre crop: scale so the frame covers the whole view, cut what sticks out.
        val scale = Math.max(width.toFloat() / bitmap.width, height.toFloat() / bitmap.height)
        val cropW = (width / scale).toInt().coerceAtMost(bitmap.width)
        val cropH = (height / scale).toInt().coerceAtMost(bitmap.height)
        val left = (bitmap.width - cropW) / 2
        val top = (bitmap.height - cropH) / 2
        src.set(left, top, left + cropW, top + cropH)
        dst.set(0, 0, width, height)
        canvas.drawBitmap(bitmap, src, dst, paint)
    }
}
