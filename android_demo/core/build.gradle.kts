// The pre/post-processing core: plain Kotlin on the JVM, no Android imports, so the very same
// sources are compiled and tested on a desktop JVM by ../jvm-test.sh (Debian's kotlinc 1.3) and
// here by Gradle (`./gradlew :core:test`, with -Dgolden.dir pointing at the golden data).
plugins {
    alias(libs.plugins.kotlin.jvm)
}

java {
    sourceCompatibility = JavaVersion.VERSION_17
    targetCompatibility = JavaVersion.VERSION_17
}

kotlin {
    compilerOptions {
        jvmTarget.set(org.jetbrains.kotlin.gradle.dsl.JvmTarget.JVM_17)
    }
}

dependencies {
    testImplementation(libs.junit)
}

tasks.test {
    // The same golden data jvm-test.sh uses: generated into ../.jvm-build/golden when the
    // Python venv is there, else the committed compact set.
    val generated = rootProject.file(".jvm-build/golden/cases.json")
    val golden = if (generated.exists()) generated.parentFile else file("src/test/resources/golden")
    systemProperty("golden.dir", golden.absolutePath)
    // RunAll is jvm-test.sh's console runner, not a test class.
    exclude("**/RunAll*")
}
