"""A simulated Android device for tests and demos (``sinet-deploy device simulate``).

It speaks the adb transport protocol so the real ``adb`` client drives it; its numbers come from
the host CPU and are always labelled SIMULATED.
"""
