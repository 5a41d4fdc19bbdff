package dev.sinetdeploy.core

import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test
import org.junit.runner.RunWith
import org.junit.runners.Parameterized
import java.nio.ByteBuffer
import java.nio.ByteOrder

/**
 * Camera frame -> model input, against `image_input(to_display(frame), H, W)` computed by the
 * Python tool (then stored as the manifest's dtype/layout): every rotation, mirroring, RGBA with
 * row padding and ARGB ints, uint8 / int8 / float32, NHWC / NCHW, down- and upscaling.
 */
@RunWith(Parameterized::class)
class PreprocessGoldenTest(private val name: String, private val case: Map<String, Any?>) {
    companion object {
        @JvmStatic
        @Parameterized.Parameters(name = "{0}")
        fun data(): List<Array<Any>> = Golden.parameters("preprocess")
    }

    private val manifest = Golden.manifest(case["manifest"])
    private val geometry: FrameGeometry
    private val source: PixelSource

    init {
        val f = Golden.frame(case["frame"] as String)
        geometry = FrameGeometry(Golden.int(f["width"]), Golden.int(f["height"]),
            Golden.int(case["rotation"]), Golden.bool(case["mirror"]))
        source = Golden.source(case["frame"] as String, case["source_format"] as String)
    }

    @Test
    fun resizedLevelsEqualPython() {
        val levels = InputPacker(manifest.input).resize(source, geometry)
        val expected = Golden.ubytes(case["levels"])
        val stats = DiffStats.of(levels.copyOf(expected.size), expected, Golden.int(case["tolerance_levels"]))
        assertEquals("$name levels: $stats", 0, stats.over)
        assertEquals(expected.size, manifest.input.height * manifest.input.width * 3)
    }

    @Test
    fun packedTensorEqualsPython() {
        val packer = InputPacker(manifest.input)
        val buf = ByteBuffer.allocate(packer.byteSize).order(ByteOrder.LITTLE_ENDIAN)
        packer.pack(source, geometry, buf)
        val expected = if (case["tensor"] != null) Golden.bytes(case["tensor"]) else Golden.bytes(case["levels"])
        assertEquals("$name tensor size", expected.capacity(), buf.capacity())
        var diffs = 0
        var first = -1
        for (i in 0 until buf.capacity()) {
            if (buf.get(i) != expected.get(i)) { diffs++; if (first < 0) first = i }
        }
        assertEquals("$name: $diffs of ${buf.capacity()} tensor bytes differ (first at $first)", 0, diffs)
    }

    @Test
    fun displayFrameEqualsRot90() {
        val display = case["display"] ?: return // stored for the tiny frame only
        val out = IntArray(geometry.displayWidth * geometry.displayHeight)
        Compositor.displayFrame(source, geometry, out)
        val expected = Golden.ubytes(display)
        val got = IntArray(out.size * 3)
        for (i in out.indices) {
            got[i * 3] = (out[i] shr 16) and 0xFF
            got[i * 3 + 1] = (out[i] shr 8) and 0xFF
            got[i * 3 + 2] = out[i] and 0xFF
            assertTrue("opaque", (out[i] ushr 24) == 0xFF)
        }
        val stats = DiffStats.of(got, expected, 0)
        assertEquals("$name display frame: $stats", 0, stats.over)
    }
}
