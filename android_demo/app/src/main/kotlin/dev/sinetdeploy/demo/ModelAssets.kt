package dev.sinetdeploy.demo

import android.content.res.AssetManager
import dev.sinetdeploy.core.ManifestException
import dev.sinetdeploy.core.ModelManifest
import java.io.FileInputStream
import java.nio.MappedByteBuffer
import java.nio.channels.FileChannel
import java.security.MessageDigest

/** A `.tflite` in the APK's assets with the manifest that `sinet-deploy` wrote beside it. */
class BundledModel(val assetName: String, val manifest: ModelManifest) {
    /** Spinner label: file name plus what the manifest says about its I/O. */
    val label: String
        get() {
            val i = manifest.input
            return "${assetName.removeSuffix(".tflite")} (${i.dtype.manifestName}→${manifest.output.dtype.manifestName})"
        }
}

/** Finds, checks and maps the models bundled by `sinet-deploy android-assets`. */
object ModelAssets {
    /** The usable models (sorted by name) and one line per asset that could not be used. */
    fun list(assets: AssetManager): Pair<List<BundledModel>, List<String>> {
        val names = assets.list("")?.toSet() ?: emptySet()
        val models = ArrayList<BundledModel>()
        val problems = ArrayList<String>()
        for (name in names.filter { it.endsWith(".tflite") }.sorted()) {
            val json = name.removeSuffix(".tflite") + ".json"
            if (json !in names) {
                problems.add("$name has no $json beside it (re-run sinet-deploy android-assets)")
                continue
            }
            try {
                val text = assets.open(json).bufferedReader().use { it.readText() }
                models.add(BundledModel(name, ModelManifest.parse(text)))
            } catch (e: ManifestException) {
                problems.add("$json: ${e.message}")
            }
        }
        return Pair(models, problems)
    }

    /**
     * Memory-maps the model out of the APK (stored uncompressed, see `noCompress` in
     * app/build.gradle.kts) after checking it is the file the manifest describes.
     */
    fun map(assets: AssetManager, model: BundledModel): MappedByteBuffer {
        val expected = model.manifest.artifactSha256
        if (expected != null) {
            val actual = sha256(assets, model.assetName)
            require(actual == expected) {
                "${model.assetName} does not match its manifest (sha256 $actual, manifest says $expected); " +
                    "re-run sinet-deploy android-assets"
            }
        }
        assets.openFd(model.assetName).use { fd ->
            FileInputStream(fd.fileDescriptor).use { stream ->
                return stream.channel.map(FileChannel.MapMode.READ_ONLY, fd.startOffset, fd.declaredLength)
            }
        }
    }

    private fun sha256(assets: AssetManager, name: String): String {
        val digest = MessageDigest.getInstance("SHA-256")
        assets.open(name).use { input ->
            val buf = ByteArray(64 * 1024)
            while (true) {
                val n = input.read(buf)
                if (n < 0) break
                digest.update(buf, 0, n)
            }
        }
        return digest.digest().joinToString("") { String.format("%02x", it) }
    }
}
