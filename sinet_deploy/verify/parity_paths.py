"""Parity of artifact files: load each one and the PyTorch reference, then the matrix
(shared by ``sinet-deploy parity``, the pipeline and the Python API)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["resolve_images", "run_parity_paths"]


def resolve_images(images: Path | None) -> tuple[list[Path], str]:
    """``--images DIR`` (every image directly in it) or the built-in public-domain portraits."""
    from sinet_deploy.core.errors import ImageError
    from sinet_deploy.models.preprocessing import list_images
    from sinet_deploy.verify.parity import default_images

    if images is None:
        return default_images()
    if not images.is_dir():
        raise ImageError(
            f"--images {images} is not a folder", hint="pass a folder of portraits (jpg/png)"
        )
    return list_images(images), str(images)


def run_parity_paths(
    artifacts: list[Path],
    *,
    images: Path | None,
    weights: str,
    pairs: bool,
    overlay_dir: Path | None,
    threads: int | None = None,
    progress: Any = None,
) -> Any:
    """Load every artifact and the reference, then :func:`run_parity` (shared with pipeline)."""
    from sinet_deploy.core.machine import usable_cores
    from sinet_deploy.core.paths import check_model_path
    from sinet_deploy.runtimes import load_session, torch_reference
    from sinet_deploy.verify.parity import ParityOptions, run_parity

    paths = [check_model_path(a) for a in artifacts]
    image_list, source = resolve_images(images)
    n = threads or usable_cores()
    sessions = [load_session(p, threads=n) for p in paths]

    def reference(size: tuple[int, int]) -> Any:
        return torch_reference(weights=weights, input_size=size, threads=n)

    options = ParityOptions(
        reference_name=f"PyTorch fp32 ({weights} weights)",
        images_source=source,
        pairs=pairs,
        overlay_dir=overlay_dir,
        paths=[str(p) for p in paths],
    )
    return run_parity(sessions, image_list, reference, options, progress=progress)
