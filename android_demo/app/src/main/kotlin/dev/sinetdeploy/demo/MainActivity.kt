package dev.sinetdeploy.demo

import android.Manifest
import android.content.pm.PackageManager
import android.hardware.display.DisplayManager
import android.os.Build
import android.os.Bundle
import android.util.Size
import android.view.Surface
import android.view.View
import android.widget.AdapterView
import android.widget.ArrayAdapter
import android.widget.Button
import android.widget.CheckBox
import android.widget.Spinner
import android.widget.TextView
import android.widget.Toast
import androidx.activity.result.contract.ActivityResultContracts
import androidx.appcompat.app.AppCompatActivity
import androidx.camera.core.CameraSelector
import androidx.camera.core.ImageAnalysis
import androidx.camera.core.resolutionselector.AspectRatioStrategy
import androidx.camera.core.resolutionselector.ResolutionSelector
import androidx.camera.core.resolutionselector.ResolutionStrategy
import androidx.camera.lifecycle.ProcessCameraProvider
import androidx.core.content.ContextCompat
import dev.sinetdeploy.core.Effect
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors

/**
 * Live portrait segmentation: CameraX frames -> SINet (LiteRT) -> background blur/replacement.
 *
 * Lifecycle: the camera is bound to this activity's lifecycle (CameraX stops it at ON_STOP and
 * releases it at ON_DESTROY); the interpreter is closed on the analysis thread at [onStop] and
 * reopened lazily with the next frame after [onStart]; [onDestroy] unbinds, closes and shuts the
 * executor down. Threading: all inference on [analysisExecutor]; views only on the main thread.
 * Rotation: the activity survives rotation (configChanges in the manifest); a display listener
 * keeps ImageAnalysis' target rotation equal to the display's, so each frame's rotationDegrees
 * says how to turn it upright (also for 180-degree flips, which bring no configuration change).
 */
class MainActivity : AppCompatActivity() {
    private lateinit var resultView: ResultView
    private lateinit var statsView: TextView
    private var models: List<BundledModel> = emptyList()
    private var analyzer: SegmentationAnalyzer? = null
    private var analysis: ImageAnalysis? = null
    private var cameraProvider: ProcessCameraProvider? = null
    private val analysisExecutor: ExecutorService = Executors.newSingleThreadExecutor { r ->
        Thread(r, "sinet-analysis")
    }

    private val requestCamera = registerForActivityResult(ActivityResultContracts.RequestPermission()) { granted ->
        if (granted) startCamera() else statsView.text = getString(R.string.camera_permission_denied)
    }

    private val displayListener = object : DisplayManager.DisplayListener {
        override fun onDisplayAdded(displayId: Int) = Unit
        override fun onDisplayRemoved(displayId: Int) = Unit
        override fun onDisplayChanged(displayId: Int) {
            analysis?.targetRotation = displayRotation()
        }
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(R.layout.activity_main)
        resultView = findViewById(R.id.result)
        statsView = findViewById(R.id.stats)

        val (found, problems) = ModelAssets.list(assets)
        models = found
        if (models.isEmpty()) {
            statsView.text = (listOf(getString(R.string.no_model)) + problems).joinToString("\n")
            return
        }
        if (problems.isNotEmpty()) Toast.makeText(this, problems.joinToString("\n"), Toast.LENGTH_LONG).show()

        val threads = Runtime.getRuntime().availableProcessors().coerceIn(1, 4)
        analyzer = SegmentationAnalyzer(
            assets, models, resultView, threads,
            onStats = { s -> runOnUiThread { showStats(s) } },
            onError = { msg -> runOnUiThread { statsView.text = msg } }
        )
        setUpControls()
        getSystemService(DisplayManager::class.java).registerDisplayListener(displayListener, null)

        if (ContextCompat.checkSelfPermission(this, Manifest.permission.CAMERA) == PackageManager.PERMISSION_GRANTED) {
            startCamera()
        } else {
            requestCamera.launch(Manifest.permission.CAMERA)
        }
    }

    private fun setUpControls() {
        val analyzer = analyzer ?: return
        val modelSpinner = findViewById<Spinner>(R.id.model)
        modelSpinner.adapter = ArrayAdapter(this, android.R.layout.simple_spinner_dropdown_item, models.map { it.label })
        modelSpinner.onItemSelectedListener = onSelected { i -> analyzer.settings = analyzer.settings.copy(modelIndex = i) }
        findViewById<Spinner>(R.id.delegate).onItemSelectedListener = onSelected { i ->
            analyzer.settings = analyzer.settings.copy(accelerator = Accelerator.values()[i])
        }
        val effects = arrayOf(Effect.BLUR, Effect.REPLACE, Effect.MASK, Effect.NONE) // order of @array/effects
        findViewById<Spinner>(R.id.effect).onItemSelectedListener = onSelected { i ->
            analyzer.settings = analyzer.settings.copy(effect = effects[i])
        }
        findViewById<CheckBox>(R.id.smoothing).setOnCheckedChangeListener { _, checked ->
            analyzer.settings = analyzer.settings.copy(smoothing = checked)
        }
        findViewById<Button>(R.id.flip).setOnClickListener {
            analyzer.settings = analyzer.settings.copy(frontCamera = !analyzer.settings.frontCamera)
            bindCamera()
        }
    }

