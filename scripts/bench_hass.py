"""What a user feels, measured from outside a real Home Assistant process.

    .venv/bin/python scripts/bench_hass.py loop  [--runs 3]
    .venv/bin/python scripts/bench_hass.py clip  [--minutes 30 60] [--runs 2]
    .venv/bin/python scripts/bench_hass.py setup [--streams 50]

Each scenario starts the KVS emulator and ``python -m homeassistant`` (garbage
collection on, as in production) in a fresh config folder, onboards a user and
adds the kinesis_video entry through Home Assistant's public HTTP APIs
(scripts/demo_provision.py), then drives it over HTTP like a browser or an
automation would. Every figure is set beside a baseline measured in the same run.

- ``loop``: 4 streams with a day of 2-second fragments each (43,200). A probe
  sends ``GET /api/`` every 20 ms on its own connection; its latency while the
  four ``list_fragments`` actions (limit 100,000) run at once, against its idle
  latency, is the loop stall a user's browser sees. Baseline: plain boto3
  paging the same four days in four threads, paced as the service requires.
- ``clip``: ``save_clip`` of N minutes against a careful boto3 script (GetClip
  parts of at most 200 fragments, one call per 1.1 s start to start, bodies
  copied with ``shutil.copyfileobj``), and the Home Assistant process's peak RSS
  growth during the action.
- ``setup``: the entry with N streams, from submitting the flow to every camera
  available; the Home Assistant log is checked for blocking-call warnings.

The emulator enforces AWS's per-stream request rates throughout.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import http.client
import json
import multiprocessing
import os
import queue
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

import demo_provision  # noqa: E402

from kvs_emulator.testing import EmulatorProcess  # noqa: E402

COMPONENTS = ("api", "bench_gc_watch", "config", "frontend", "onboarding", "stream")
PROBE_INTERVAL_S = 0.02
FRAGMENT_S = 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Hass:
    """``python -m homeassistant`` in a temporary config folder."""

    def __init__(self, emulator: EmulatorProcess) -> None:
        self.emulator = emulator
        self.dir = Path(tempfile.mkdtemp(prefix="bench-hass-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.ha = demo_provision.HomeAssistant(self.url)
        # A failed start keeps its log for reading; BENCH_KEEP_HASS=1 keeps any.
        self.keep_dir = os.environ.get("BENCH_KEEP_HASS") == "1"

    def start(self) -> None:
        # On a fresh venv: what Home Assistant loads beyond the tests (frontend...).
        demo_provision.install_missing(
            list(COMPONENTS),
            [ROOT / "custom_components" / "kinesis_video" / "manifest.json"],
        )
        (self.dir / "custom_components").mkdir()
        (self.dir / "custom_components" / "kinesis_video").symlink_to(
            ROOT / "custom_components" / "kinesis_video"
        )
        (self.dir / "custom_components" / "bench_gc_watch").symlink_to(
            ROOT / "scripts" / "bench_gc_watch"
        )
        (self.dir / "media").mkdir()
        lines = [
            "homeassistant:",
            "  media_dirs:",
            f"    local: '{self.dir / 'media'}'",
            "http:",
            "  server_host: 127.0.0.1",
            f"  server_port: {self.port}",
            *(f"{component}:" for component in COMPONENTS),
            "logger:",
            "  default: warning",
        ]
        (self.dir / "configuration.yaml").write_text("\n".join(lines) + "\n")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "homeassistant", "-c", str(self.dir), "--skip-pip"],
            # Not the repository: its custom_components/ would shadow the config's.
            cwd=self.dir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 300
        while True:
            try:
                status, _ = self.ha.request("GET", "/api/onboarding", timeout=5)
                if status in (200, 404):
                    break
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.keep_dir = True
                raise SystemExit(f"Home Assistant did not start (log in {self.dir})")
            time.sleep(1)
        demo_provision.onboard(self.ha)
        # Else Home Assistant 2026.x reverts the YAML http: settings it holds on
        # trial, and restarts, five minutes in (a long benchmark met that).
        demo_provision.confirm_http_config(self.ha, None)
        demo_provision.wait_running(self.ha, 300)

    def add_entry(self, streams: int) -> float:
        """Add the entry for every emulator stream; seconds until cameras are up."""
        args = argparse.Namespace(
            access_key=self.emulator.access_key,
            secret_key=self.emulator.secret_key,
            region=self.emulator.region,
            emulator_url=self.emulator.url,
        )
        began = time.monotonic()
        arns = demo_provision.create_entry(self.ha, args)
        demo_provision.wait_cameras(self.ha, len(arns), 300)
        elapsed = time.monotonic() - began
        assert len(arns) == streams, (len(arns), streams)
        return elapsed

    def cameras(self) -> list[str]:
        return sorted(
            s["entity_id"]
            for s in self.ha.call("GET", "/api/states")
            if s["entity_id"].startswith("camera.")
        )

    def action(self, name: str, data: dict[str, Any]) -> Any:
        status, answer = self.ha.request(
            "POST",
            f"/api/services/kinesis_video/{name}?return_response",
            data,
            timeout=600,
        )
        if status != 200:
            raise SystemExit(f"{name} answered {status}: {str(answer)[:300]}")
        return answer

    def gc_pauses(
        self, since: float, until: float
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Collections over 1 ms inside Home Assistant (scripts/bench_gc_watch),
        and the slow loop callbacks if BENCH_SLOW_CALLBACK_MS asked for them."""
        answer = self.ha.call("GET", "/api/bench_gc_watch")
        return (
            [p for p in answer["pauses"] if since <= p["at"] <= until],
            [c for c in answer["slow_callbacks"] if since <= c["at"] <= until],
        )

    def rss_kib(self, field: str) -> int:
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise KeyError(field)

    def reset_peak_rss(self) -> None:
        assert self.process is not None
        # Writing 5 resets VmHWM (the peak) to the current RSS.
        Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")

    def log_lines(self, needle: str) -> list[str]:
        log = self.dir / "home-assistant.log"
        if not log.exists():
            return []
        return [line for line in log.read_text().splitlines() if needle in line]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            # It exited by itself: keep its log for reading.
            self.keep_dir = True
            print(
                f"Home Assistant exited with {self.process.returncode}"
                f" (log in {self.dir})",
                file=sys.stderr,
            )
        elif self.keep_dir:
            print(f"Home Assistant's log: {self.dir}", file=sys.stderr)
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if not self.keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)


