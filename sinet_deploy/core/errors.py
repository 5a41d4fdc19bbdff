"""One exception hierarchy for the whole package.

The library raises these; only ``sinet_deploy.cli`` turns them into a one-line message and the
exit code documented in CONTRACTS.md (0 ok, 1 internal, 2 usage/input, 3 parity gate failed).
"""

from __future__ import annotations


class SinetDeployError(Exception):
    """Base class. ``exit_code`` is what the CLI exits with; ``hint`` says what to do next."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def one_line(self) -> str:
        msg = str(self).replace("\n", " ").strip()
        return f"{msg} — {self.hint}" if self.hint else msg


class UserInputError(SinetDeployError):
    """Something the user gave us is wrong (path, file, option). Exit code 2."""

    exit_code = 2


class CheckpointError(UserInputError):
    """A checkpoint that cannot be read, is unsafe, or does not fit the model config."""


class WeightsUnavailableError(UserInputError):
    """The official weights are neither cached nor downloadable."""


class ImageError(UserInputError):
    """An image that cannot be decoded."""


class InputSizeError(UserInputError):
    """An input size that the network cannot take (not a positive multiple of 32)."""


class ArtifactError(UserInputError):
    """A model artifact (ONNX/TFLite/CoreML) that is missing, corrupt or not ours."""


class DeviceError(UserInputError):
    """adb missing, no device, device unauthorized/offline, binary unusable, device failure."""


class MissingDependencyError(UserInputError):
    """An optional runtime or converter is not installed."""


class ConversionError(SinetDeployError):
    """A converter failed on a model that should convert. Exit code 1 (our bug or the tool's)."""


class ParityGateError(SinetDeployError):
    """An artifact does not compute what PyTorch computes, beyond the registered tolerance."""

    exit_code = 3

    def __init__(
        self, message: str, *, metrics: dict[str, object] | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.metrics = metrics or {}