    private fun onSelected(action: (Int) -> Unit) = object : AdapterView.OnItemSelectedListener {
        override fun onItemSelected(parent: AdapterView<*>?, view: View?, position: Int, id: Long) = action(position)
        override fun onNothingSelected(parent: AdapterView<*>?) = Unit
    }

    private fun startCamera() {
        val future = ProcessCameraProvider.getInstance(this)
        future.addListener({
            if (isDestroyed) return@addListener
            cameraProvider = future.get()
            bindCamera()
        }, ContextCompat.getMainExecutor(this))
    }

    /** (Re)binds ImageAnalysis to the chosen camera; falls back to the other lens if absent. */
    private fun bindCamera() {
        val provider = cameraProvider ?: return
        val analyzer = analyzer ?: return
        var front = analyzer.settings.frontCamera
        val frontSelector = CameraSelector.DEFAULT_FRONT_CAMERA
        val backSelector = CameraSelector.DEFAULT_BACK_CAMERA
        if (!hasCamera(provider, if (front) frontSelector else backSelector)) {
            front = !front
            analyzer.settings = analyzer.settings.copy(frontCamera = front)
            Toast.makeText(this, "only the ${if (front) "front" else "back"} camera is available", Toast.LENGTH_SHORT).show()
        }
        // 640x480 (4:3) is plenty for a 224x224 model and keeps compositing cheap on the CPU.
        val resolution = ResolutionSelector.Builder()
            .setAspectRatioStrategy(AspectRatioStrategy.RATIO_4_3_FALLBACK_AUTO_STRATEGY)
            .setResolutionStrategy(
                ResolutionStrategy(Size(640, 480), ResolutionStrategy.FALLBACK_RULE_CLOSEST_LOWER_THEN_HIGHER)
            )
            .build()
        val useCase = ImageAnalysis.Builder()
            .setResolutionSelector(resolution)
            .setBackpressureStrategy(ImageAnalysis.STRATEGY_KEEP_ONLY_LATEST) // drop, never queue
            .setOutputImageFormat(ImageAnalysis.OUTPUT_IMAGE_FORMAT_RGBA_8888)
            .setTargetRotation(displayRotation())
            .build()
        useCase.setAnalyzer(analysisExecutor, analyzer)
        provider.unbindAll()
        analysis?.clearAnalyzer()
        analysis = useCase
        try {
            provider.bindToLifecycle(this, if (front) frontSelector else backSelector, useCase)
        } catch (e: Exception) {
            statsView.text = "camera: ${e.message}"
        }
    }

    private fun hasCamera(provider: ProcessCameraProvider, selector: CameraSelector): Boolean = try {
        provider.hasCamera(selector)
    } catch (e: Exception) { // CameraInfoUnavailableException: treat as absent
        false
    }

    private fun displayRotation(): Int {
        val display = if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.R) display else {
            @Suppress("DEPRECATION")
            windowManager.defaultDisplay
        }
        return display?.rotation ?: Surface.ROTATION_0
    }

    private fun showStats(s: Stats) {
        val lines = mutableListOf(
            String.format("%s · %s", s.model, s.accelerator),
            String.format("inference %.1f ms · frame %.1f ms · %.1f fps · %s", s.inferenceMs, s.totalMs, s.fps, s.frame)
        )
        s.note?.let { lines.add(it) }
        statsView.text = lines.joinToString("\n")
    }

    override fun onStop() {
        super.onStop()
        // CameraX stops the camera at ON_STOP; free the interpreter (and GPU memory) too. It
        // runs after any frame still in flight, on the thread that owns the interpreter.
        val analyzer = analyzer ?: return
        if (!analysisExecutor.isShutdown) analysisExecutor.execute { analyzer.release() }
    }

    override fun onDestroy() {
        getSystemService(DisplayManager::class.java).unregisterDisplayListener(displayListener)
        analysis?.clearAnalyzer()
        cameraProvider?.unbindAll()
        analyzer?.let { a -> analysisExecutor.execute { a.release() } }
        analysisExecutor.shutdown()
        super.onDestroy()
    }
}
