"""Android phones through adb: discovery, device info, on-device benchmark and parity.

Modules: ``adb`` (client wrapper), ``listing`` (``adb devices -l`` and device selection),
``info`` (what a device is), ``elf`` (binary ABI check), ``bench_output`` (benchmark_model
output parser), ``remote`` (run folder, command line, exit statuses), ``runner``
(``device bench``), ``session`` + ``parity`` (a phone as a runtime; on-device parity),
``tensors`` (raw tensor bytes), ``sim`` (the simulated device).
"""
