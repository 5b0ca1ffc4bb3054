"""A real Home Assistant with its frontend, the emulator and Debian's Chromium.

Left out of the unit run: these tests are collected only when this folder is named
on the command line, and run without the Home Assistant test harness plugin (its
autouse fixtures set up an in-process hass on an asyncio loop, which Playwright's
sync API cannot share a thread with; Home Assistant runs as its own process here):

    .venv/bin/python -m pytest -p no:homeassistant -p no:cacheprovider tests/browser

as ``.ci/run`` does on the current leg. They need Playwright (requirements_test.txt,
current leg) and a Chromium at ``$CHROMIUM`` (default ``/usr/bin/chromium``, Debian's
``chromium``); Playwright never downloads a browser here. Screenshots go to
``$BROWSER_TEST_SCREENSHOTS`` (default: a temporary folder, printed at the end).

The Home Assistant side reuses what ``scripts/demo`` does (by importing
``scripts/demo_provision.py``): the requirements of the frontend and of the
integrations Home Assistant always loads, installed under its package constraints;
onboarding; the config entry against the emulator.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from kvs_emulator.testing import EmulatorProcess

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# The flags this machine's Chromium needs headless (no GPU, no sandbox as root, no
# calls home); Playwright adds its own automation flags and a fresh profile dir.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# As scripts/demo: on top of the integrations Home Assistant always loads.
COMPONENTS = [
    "frontend",
    "config",
    "api",
    "stream",
    "diagnostics",
    "repairs",
    "history",
    "logbook",
]
TIMEOUT = 240.0


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool:
    """Collect this folder only when it (or a file in it) was asked for."""
    for arg in config.args:
        path = Path(arg.split("::", 1)[0]).resolve()
        if path == HERE or HERE in path.parents:
            return False
    return True


def _load_demo_provision() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "demo_provision", REPO / "scripts" / "demo_provision.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


demo = _load_demo_provision()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _install_requirements() -> None:
    """What a real Home Assistant loads beyond the tests (as scripts/demo installs)."""
    demo.install_missing(
        COMPONENTS, [REPO / "custom_components" / "kinesis_video" / "manifest.json"]
    )


@dataclass
class HomeAssistantProcess:
    """A running ``python -m homeassistant`` and what the tests need of it."""

    url: str
    config_dir: Path
    process: subprocess.Popen[bytes]
    api: Any  # demo_provision.HomeAssistant, logged in
    cameras: list[str] = field(default_factory=list)

    @property
    def media_dir(self) -> Path:
        """Where actions save clips (the config's media folder)."""
        return self.config_dir / "media"

    def log_tail(self, lines: int = 40, match: str = "") -> str:
        """The end of Home Assistant's log (lines matching a regex), for failures."""
        log = self.config_dir / "home-assistant.log"
        if not log.exists():
            return ""
        text = log.read_text(errors="replace").splitlines()
        if match:
            text = [line for line in text if re.search(match, line, re.IGNORECASE)]
        return "\n".join(text[-lines:])


def _write_config(config_dir: Path, port: int) -> None:
    (config_dir / "custom_components").mkdir(parents=True)
    (config_dir / "media").mkdir()
    (config_dir / "custom_components" / "kinesis_video").symlink_to(
        REPO / "custom_components" / "kinesis_video"
    )
    lines = [
        "http:",
        "  server_host: 127.0.0.1",
        f"  server_port: {port}",
        "homeassistant:",
        "  media_dirs:",
        f"    local: '{config_dir / 'media'}'",
        *(f"{component}:" for component in COMPONENTS),
        "logger:",
        "  default: info",
    ]
    (config_dir / "configuration.yaml").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="session")
def home_assistant(
    request: pytest.FixtureRequest,
    emulator_process: EmulatorProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[HomeAssistantProcess]:
    """Home Assistant with the integration set up against the emulator."""
    if request.config.pluginmanager.has_plugin("homeassistant"):
        pytest.fail("run the browser tests with -p no:homeassistant (see conftest.py)")
    _install_requirements()
    config_dir = tmp_path_factory.mktemp("ha-config")
    port = _free_port()
    _write_config(config_dir, port)
    url = f"http://127.0.0.1:{port}"
    with (config_dir / "console.log").open("wb") as console:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "homeassistant",
                "-c",
                str(config_dir),
                "--skip-pip",
            ],
            cwd=REPO,
            stdout=console,
            stderr=subprocess.STDOUT,
        )
    try:
        demo.provision(
            argparse.Namespace(
                url=url,
                pid=process.pid,
                timeout=TIMEOUT,
                http_marker=None,
                emulator_url=emulator_process.url,
                access_key=emulator_process.access_key,
                secret_key=emulator_process.secret_key,
                region=emulator_process.region,
            )
        )
        api = demo.HomeAssistant(url)
        api.login()
        cameras = sorted(
            s["entity_id"]
            for s in api.call("GET", "/api/states")
            if s["entity_id"].startswith("camera.")
        )
        yield HomeAssistantProcess(url, config_dir, process, api, cameras)
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Browser:
    """One logged-in page and what it fetched."""

    page: Any  # playwright.sync_api.Page
    responses: list[tuple[str, int]]
    screenshots: Path

    def shot(self, name: str) -> Path:
        """Save what a person would see now."""
        path = self.screenshots / f"{name}.png"
        self.page.screenshot(path=str(path))
        return path


@pytest.fixture(scope="session")
def browser(
    home_assistant: HomeAssistantProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Browser]:
    """Chromium logged in to Home Assistant as the demo user."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)")
    profile = tmp_path_factory.mktemp("chromium-profile")
    screenshots = Path(
        os.environ.get("BROWSER_TEST_SCREENSHOTS")
        or tmp_path_factory.mktemp("screenshots")
    )
    screenshots.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(30_000)
            responses: list[tuple[str, int]] = []
            page.on("response", lambda r: responses.append((r.url, r.status)))
            browser = Browser(page, responses, screenshots)
            _log_in(browser, home_assistant.url)
            yield browser
        finally:
            context.close()
    print(f"browser test: screenshots in {screenshots}")


def _log_in(browser: Browser, url: str) -> None:
    page = browser.page
    page.goto(url)
    page.wait_for_url("**/auth/authorize**")
    page.get_by_role("textbox", name="Username").fill(demo.USERNAME)
    page.get_by_role("textbox", name="Password").fill(demo.PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda u: "/auth/" not in u and "auth_callback" not in u)
    page.locator("home-assistant").wait_for()
    deadline = time.monotonic() + 60
    # Logged in once the frontend holds its tokens.
    while not page.evaluate("() => !!localStorage.getItem('hassTokens')"):
        if time.monotonic() > deadline:
            browser.shot("login-failed")
            pytest.fail("the frontend did not store its tokens after logging in")
        page.wait_for_timeout(250)
