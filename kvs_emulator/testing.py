"""Run the emulator in a child process and drive its admin API (tests, benchmarks)."""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any, Self

REPO_ROOT = Path(__file__).resolve().parent.parent
_READY = re.compile(
    r"ready at (?P<url>http://\S+) access_key=(?P<key>\S+) secret_key=(?P<secret>\S+)"
    r" region=(?P<region>\S+)"
)


class EmulatorProcess:
    """``python -m kvs_emulator --port 0 ...`` in a child process.

    A separate process keeps the emulator's encoding and serving off the tested
    code's interpreter (and its GIL), the way a real service would be.
    """

    def __init__(self, *args: str, python: str = sys.executable) -> None:
        """Remember how to start; ``start()`` does it."""
        self.args = list(args)
        self.python = python
        self.url = ""
        self.access_key = ""
        self.secret_key = ""
        self.region = ""
        self._process: subprocess.Popen[str] | None = None
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in stop()
            prefix="kvs-emulator-", suffix=".log", delete=False
        )

    def start(self, timeout: float = 60) -> Self:
        """Start the process and wait for its ready line."""
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [
                self.python,
                "-m",
                "kvs_emulator",
                "--port",
                "0",
                # Our pid, not the one the child sees once running: we may die
                # before it gets there.
                "--exit-with-parent",
                "--parent-pid",
                str(os.getpid()),
                *self.args,
            ],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self._process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self._process.stdout], [], [], 0.2)
            if ready:
                line = self._process.stdout.readline()
                match = _READY.search(line)
                if match:
                    self.url = match["url"]
                    self.access_key = match["key"]
                    self.secret_key = match["secret"]
                    self.region = match["region"]
                    return self
            if self._process.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f"emulator did not start: {self.log()}")

    def log(self) -> str:
        """What the emulator wrote to stderr."""
        return Path(self._log.name).read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        """Terminate the process and remove its log."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process is not None and self._process.stdout is not None:
            self._process.stdout.close()
        self._log.close()
        Path(self._log.name).unlink(missing_ok=True)

    @property
    def pid(self) -> int:
        """The child's process id."""
        assert self._process is not None
        return self._process.pid

    def __enter__(self) -> Self:
        """Start on entry."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop on exit."""
        self.stop()

    # -- admin API (blocking; from async code call it in an executor) ----------

    def admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Call ``/_emulator/<path>`` and return the decoded JSON."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - loopback http only
            f"{self.url}/_emulator/{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return json.loads(response.read())

    def reset(self) -> Any:
        """Back to the start-up state."""
        return self.admin("POST", "reset", {})

    def calls(self) -> dict[str, Any]:
        """The call log and counts by operation."""
        result: dict[str, Any] = self.admin("GET", "calls")
        return result

    def boto3_kwargs(self) -> dict[str, str]:
        """Arguments that point a boto3 client at the emulator."""
        return {
            "endpoint_url": self.url,
            "region_name": self.region,
            "aws_access_key_id": self.access_key,
            "aws_secret_access_key": self.secret_key,
        }
