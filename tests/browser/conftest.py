"""Fixtures of the browser tests: a private JupyterLab server on 127.0.0.1 and headless Chromium.

The server runs this interpreter's JupyterLab (so the kernel sees the installed avlab and the
ipywidgets lab extension) with a random token, in a temporary root folder, with every
configuration, settings and runtime folder private to the run and nothing that reaches the
network (no news feed, no update check). Chromium is Debian's ``chromium`` (``make test``
installs it), driven by Playwright with the system executable: Playwright's own browser
download is not used.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext

REPO = Path(__file__).resolve().parents[2]
REPORTS = REPO / "reports" / "browser"
CHROMIUM = os.environ.get("AVLAB_CHROMIUM", "/usr/bin/chromium")
# The background services of a fresh profile (safe browsing, component updates, sync, field
# trials) open connections that a closed network refuses; a refused one can stall the launch.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
START_SECONDS = 60.0
# JupyterLab settings for a deterministic page: every cell stays in the DOM (no windowing),
# and no notifications or kernel-choice dialogs cover the notebook.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {
        "windowingMode": "none", "autoStartDefaultKernel": True,
    },
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "checkForUpdates": False, "fetchNews": "false", "doNotDisturbMode": True,
    },
}


@dataclass
class JupyterServer:
    """A running JupyterLab: where it serves, its token, its root folder and its log."""

    url: str
    token: str
    root: Path
    log: Path
    process: subprocess.Popen[bytes]

    def lab_url(self, path: str) -> str:
        """The address that opens `path` (relative to `root`) in JupyterLab, token included."""
        return f"{self.url}/lab/tree/{path}?token={self.token}"

    def log_tail(self, num_lines: int = 40) -> str:
        """The last lines of the server's log, for failure messages."""
        lines = self.log.read_text(errors="replace").splitlines()[-num_lines:]
        return "\n".join(["--- JupyterLab log (tail) ---", *lines])

    def status(self) -> dict[str, object]:
        """The server's ``/api/status``, authenticated with the token."""
        request = urllib.request.Request(f"{self.url}/api/status",
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop(process: subprocess.Popen[bytes], *, grace: float = 10.0) -> None:
    """Terminate `process` (JupyterLab then shuts its kernels down); if it is still there after
    `grace` seconds, kill its whole process group (it was started in a session of its own)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # the server and any kernel left behind
    except ProcessLookupError:
        return
    process.wait(timeout=grace)


@pytest.fixture(scope="session")
def jupyter_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    """JupyterLab on 127.0.0.1 with a random token; stopped at the end of the session."""
    base = tmp_path_factory.mktemp("jupyter")
    root, settings = base / "root", base / "settings"
    for folder in (root, settings):
        folder.mkdir()
    for name, values in LAB_SETTINGS.items():
        target = settings / name.split("/", 1)[0] / name.split("/", 1)[1]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values))
    token = secrets.token_hex(24)
    port = free_port()
    # Private config, data, runtime and IPython folders: no user configuration, extension or
    # startup script changes what the test sees. The lab extensions of this environment are
    # still found through sys.prefix (share/jupyter/labextensions), and so is the kernel spec.
    env = {
        **os.environ,
        "IPYTHONDIR": str(base / "ipython"),
        "JUPYTER_CONFIG_DIR": str(base / "config"),
        "JUPYTER_DATA_DIR": str(base / "data"),
        "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
        "JUPYTER_PLATFORM_DIRS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.terminals_enabled=False",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate",
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={base / 'workspaces'}",
        "--LabApp.extension_manager=readonly",  # the default one asks PyPI for extensions
        "--LanguageServerManager.autodetect=False",
    ]
    if os.geteuid() == 0:  # CI containers run as root; JupyterLab refuses without this
        command.append("--allow-root")
    log = base / "jupyterlab.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(command, cwd=root, env=env, stdin=subprocess.DEVNULL,
                                   stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    server = JupyterServer(f"http://127.0.0.1:{port}", token, root, log, process)
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            if process.poll() is not None:
                pytest.fail(f"JupyterLab exited with code {process.returncode} while starting\n"
                            f"{server.log_tail()}")
            try:
                server.status()
                break
            except (OSError, urllib.error.URLError):
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer on {server.url}/api/status within "
                                f"{START_SECONDS:.0f} s\n{server.log_tail()}")
                time.sleep(0.25)
        yield server
    finally:
        stop(process)


@pytest.fixture(scope="session")
def chromium() -> str:
    """The system Chromium's executable; a clear failure (not a skip) when it is missing."""
    path = shutil.which(CHROMIUM) or (CHROMIUM if os.access(CHROMIUM, os.X_OK) else None)
    if path is None:
        pytest.fail(f"Chromium not found at {CHROMIUM} (set AVLAB_CHROMIUM to another "
                    "executable). The browser tests drive Debian's chromium: install it with "
                    "`apt-get install chromium` (as root), or run `make test` as root, which "
                    "installs it.", pytrace=False)
    return path


@pytest.fixture(scope="session")
def browser(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    """A headless Chromium context with a fresh, empty profile; closed at the end."""
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=chromium, headless=True, args=CHROMIUM_ARGS,
            # Tall enough for a whole viewer: its picture is stretched to the output's width.
            viewport={"width": 1280, "height": 1200}, timeout=60_000,
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(scope="session")
def reports() -> Path:
    """``reports/browser/`` at the repository root (ignored by git), where screenshots go."""
    REPORTS.mkdir(parents=True, exist_ok=True)
    return REPORTS