@contextmanager
def running(
    streams: list[str], history: str, *extra: str
) -> Iterator[tuple[EmulatorProcess, Hass]]:
    emulator = EmulatorProcess(
        "--streams",
        ",".join(streams),
        "--history",
        history,
        "--retention-hours",
        "72",
        "--fragment-seconds",
        str(FRAGMENT_S),
        *extra,
        python=sys.executable,
    )
    with emulator:
        hass = Hass(emulator)
        try:
            hass.start()
            yield emulator, hass
        finally:
            hass.stop()


def _probe_loop(
    port: int, token: str, stop: Any, samples: multiprocessing.Queue[Any]
) -> None:
    """``GET /api/`` every 20 ms; (monotonic time, latency in ms) of each."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {token}"}
    while not stop.is_set():
        began = time.perf_counter()
        conn.request("GET", "/api/", headers=headers)
        response = conn.getresponse()
        response.read()
        took = (time.perf_counter() - began) * 1000
        samples.put((time.monotonic(), took))
        stop.wait(max(0.0, PROBE_INTERVAL_S - took / 1000))
    conn.close()


class Probe:
    """``GET /api/`` every 20 ms on a kept-alive connection; latencies in ms.

    From a process of its own: the benchmark's threads parse answers of many
    megabytes (``json.loads`` holds the GIL throughout), which would delay a
    probe thread here and show as a stall of Home Assistant. The samples carry
    ``time.monotonic()``, one clock for every process of the machine.
    """

    def __init__(self, hass: Hass) -> None:
        context = multiprocessing.get_context("spawn")
        self.samples: list[tuple[float, float]] = []
        self._queue: multiprocessing.Queue[Any] = context.Queue()
        self._stop = context.Event()
        self._process = context.Process(
            target=_probe_loop,
            args=(hass.port, hass.ha.token, self._stop, self._queue),
            daemon=True,
        )

    def __enter__(self) -> Probe:
        self._process.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._process.join(30)
        self._drain()

    def _drain(self) -> None:
        while True:
            try:
                self.samples.append(self._queue.get_nowait())
            except queue.Empty:
                return

    def window(self, since: float, until: float) -> list[float]:
        # The probe's last sample may still be on its way: at most 20 ms.
        time.sleep(0.1)
        self._drain()
        return [took for at, took in self.samples if since <= at <= until]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Pacer:
    """Starts at most ``rate`` a second after a burst, shared by threads."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.tokens, self.burst = rate, float(burst), burst
        self.last = time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> None:
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
            self.last = now
            self.tokens -= 1
            wait = -self.tokens / self.rate if self.tokens < 0 else 0.0
        time.sleep(wait)


