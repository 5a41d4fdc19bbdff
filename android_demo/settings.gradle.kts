pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google() // AndroidX, CameraX and LiteRT live on Google's Maven repository
        mavenCentral()
    }
}

rootProject.name = "sinet-demo"
include(":app", ":core")
