package dev.sinetdeploy.core

import java.io.File
import java.nio.ByteBuffer
import java.nio.ByteOrder

/**
 * The golden set written by `sinet-deploy android-golden DIR` (sinet_deploy/android/golden.py):
 * `cases.json` plus raw little-endian arrays. `jvm-test.sh` passes DIR as `-Dgolden.dir`.
 */
object Golden {
    val dir: File by lazy {
        val path = System.getProperty("golden.dir")
            ?: throw IllegalStateException("set -Dgolden.dir to a folder written by sinet-deploy android-golden")
        File(path)
    }

    @Suppress("UNCHECKED_CAST")
    val index: Map<String, Any?> by lazy { Json.parse(File(dir, "cases.json").readText()) as Map<String, Any?> }

    @Suppress("UNCHECKED_CAST")
    fun cases(kind: String): List<Map<String, Any?>> = (index[kind] as List<Map<String, Any?>>)

    /** JUnit `Parameterized` rows: (name, case). */
    fun parameters(kind: String): List<Array<Any>> = cases(kind).map { arrayOf<Any>(it["name"] as String, it) }

    fun bytes(entry: Any?): ByteBuffer {
        val m = entry as Map<*, *>
        val data = File(dir, m["file"] as String).readBytes()
        return ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN)
    }

    fun floats(entry: Any?): FloatArray {
        val b = bytes(entry)
        require((entry as Map<*, *>)["dtype"] == "float32") { "not float32: $entry" }
        return FloatArray(b.capacity() / 4) { b.getFloat(it * 4) }
    }

    /** uint8 values 0..255 as ints. */
    fun ubytes(entry: Any?): IntArray {
        val b = bytes(entry)
        return IntArray(b.capacity()) { b.get(it).toInt() and 0xFF }
    }

    fun manifest(file: Any?): ModelManifest = ModelManifest.parse(File(dir, file as String).readText())

    fun frame(name: String): Map<*, *> = (index["frames"] as Map<*, *>)[name] as Map<*, *>

    /** A frame as the camera would hand it: RGBA plane with row padding, or ARGB ints. */
    fun source(frameName: String, format: String): PixelSource {
        val f = frame(frameName)
        val w = int(f["width"])
        val h = int(f["height"])
        val rgba = f["rgba"] as Map<*, *>
        val stride = int(rgba["row_stride"])
        val buf = bytes(rgba)
        if (format == "rgba") return RgbaBufferSource(buf, w, h, stride, 4)
        val px = IntArray(w * h)
        for (y in 0 until h) for (x in 0 until w) {
            val i = y * stride + x * 4
            val r = buf.get(i).toInt() and 0xFF
            val g = buf.get(i + 1).toInt() and 0xFF
            val b = buf.get(i + 2).toInt() and 0xFF
            px[y * w + x] = (0xFF shl 24) or (r shl 16) or (g shl 8) or b
        }
        return ArgbIntSource(px, w, h)
    }

    fun int(v: Any?): Int = (v as Double).toInt()

    fun bool(v: Any?): Boolean = v as Boolean
}

/** Largest |a - b| and how many elements exceed [tol]; for failure messages with numbers. */
class DiffStats(val maxAbs: Double, val over: Int, val count: Int, val firstIndex: Int) {
    override fun toString(): String =
        "max |diff| $maxAbs, $over of $count beyond tolerance" + (if (firstIndex >= 0) ", first at index $firstIndex" else "")

    companion object {
        fun of(a: FloatArray, b: FloatArray, tol: Double): DiffStats {
            require(a.size == b.size) { "sizes differ: ${a.size} vs ${b.size}" }
            var max = 0.0
            var over = 0
            var first = -1
            for (i in a.indices) {
                val d = Math.abs(a[i].toDouble() - b[i].toDouble())
                if (d > max || d.isNaN()) max = if (d.isNaN()) Double.NaN else d
                if (!(d <= tol)) { over++; if (first < 0) first = i }
            }
            return DiffStats(max, over, a.size, first)
        }

        fun of(a: IntArray, b: IntArray, tol: Int): DiffStats {
            require(a.size == b.size) { "sizes differ: ${a.size} vs ${b.size}" }
            var max = 0
            var over = 0
            var first = -1
            for (i in a.indices) {
                val d = Math.abs(a[i] - b[i])
                if (d > max) max = d
                if (d > tol) { over++; if (first < 0) first = i }
            }
            return DiffStats(max.toDouble(), over, a.size, first)
        }
    }
}