def boto3_list_day(
    emulator: EmulatorProcess, arn: str, start: datetime, end: datetime
) -> int:
    """Plain boto3: every page of a day, paced at ListFragments' 5 TPS."""
    control = boto3.client("kinesisvideo", **emulator.boto3_kwargs())
    endpoint = control.get_data_endpoint(StreamARN=arn, APIName="LIST_FRAGMENTS")
    media = boto3.client(
        "kinesis-video-archived-media",
        **{**emulator.boto3_kwargs(), "endpoint_url": endpoint["DataEndpoint"]},
    )
    pacer = Pacer(4.5, 4)
    count, token = 0, None
    while True:
        params: dict[str, Any] = {"StreamARN": arn, "MaxResults": 1000}
        if token:
            params["NextToken"] = token
        else:
            params["FragmentSelector"] = {
                "FragmentSelectorType": "SERVER_TIMESTAMP",
                "TimestampRange": {"StartTimestamp": start, "EndTimestamp": end},
            }
        pacer.take()
        page = media.list_fragments(**params)
        count += len(page["Fragments"])
        if not (token := page.get("NextToken")):
            return count


def timed(func: Callable[[], Any]) -> tuple[float, Any]:
    began = time.monotonic()
    result = func()
    return time.monotonic() - began, result


