package dev.sinetdeploy.core

import org.junit.runner.Description
import org.junit.runner.JUnitCore
import org.junit.runner.Result
import org.junit.runner.notification.Failure
import org.junit.runner.notification.RunListener
import kotlin.system.exitProcess

/**
 * Runs the given test classes with JUnit 4 and prints one line per failure plus a final
 * "N passed, F failed, S skipped" line; exits 1 on any failure (used by jvm-test.sh).
 */
object RunAll {
    @JvmStatic
    fun main(args: Array<String>) {
        val classes = args.map { Class.forName(it) }
        val core = JUnitCore()
        var assumptionFailures = 0
        var ignored = 0
        core.addListener(object : RunListener() {
            override fun testFailure(failure: Failure) {
                println("FAIL ${failure.testHeader}: ${failure.message}")
                val trace = failure.trace.lines().filter { it.contains("dev.sinetdeploy") }.take(4)
                for (line in trace) println("    $line")
            }

            override fun testAssumptionFailure(failure: Failure) {
                assumptionFailures++
                println("SKIP ${failure.testHeader}: ${failure.message}")
            }

            override fun testIgnored(description: Description) {
                ignored++
            }
        })
        val result: Result = core.run(*classes.toTypedArray())
        val failed = result.failureCount
        // runCount includes tests stopped by an assumption (skips), not @Ignore'd ones.
        val passed = result.runCount - failed - assumptionFailures
        val skipped = assumptionFailures + ignored
        println("$passed passed, $failed failed, $skipped skipped (${classes.size} classes, ${result.runTime} ms)")
        exitProcess(if (failed == 0 && result.runCount > 0) 0 else 1)
    }
}
