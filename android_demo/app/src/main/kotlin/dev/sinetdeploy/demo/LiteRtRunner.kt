package dev.sinetdeploy.demo

import dev.sinetdeploy.core.DType
import dev.sinetdeploy.core.ModelManifest
import dev.sinetdeploy.core.ModelRunner
import org.tensorflow.lite.DataType
import org.tensorflow.lite.Delegate
import org.tensorflow.lite.Interpreter
import org.tensorflow.lite.gpu.CompatibilityList
import org.tensorflow.lite.gpu.GpuDelegate
import org.tensorflow.lite.nnapi.NnApiDelegate
import java.io.Closeable
import java.nio.ByteBuffer
import java.nio.MappedByteBuffer

/** Where the interpreter runs the graph. */
enum class Accelerator(val label: String) {
    CPU("CPU/XNNPACK"),
    GPU("GPU"),
    NNAPI("NNAPI")
}

/**
 * The LiteRT interpreter behind the core's [ModelRunner]. Create, use and close it on ONE thread
 * (the analysis executor): the GPU delegate is bound to the thread that created it.
 */
class LiteRtRunner private constructor(
    private val interpreter: Interpreter,
    private val delegate: Delegate?,
    /** What actually runs the model (after any fallback). */
    val accelerator: Accelerator,
    /** Why the requested accelerator was not used, or null. */
    val fallbackReason: String?,
    private val outputIndex: Int
) : ModelRunner, Closeable {

    override fun run(input: ByteBuffer, output: ByteBuffer) {
        // LiteRT copies the output with relative puts: start every frame at position 0.
        input.rewind()
        output.rewind()
        if (interpreter.outputTensorCount == 1) {
            interpreter.run(input, output)
        } else {
            interpreter.runForMultipleInputsOutputs(arrayOf<Any>(input), mapOf<Int, Any>(outputIndex to output))
        }
    }

    override fun close() {
        interpreter.close()
        (delegate as? AutoCloseable)?.close()
    }

    companion object {
        /**
         * Opens [model] on [wanted], falling back to the CPU when the delegate is unavailable or
         * refuses the graph; checks that the model's tensors are what [manifest] says.
         */
        fun open(model: MappedByteBuffer, manifest: ModelManifest, wanted: Accelerator, threads: Int): LiteRtRunner {
            if (wanted != Accelerator.CPU) {
                val reason: String = try {
                    return create(model, manifest, wanted, threads, null)
                } catch (e: Exception) {
                    e.message ?: e.javaClass.simpleName
                } catch (e: UnsatisfiedLinkError) { // delegate library missing on this device
                    e.message ?: "native library missing"
                }
                return create(model, manifest, Accelerator.CPU, threads, "${wanted.label} unavailable: $reason")
            }
            return create(model, manifest, Accelerator.CPU, threads, null)
        }

        private fun create(
            model: MappedByteBuffer, manifest: ModelManifest, acc: Accelerator, threads: Int, fallback: String?
        ): LiteRtRunner {
            val options = Interpreter.Options().setNumThreads(threads)
            var delegate: Delegate? = null
            when (acc) {
                Accelerator.CPU -> options.setUseXNNPACK(true)
                Accelerator.GPU -> {
                    val compat = CompatibilityList()
                    try {
                        check(compat.isDelegateSupportedOnThisDevice) { "GPU delegate not supported on this device" }
                        delegate = GpuDelegate(compat.bestOptionsForThisDevice)
                    } finally {
                        compat.close()
                    }
                }
                Accelerator.NNAPI -> delegate = NnApiDelegate()
            }
            delegate?.let { options.addDelegate(it) }
            val interpreter = try {
                Interpreter(model, options)
            } catch (e: Exception) {
                (delegate as? AutoCloseable)?.close()
                throw e
            }
            try {
                val out = checkAgainstManifest(interpreter, manifest)
                return LiteRtRunner(interpreter, delegate, acc, fallback, out)
            } catch (e: Exception) {
                interpreter.close()
                (delegate as? AutoCloseable)?.close()
                throw e
            }
        }

        /** The manifest must describe this very model; returns the foreground output's index. */
        private fun checkAgainstManifest(interpreter: Interpreter, manifest: ModelManifest): Int {
            val input = interpreter.getInputTensor(0)
            require(interpreter.inputTensorCount == 1) { "model has ${interpreter.inputTensorCount} inputs" }
            require(input.shape().contentEquals(manifest.input.spec.shape)) {
                "model input shape ${input.shape().contentToString()} is not the manifest's ${manifest.input.spec}"
            }
            require(dataType(manifest.input.dtype)?.let { it == input.dataType() } ?: true) {
                "model input is ${input.dataType()}, manifest says ${manifest.input.dtype.manifestName}"
            }
            manifest.input.quantization?.let { q ->
                val p = input.quantizationParams()
                require(Math.abs(p.scale - q.scale) <= 1e-6f * q.scale && p.zeroPoint == q.zeroPoint) {
                    "model input quantization (${p.scale}, ${p.zeroPoint}) is not the manifest's $q"
                }
            }
            val index = (0 until interpreter.outputTensorCount).firstOrNull {
                interpreter.getOutputTensor(it).name().contains(ModelManifest.FOREGROUND)
            } ?: if (interpreter.outputTensorCount == 1) 0 else
                throw IllegalArgumentException("no output tensor named ${ModelManifest.FOREGROUND}")
            val output = interpreter.getOutputTensor(index)
            require(output.numBytes() == manifest.output.spec.byteSize) {
                "model output holds ${output.numBytes()} bytes, the manifest's ${manifest.output.spec.byteSize}"
            }
            require(dataType(manifest.output.dtype)?.let { it == output.dataType() } ?: true) {
                "model output is ${output.dataType()}, manifest says ${manifest.output.dtype.manifestName}"
            }
            return index
        }

        /** LiteRT's name for a manifest dtype; null where its Java API has none (float16). */
        private fun dataType(d: DType): DataType? = when (d) {
            DType.UINT8 -> DataType.UINT8
            DType.INT8 -> DataType.INT8
            DType.FLOAT32 -> DataType.FLOAT32
            DType.FLOAT16 -> null
        }
    }
}
