"""The official-weights cache: download (against a local HTTP server), import, sha256 checks."""

from __future__ import annotations

import http.server
import shutil
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from sinet_deploy.core.errors import CheckpointError, WeightsUnavailableError
from sinet_deploy.models import weights as W
from tests.conftest import SHARED_WEIGHTS, need


@pytest.fixture
def empty_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("SINET_DEPLOY_HOME", str(home))
    return home


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A loopback HTTP server over a temp folder; yields (base URL, folder)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    finally:
        httpd.shutdown()
        httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def test_download_verifies_and_caches(empty_home: Path, server: tuple[str, Path]) -> None:
    url, root = server
    shutil.copyfile(need(SHARED_WEIGHTS), root / "SINet.pth")
    path = W.download_official(f"{url}/SINet.pth")
    assert path == W.official_path() and W.cached_official() == path
    assert W.resolve_checkpoint("official") == path
    assert not list(path.parent.glob(".download.*"))


def test_download_of_wrong_bytes_leaves_nothing(empty_home: Path, server: tuple[str, Path]) -> None:
    url, root = server
    (root / "SINet.pth").write_bytes(b"x" * 1000)
    with pytest.raises(WeightsUnavailableError, match="not the official"):
        W.download_official(f"{url}/SINet.pth")
    assert not W.official_path().exists()
    assert not list(W.official_path().parent.glob(".download.*"))


def test_download_404_and_offline(empty_home: Path, server: tuple[str, Path]) -> None:
    url, _ = server
    with pytest.raises(WeightsUnavailableError, match="cannot download") as info:
        W.download_official(f"{url}/missing.pth")
    assert "weights import" in info.value.one_line()
    with pytest.raises(WeightsUnavailableError):
        W.download_official("http://127.0.0.1:9/SINet.pth", timeout=2)


def test_official_without_cache_uses_the_env_mirror(
    empty_home: Path, server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, root = server
    shutil.copyfile(need(SHARED_WEIGHTS), root / "SINet.pth")
    monkeypatch.setenv(W.URL_ENV, f"{url}/SINet.pth")
    assert W.resolve_checkpoint("official") == W.official_path()


def test_import_checks_sha(empty_home: Path, tmp_path: Path) -> None:
    fake = tmp_path / "fake.pth"
    fake.write_bytes(b"not it")
    with pytest.raises(CheckpointError, match="not the official"):
        W.import_official(fake)
    assert W.import_official(need(SHARED_WEIGHTS)) == W.official_path()


def test_cli_weights_import(cli, empty_home: Path) -> None:  # type: ignore[no-untyped-def]
    r = cli("weights", "import", str(need(SHARED_WEIGHTS)))
    assert r.code == 0, r.err
    r = cli("weights", "path", "--json")
    assert r.json()["cached"] is True


def test_env_compares_the_installed_set_with_the_lock(tmp_path: Path) -> None:
    """`sinet-deploy env` says whether what is installed is exactly requirements.lock."""
    from importlib import metadata

    from sinet_deploy.core.environment import LOCK_FILE, lock_status, read_lock

    numpy_version = metadata.version("numpy")
    lock = tmp_path / "requirements.lock"
    lock.write_text(
        f"numpy=={numpy_version} \\\n    --hash=sha256:00\n"
        "# a comment\nno-such-package-xyz==1.0 \\\n    --hash=sha256:11\n"
        "Typing_Extensions==0.0.1\n"
    )
    assert read_lock(lock) == {
        "numpy": numpy_version,
        "no-such-package-xyz": "1.0",
        "typing-extensions": "0.0.1",
    }
    status = lock_status(lock)
    assert status["matches"] is False
    assert "no-such-package-xyz: locked 1.0, installed missing" in status["differences"]
    assert not any(d.startswith("numpy:") for d in status["differences"])
    assert lock_status(tmp_path / "absent.lock") == {
        "lock": None,
        "matches": None,
        "differences": [],
    }
    # The checkout's own lock is what the set-up installed.
    assert LOCK_FILE.is_file() and lock_status()["matches"] is True, lock_status()["differences"]
