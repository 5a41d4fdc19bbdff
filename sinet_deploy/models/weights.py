"""The official checkpoint: cache, download with sha256 verification, and local import.

Cache directory: ``$SINET_DEPLOY_HOME`` (default ``~/.cache/sinet_deploy``), file
``weights/SINet_EG1800.pth``. Downloads and imports are written to a temporary name and renamed
only after the sha256 matches, so the cache never holds a partial or foreign file.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from sinet_deploy.core.errors import CheckpointError, WeightsUnavailableError
from sinet_deploy.core.fileio import file_sha256

#: Pinned upstream location (SINET_SPEC.md): the authors' repository at a fixed commit.
OFFICIAL_URL = (
    "https://github.com/clovaai/ext_portrait_segmentation/raw/"
    "9bc1bada1cb7bd17a3a80a2964980f4b4befef5b/result/SINet/SINet.pth"
)
OFFICIAL_SHA256 = "d164a9643c6e6765fc6dd4ec73f6018ad2526c21336911b4484715f33e6981a4"
OFFICIAL_SIZE = 444_787
OFFICIAL_FILENAME = "SINet_EG1800.pth"
#: Environment variable to point the download at a mirror (the sha256 is still enforced).
URL_ENV = "SINET_DEPLOY_WEIGHTS_URL"


def cache_dir() -> Path:
    """``$SINET_DEPLOY_HOME`` or ``~/.cache/sinet_deploy``."""
    env = os.environ.get("SINET_DEPLOY_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "sinet_deploy"


def official_path() -> Path:
    return cache_dir() / "weights" / OFFICIAL_FILENAME


def _install(src_tmp: Path, dest: Path) -> Path:
    sha = file_sha256(src_tmp)
    if sha != OFFICIAL_SHA256:
        src_tmp.unlink(missing_ok=True)
        raise CheckpointError(
            f"sha256 {sha[:12]}… is not the official SINet checkpoint's ({OFFICIAL_SHA256[:12]}…)",
            hint="for your own checkpoint pass its path with --weights PATH instead",
        )
    os.replace(src_tmp, dest)
    return dest


def _tmp_in(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".download.", suffix=".part", dir=folder)
    os.close(fd)
    return Path(tmp)


def download_official(url: str | None = None, *, timeout: float = 30.0) -> Path:
    """Download the official checkpoint into the cache and verify its sha256."""
    url = url or os.environ.get(URL_ENV) or OFFICIAL_URL
    dest = official_path()
    tmp = _tmp_in(dest.parent)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as fh:
            shutil.copyfileobj(resp, fh, length=1 << 16)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        tmp.unlink(missing_ok=True)
        reason = getattr(exc, "reason", exc)
        raise WeightsUnavailableError(
            f"cannot download the official SINet weights from {url} ({reason})",
            hint="offline? copy SINet_EG1800.pth here and run `sinet-deploy weights import PATH`",
        ) from None
    try:
        return _install(tmp, dest)
    except CheckpointError as exc:
        raise WeightsUnavailableError(
            f"the download from {url} is corrupt or not the official checkpoint ({exc})",
            hint="retry, or import a verified local copy with `sinet-deploy weights import PATH`",
        ) from None


def import_official(path: str | Path) -> Path:
    """Verify a local copy of the official checkpoint (sha256) and copy it into the cache."""
    src = Path(path)
    if not src.is_file():
        raise CheckpointError(f"{src} is not a file", hint="pass the path of SINet_EG1800.pth")
    dest = official_path()
    tmp = _tmp_in(dest.parent)
    shutil.copyfile(src, tmp)
    return _install(tmp, dest)


def cached_official() -> Path | None:
    """The cached official checkpoint if present and intact."""
    p = official_path()
    if p.is_file() and p.stat().st_size == OFFICIAL_SIZE and file_sha256(p) == OFFICIAL_SHA256:
        return p
    return None


def resolve_checkpoint(weights: str | Path = "official", *, download: bool = True) -> Path:
    """Map ``"official"`` or a path to a checkpoint file on disk."""
    if str(weights) == "official":
        cached = cached_official()
        if cached is not None:
            return cached
        if not download:
            raise WeightsUnavailableError(
                f"the official SINet weights are not in the cache ({official_path().parent})",
                hint="run `sinet-deploy weights import PATH` or allow the download",
            )
        return download_official()
    p = Path(weights).expanduser()
    if not p.exists():
        raise CheckpointError(
            f"checkpoint {p} does not exist", hint="check the path, or use --weights official"
        )
    if p.is_dir():
        raise CheckpointError(
            f"checkpoint {p} is a directory, not a file", hint="pass the .pth file itself"
        )
    return p


def checkpoint_sha256(weights: str | Path = "official") -> str:
    return file_sha256(resolve_checkpoint(weights))