def scenario_loop(args: argparse.Namespace) -> None:
    names = [f"cam-{i}" for i in range(4)]
    with running(names, "26h") as (emulator, hass):
        hass.add_entry(len(names))
        cameras = hass.cameras()
        control = boto3.client("kinesisvideo", **emulator.boto3_kwargs())
        arns = [s["StreamARN"] for s in control.list_streams()["StreamInfoList"]]
        # Whole seconds: botocore sends whole-second timestamps by default, and
        # a fraction would make the baseline's day one fragment longer or shorter.
        end = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
        start = end - timedelta(hours=24)
        rows = []
        with Probe(hass) as probe:
            time.sleep(5)  # settle after setup
            for run in range(args.runs):
                # A full collection first: one in the busy window is then due to
                # what the window allocated, not to what the startup left.
                hass.ha.call("POST", "/api/bench_gc_watch")
                time.sleep(1)  # a probe that waited for the collection is answered
                idle_from = time.monotonic()
                time.sleep(5)
                idle = probe.window(idle_from, time.monotonic())

                def one(entity: str) -> tuple[tuple[int, int], float]:
                    answer = hass.action(
                        "list_fragments",
                        {
                            "entity_id": entity,
                            "start": start.isoformat(),
                            "end": end.isoformat(),
                            "limit": args.limit,
                        },
                    )
                    found = answer["service_response"][entity]
                    # The rows as well: the answer must carry what was listed.
                    listed = (int(found["summary"]["count"]), len(found["fragments"]))
                    return listed, time.monotonic()

                busy_from = time.monotonic()
                with concurrent.futures.ThreadPoolExecutor(4) as pool:
                    counts, answered = zip(*pool.map(one, cameras), strict=True)
                busy_until = time.monotonic()
                busy = probe.window(busy_from, busy_until)
                pauses, slow_callbacks = hass.gc_pauses(busy_from, busy_until)
                with concurrent.futures.ThreadPoolExecutor(4) as pool:
                    base_s, base_counts = timed(
                        lambda: list(
                            pool.map(
                                lambda arn: boto3_list_day(emulator, arn, start, end),
                                arns,
                            )
                        )
                    )
                rows.append(
                    {
                        "run": run + 1,
                        "fragments": [count for count, _ in counts],
                        "rows": [shown for _, shown in counts],
                        "boto3_fragments": base_counts,
                        "idle_median_ms": statistics.median(idle),
                        "idle_max_ms": max(idle),
                        "busy_median_ms": statistics.median(busy),
                        "busy_p99_ms": percentile(busy, 0.99),
                        "busy_max_ms": max(busy),
                        "stall_over_idle_ms": max(busy) - statistics.median(idle),
                        "gc_max_ms": max((p["ms"] for p in pauses), default=0.0),
                        "gc_full": sum(p["generation"] == 2 for p in pauses),
                        "gc_pauses": len(pauses),
                        "actions_s": busy_until - busy_from,
                        "boto3_s": base_s,
                        "ratio": (busy_until - busy_from) / base_s,
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
                if args.pauses:
                    for pause in pauses:
                        pause["at"] -= busy_from
                        print("   gc", json.dumps(pause))
                    for callback in slow_callbacks:
                        callback["at"] -= busy_from
                        print("   slow callback", json.dumps(callback))
                    slow = [
                        (at - busy_from, ms)
                        for at, ms in probe.samples
                        if busy_from <= at <= busy_until and ms > args.slow_ms
                    ]
                    print(
                        f"   probe > {args.slow_ms} ms (s after start, ms):",
                        [(round(at, 3), round(ms, 1)) for at, ms in slow],
                    )
                    print(
                        "   answers read (s after start):",
                        [round(at - busy_from, 3) for at in sorted(answered)],
                    )
        heap = hass.ha.call("GET", "/api/bench_gc_watch?objects")
        print(f"tracked objects by generation: {heap['objects']}")
        blocking = hass.log_lines("blocking call")
    summarize(
        rows,
        [
            "stall_over_idle_ms",
            "gc_max_ms",
            "busy_max_ms",
            "actions_s",
            "boto3_s",
            "ratio",
        ],
    )
    print(f"blocking-call warnings in the log: {len(blocking)}")


def boto3_clip(
    emulator: EmulatorProcess, arn: str, start: datetime, end: datetime, out: Path
) -> int:
    """The careful boto3 script: parts of <= 200 fragments, 1.1 s apart."""
    control = boto3.client("kinesisvideo", **emulator.boto3_kwargs())
    endpoint = control.get_data_endpoint(StreamARN=arn, APIName="GET_CLIP")
    media = boto3.client(
        "kinesis-video-archived-media",
        **{**emulator.boto3_kwargs(), "endpoint_url": endpoint["DataEndpoint"]},
    )
    part = timedelta(seconds=200 * FRAGMENT_S)
    pacer = Pacer(1 / 1.1, 1)
    total, at, index = 0, start, 0
    while at < end:
        until = min(end, at + part) - timedelta(milliseconds=1)
        pacer.take()
        answer = media.get_clip(
            StreamARN=arn,
            ClipFragmentSelector={
                "FragmentSelectorType": "SERVER_TIMESTAMP",
                "TimestampRange": {"StartTimestamp": at, "EndTimestamp": until},
            },
        )
        with (out / f"part{index}.mp4").open("wb") as file:
            shutil.copyfileobj(answer["Payload"], file, 1024 * 1024)
            total += file.tell()
        at += part
        index += 1
    return total


def scenario_clip(args: argparse.Namespace) -> None:
    padding = str(args.padding)
    with running(["clip-cam"], "3h", "--padding-bytes", padding) as (emulator, hass):
        hass.add_entry(1)
        (camera,) = hass.cameras()
        control = boto3.client("kinesisvideo", **emulator.boto3_kwargs())
        (arn,) = [s["StreamARN"] for s in control.list_streams()["StreamInfoList"]]
        rows = []
        for minutes in args.minutes:
            for run in range(args.runs):
                end = datetime.now(UTC) - timedelta(minutes=5 + run)
                start = end - timedelta(minutes=minutes)
                name = f"bench_{minutes}_{run}.mp4"
                # GetClip's 1 TPS per stream is shared: after the last baseline's.
                time.sleep(1.2)
                hass.reset_peak_rss()
                rss_before = hass.rss_kib("VmRSS")
                ha_s, answer = timed(
                    lambda start=start, end=end, name=name: hass.action(
                        "save_clip",
                        {
                            "entity_id": camera,
                            "start": start.isoformat(),
                            "end": end.isoformat(),
                            "filename": name,
                            "overwrite": True,
                        },
                    )
                )
                growth = (hass.rss_kib("VmHWM") - rss_before) / 1024
                result = answer["service_response"][camera]
                time.sleep(1.2)  # and the baseline after the action's last call
                with tempfile.TemporaryDirectory() as out:
                    base_s, base_bytes = timed(
                        lambda start=start, end=end, out=out: boto3_clip(
                            emulator, arn, start, end, Path(out)
                        )
                    )
                (hass.dir / "media" / name).unlink(missing_ok=True)
                rows.append(
                    {
                        "minutes": minutes,
                        "run": run + 1,
                        "bytes": result["size"],
                        "boto3_bytes": base_bytes,
                        "clip_calls": result["clip_calls"],
                        "save_clip_s": ha_s,
                        "boto3_s": base_s,
                        "ratio": ha_s / base_s,
                        "rss_growth_mib": growth,
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
    for minutes in args.minutes:
        print(f"-- {minutes} min")
        summarize(
            [r for r in rows if r["minutes"] == minutes],
            ["save_clip_s", "boto3_s", "ratio", "rss_growth_mib"],
        )


def scenario_setup(args: argparse.Namespace) -> None:
    names = [f"cam-{i:02d}" for i in range(args.streams)]
    with running(names, "2h") as (_emulator, hass):
        seconds = hass.add_entry(len(names))
        blocking = hass.log_lines("blocking call")
    print(json.dumps({"streams": len(names), "setup_s": seconds}))
    print(f"blocking-call warnings in the log: {len(blocking)}")
    for line in blocking:
        print("  ", line[:300])


def summarize(rows: list[dict[str, Any]], keys: list[str]) -> None:
    for key in keys:
        values = [float(row[key]) for row in rows]
        print(
            f"{key:>20}: median {statistics.median(values):9.3f}"
            f"  min {min(values):9.3f}  max {max(values):9.3f}  (n={len(values)})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="scenario", required=True)
    loop = sub.add_parser("loop")
    loop.add_argument("--runs", type=int, default=3)
    loop.add_argument("--limit", type=int, default=100000)
    loop.add_argument(
        "--pauses",
        action="store_true",
        help="print each GC pause, the slow probes and when each answer was read",
    )
    loop.add_argument(
        "--slow-ms", type=float, default=50.0, help="a slow probe, for --pauses"
    )
    clip = sub.add_parser("clip")
    clip.add_argument("--minutes", type=int, nargs="+", default=[30, 60])
    clip.add_argument("--runs", type=int, default=2)
    clip.add_argument("--padding", type=int, default=0)
    setup = sub.add_parser("setup")
    setup.add_argument("--streams", type=int, default=50)
    args = parser.parse_args()
    os.chdir(ROOT)
    {"loop": scenario_loop, "clip": scenario_clip, "setup": scenario_setup}[
        args.scenario
    ](args)


if __name__ == "__main__":
    main()
