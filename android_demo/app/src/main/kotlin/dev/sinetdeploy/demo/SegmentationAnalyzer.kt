package dev.sinetdeploy.demo

import android.content.res.AssetManager
import android.os.SystemClock
import androidx.camera.core.ImageAnalysis
import androidx.camera.core.ImageProxy
import dev.sinetdeploy.core.Effect
import dev.sinetdeploy.core.FpsMeter
import dev.sinetdeploy.core.FrameGeometry
import dev.sinetdeploy.core.RgbaBufferSource
import dev.sinetdeploy.core.SegmentationPipeline

/** What the user picked; replaced as a whole from the UI thread, read by the analysis thread. */
data class Settings(
    val modelIndex: Int = 0,
    val accelerator: Accelerator = Accelerator.CPU,
    val effect: Effect = Effect.BLUR,
    val smoothing: Boolean = true,
    val frontCamera: Boolean = true
)

/** Numbers for the on-screen line. */
data class Stats(
    val model: String,
    val accelerator: String,
    val inferenceMs: Double,
    val totalMs: Double,
    val fps: Double,
    val frame: String,
    val note: String?
)

/**
 * The CameraX analyzer: every frame goes through the core's [SegmentationPipeline] with the
 * LiteRT interpreter, and the composited picture to [view].
 *
 * Threading: [analyze] and [release] run on the single analysis executor and are the only code
 * that touches the interpreter and the pipeline, so neither needs a lock; the UI thread only
 * swaps [settings] (a volatile immutable value). The interpreter is (re)created lazily on that
 * thread when the model or accelerator changes, and closed by [release] when the activity stops.
 */
class SegmentationAnalyzer(
    private val assets: AssetManager,
    private val models: List<BundledModel>,
    private val view: ResultView,
    private val threads: Int,
    private val onStats: (Stats) -> Unit,
    private val onError: (String) -> Unit
) : ImageAnalysis.Analyzer {

    @Volatile
    var settings = Settings()

    private var runner: LiteRtRunner? = null
    private var pipeline: SegmentationPipeline? = null
    private var openFor: Pair<Int, Accelerator>? = null
    private var failedFor: Pair<Int, Accelerator>? = null
    private var lastFront: Boolean? = null
    private val fps = FpsMeter()
    private val backdrop = GradientBackdrop(0xFF1A237E.toInt(), 0xFF00897B.toInt())

    override fun analyze(image: ImageProxy) {
        image.use { frame ->
            val s = settings
            val want = Pair(s.modelIndex, s.accelerator)
            if (want == failedFor) return // this choice already failed: wait for another one
            if (want != openFor) {
                release()
                try {
                    open(s)
                } catch (e: Exception) {
                    failedFor = want
                    onError("${models[s.modelIndex].assetName}: ${e.message}")
                    return
                }
            }
            val runner = this.runner ?: return
            val pipeline = this.pipeline ?: return
            if (lastFront != s.frontCamera) { // other camera: the old mask history is meaningless
                pipeline.reset()
                fps.reset()
                lastFront = s.frontCamera
            }
            pipeline.effect = s.effect
            pipeline.smoothingWeight = if (s.smoothing) SMOOTHING_WEIGHT else 1f

            // RGBA_8888 output: one plane, pixelStride 4, rows possibly padded (rowStride).
            val plane = frame.planes[0]
            val source = RgbaBufferSource(plane.buffer, frame.width, frame.height, plane.rowStride, plane.pixelStride)
            // rotationDegrees already accounts for the display rotation set on the use case;
            // the front camera's picture is mirrored like a mirror.
            val geometry = FrameGeometry(frame.width, frame.height, frame.imageInfo.rotationDegrees, s.frontCamera)
            val result = try {
                pipeline.process(source, geometry, runner)
            } catch (e: Exception) { // report, drop this model choice, keep the app alive
                failedFor = want
                release()
                onError("${models[s.modelIndex].assetName}: ${e.message}")
                return
            }

            val bitmap = view.obtain(result.width, result.height)
            bitmap.setPixels(result.argb, 0, result.width, 0, 0, result.width, result.height)
            view.publish(bitmap)
            onStats(
                Stats(
                    model = models[s.modelIndex].assetName,
                    accelerator = runner.accelerator.label,
                    inferenceMs = result.inferenceMs,
                    totalMs = result.totalMs,
                    fps = fps.tick(SystemClock.elapsedRealtimeNanos()),
                    frame = "${frame.width}x${frame.height} rot ${geometry.rotationDegrees}",
                    note = runner.fallbackReason
                )
            )
        }
    }

    private fun open(s: Settings) {
        val model = models[s.modelIndex]
        val mapped = ModelAssets.map(assets, model)
        runner = LiteRtRunner.open(mapped, model.manifest, s.accelerator, threads)
        pipeline = SegmentationPipeline(model.manifest).also { it.backdrop = backdrop }
        openFor = Pair(s.modelIndex, s.accelerator)
        failedFor = null
        lastFront = null
    }

    /** Closes the interpreter and its delegate. Call on the analysis executor only. */
    fun release() {
        runner?.close()
        runner = null
        pipeline = null
        openFor = null
    }

    companion object {
        /** Weight of the newest frame in the mask's temporal EMA when smoothing is on. */
        const val SMOOTHING_WEIGHT = 0.6f
    }
}
