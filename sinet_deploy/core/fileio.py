"""Writing files so that no reader ever sees half of one, and hashing them.

Every file the package produces (manifests, reports, overlays, masks) goes through
:func:`atomic_write`: written under a temporary name in the destination folder, then renamed.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` for a temporary file beside ``path``, then rename it to ``path``.

    The file is made world-readable (``mkstemp`` creates 0600): what we write is meant to be
    shared, like the artifact beside it. On any failure the temporary file is removed.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, 0o644)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """UTF-8 text through :func:`atomic_write`."""
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (ours or not): ``kill(pid, 0)`` probes it."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, it is just someone else's
        return True
    return True


def unique_name(stem: str, tag: str, suffix: str = "") -> str:
    """``.<stem>.<tag>-<pid>-<random><suffix>``: hidden, unfinished-looking, and never shared.

    Two processes (or two calls in one) never get the same name, so one writer can never
    delete, truncate or publish another's half-written file. The pid lets a later run tell the
    leftovers of a dead process (:func:`remove_stale`) from those of a live one.
    """
    return f".{stem}.{tag}-{os.getpid()}-{secrets.token_hex(4)}{suffix}"


def remove_stale(folder: Path, stem: str, tag: str) -> None:
    """Delete ``.<stem>.<tag>-<pid>-*`` entries whose process is gone (killed with SIGKILL)."""
    for entry in Path(folder).glob(f".{glob_escape(stem)}.{tag}-*"):
        pid_text = entry.name[len(f".{stem}.{tag}-") :].split("-", 1)[0]
        if pid_text.isdigit() and not pid_alive(int(pid_text)):
            remove_path(entry)


def glob_escape(text: str) -> str:
    """``text`` with glob metacharacters escaped (``glob.escape`` without the import)."""
    import glob

    return glob.escape(text)


def remove_path(path: Path) -> None:
    """Remove a file, a link or a directory tree; a missing path is not an error."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def publish(src: Path, dest: Path) -> None:
    """Move a finished ``src`` (file or directory) to ``dest`` in the same folder.

    A file is renamed over ``dest`` in one atomic step: readers see the old file or the new
    one, and an existing ``dest`` is never deleted first (deleting first is what lost good
    artifacts when two runs shared an output folder). ``rename`` cannot replace a non-empty
    directory (a CoreML ``.mlpackage``), so an old directory is first renamed aside under a
    unique hidden name, the new one renamed in, and only then the old one deleted.
    """
    src, dest = Path(src), Path(dest)
    if not (src.is_dir() and not src.is_symlink()):
        os.replace(src, dest)
        return
    aside: Path | None = None
    if dest.exists() or dest.is_symlink():
        aside = dest.with_name(unique_name(dest.stem, "old", dest.suffix))
        os.replace(dest, aside)
    try:
        os.replace(src, dest)
    except BaseException:
        if aside is not None:  # put the old one back rather than leave nothing
            os.replace(aside, dest)
        raise
    if aside is not None:
        remove_path(aside)


class Busy(Exception):
    """Raised by :func:`exclusive` when another process holds the lock."""


@contextmanager
def exclusive(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive, non-blocking ``flock`` on ``lock_file`` for the ``with`` body.

    The file is removed on release, so no lock files pile up beside the artifacts. Removing a
    lock file races with a process that opened it just before: that process may lock the
    unlinked inode while a third creates and locks a fresh file. Hence, after locking, the path
    must still name the locked inode, or the attempt is repeated (the usual pattern for
    removable lock files). The kernel drops the lock when the process dies, so a killed run
    never leaves the artifact locked.

    Raises:
        Busy: another process holds it.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no flock; fall back to no locking
        yield
        return
    lock_file = Path(lock_file)
    for _ in range(100):
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise Busy(str(lock_file)) from None
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(lock_file))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # we locked a file that was removed meanwhile: take the new one
    else:  # pragma: no cover - would need 100 lost races in a row
        raise Busy(str(lock_file))
    try:
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        # Unlink while still holding the lock: whoever opens the name afterwards gets a new
        # inode, and the samestat check above makes anyone holding the old one retry.
        Path(lock_file).unlink(missing_ok=True)
        os.close(fd)


def _temp_root() -> Path:
    """The folder that holds this user's export work folders (one per process)."""
    return Path(tempfile.gettempdir()) / f"sinet_deploy-{os.getuid()}"


@contextmanager
def work_dir(prefix: str) -> Iterator[Path]:
    """A private work folder ``<tmp>/sinet_deploy-<uid>/<prefix><pid>_<random>``, removed after.

    ``TemporaryDirectory`` cleans up on exceptions (Ctrl-C included) but not after SIGKILL or
    a power cut; keeping all work folders under one root, named with the pid, lets every later
    call remove those whose process is dead.
    """
    root = _temp_root()
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    for entry in root.glob(f"{glob_escape(prefix)}*"):
        pid_text = entry.name[len(prefix) :].split("_", 1)[0]
        if pid_text.isdigit() and not pid_alive(int(pid_text)):
            remove_path(entry)
    path = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}_", dir=root))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def path_size(path: str | Path) -> int:
    """Bytes in a file, or in all files of a directory (``.mlpackage``)."""
    p = Path(path)
    if p.is_dir():
        return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
    return p.stat().st_size
