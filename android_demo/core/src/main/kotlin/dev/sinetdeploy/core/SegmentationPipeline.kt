package dev.sinetdeploy.core

import java.nio.ByteBuffer
import java.nio.ByteOrder

/** Runs the model once: reads [input], fills [output] (LiteRT's `Interpreter.run` on Android). */
interface ModelRunner {
    fun run(input: ByteBuffer, output: ByteBuffer)
}

/** What is drawn behind (or over) the person. */
enum class Effect { BLUR, REPLACE, MASK, NONE }

/** A replacement background at the display size. */
interface Backdrop {
    /** Opaque ARGB pixels, [width] x [height]; may return the same array on every call. */
    fun pixels(width: Int, height: Int): IntArray
}

/** One colour everywhere. */
class SolidBackdrop(private val color: Int) : Backdrop {
    private var cache = IntArray(0)

    override fun pixels(width: Int, height: Int): IntArray {
        if (cache.size != width * height) cache = IntArray(width * height)
        java.util.Arrays.fill(cache, color or Compositor.OPAQUE)
        return cache
    }
}

/** One processed frame: [argb] ([width] x [height], display orientation) and timings. */
class FrameResult(
    val argb: IntArray,
    val width: Int,
    val height: Int,
    /** Time inside [ModelRunner.run] only, milliseconds. */
    val inferenceMs: Double,
    /** Preprocess + inference + postprocess + composite, milliseconds. */
    val totalMs: Double
)

/**
 * Frame in, composited frame out; everything except the interpreter call, so the same code runs
 * on the phone and in the JVM tests. Not thread-safe: call it from one worker thread (the
 * CameraX analyzer executor); buffers are reused from frame to frame.
 */
class SegmentationPipeline(val manifest: ModelManifest) {
    private val packer = InputPacker(manifest.input)
    private val decoder = OutputDecoder(manifest.output)
    private val smoother = TemporalSmoother(1f)
    private val blur = BackgroundBlur()

    /** Model input tensor, native byte order as LiteRT wants it. */
    val inputBuffer: ByteBuffer = ByteBuffer.allocateDirect(manifest.input.spec.byteSize).order(ByteOrder.nativeOrder())

    /** Model output tensor. */
    val outputBuffer: ByteBuffer = ByteBuffer.allocateDirect(manifest.output.spec.byteSize).order(ByteOrder.nativeOrder())

    /** Probability map of the last frame (after smoothing), model resolution. */
    val probability = FloatArray(decoder.size)

    var effect: Effect = Effect.BLUR
    var backdrop: Backdrop = SolidBackdrop(0x2E7D32)
    /** Debug tint of [Effect.MASK]. */
    var maskTint: Int = 0x00E676

    /** Weight of the newest frame in the temporal EMA; 1 = no smoothing. */
    var smoothingWeight: Float
        get() = smoother.weight
        set(value) {
            smoother.weight = value
        }

    private var frame = IntArray(0)
    private var background = IntArray(0)
    private var alpha = IntArray(0)
    private var upscaled = FloatArray(0)
    private var out = IntArray(0)

    /** Forget the temporal history (call when the camera or the model changes). */
    fun reset() = smoother.reset()

    /**
     * Processes one camera frame; [FrameResult.argb] is reused by the next call, so draw or copy
     * it before then.
     */
    fun process(src: PixelSource, geometry: FrameGeometry, runner: ModelRunner): FrameResult {
        val t0 = System.nanoTime()
        packer.pack(src, geometry, inputBuffer)
        val t1 = System.nanoTime()
        runner.run(inputBuffer, outputBuffer)
        val t2 = System.nanoTime()
        decoder.decode(outputBuffer, probability)
        smoother.apply(probability, decoder.size)

        val w = geometry.displayWidth
        val h = geometry.displayHeight
        val n = w * h
        if (frame.size != n) {
            frame = IntArray(n)
            background = IntArray(n)
            alpha = IntArray(n)
            upscaled = FloatArray(n)
            out = IntArray(n)
        }
        Compositor.displayFrame(src, geometry, frame)
        if (effect != Effect.NONE) {
            Compositor.alphaMask(probability, manifest.output.height, manifest.output.width, h, w, upscaled, alpha)
        }
        when (effect) {
            Effect.BLUR -> {
                blur.blur(frame, w, h, background)
                Compositor.blend(frame, background, alpha, out, n)
            }
            Effect.REPLACE -> Compositor.blend(frame, backdrop.pixels(w, h), alpha, out, n)
            Effect.MASK -> Compositor.tint(frame, alpha, maskTint, out, n)
            Effect.NONE -> System.arraycopy(frame, 0, out, 0, n)
        }
        val t3 = System.nanoTime()
        return FrameResult(out, w, h, (t2 - t1) / 1e6, (t3 - t0) / 1e6)
    }

    /** Alpha (0..255) of the last processed frame at display size. */
    fun lastAlpha(): IntArray = alpha
}

/** Frames per second from frame timestamps, smoothed so the number is readable on screen. */
class FpsMeter(private val weight: Double = 0.1) {
    private var lastNanos = -1L
    private var fps = 0.0

    /** Records a frame shown at [nanos]; returns the current estimate. */
    fun tick(nanos: Long): Double {
        if (lastNanos >= 0 && nanos > lastNanos) {
            val instant = 1e9 / (nanos - lastNanos)
            fps = if (fps == 0.0) instant else fps + weight * (instant - fps)
        }
        lastNanos = nanos
        return fps
    }

    /** Start over (camera switched). */
    fun reset() {
        lastNanos = -1L
        fps = 0.0
    }
}
