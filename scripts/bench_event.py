"""Event clips measured from outside a real Home Assistant (issue 13's goal).

    .venv/bin/python scripts/bench_event.py [--runs 3] [--before 10] [--after 30]

The goal: an automation that asks 10 s before to 30 s after "now" gets a file
of 40 s give or take one fragment, with no delay on the user's side.

The KVS emulator (2-second fragments, live video on the real clock) and
``python -m homeassistant`` with the entry are started as scripts/bench_hass.py
does. Per run, at a moment T:

- ``save_clip``, ``save_fragments`` (with a range) and ``save_images`` are
  called over REST at once, each with start = T - 10 s and end = T + 30 s;
- then (unless ``--no-automation``) a real automation, triggered by an event
  fired over REST (``POST /api/events/doorbell_ring``), runs ``save_clip`` with
  the templates ``now() - timedelta(seconds=10)`` / ``now() + timedelta(seconds=30)``;
  the integration's ``kinesis_video_clip_saved`` event, watched over the
  websocket API, says when its file is there.

Reported per file: the media duration read with PyAV (first frame's start to
the last frame's end), its difference from the asked length in fragments, what
the answer says the file covers against what was asked, and the delay the user
feels: how long after T + 30 s the answer (or the event) came.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import av
import bench_hass
import demo_provision
from bench_hass import FRAGMENT_S, Hass, running

EVENT_TYPE = "doorbell_ring"
AUTOMATION = "automation.bench_doorbell"


def media_seconds(path: str) -> tuple[float, int]:
    """The video's length by its timestamps (first start to last end), and frames."""
    first = last = None
    frames = 0
    with av.open(path) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            if packet.pts is None:  # the demuxer's flush packet
                continue
            begins = float(packet.pts * packet.time_base)
            ends = begins + float((packet.duration or 0) * packet.time_base)
            first = begins if first is None else min(first, begins)
            last = ends if last is None else max(last, ends)
            frames += 1
    if first is None or last is None:
        return 0.0, 0
    return last - first, frames


def covered(answer: dict[str, Any], start: datetime, end: datetime) -> dict[str, Any]:
    """How the answer's start and end lie against the asked ones (s, + = later)."""
    if "start" not in answer:
        return {}
    return {
        "start_off_s": round(
            (datetime.fromisoformat(answer["start"]) - start).total_seconds(), 3
        ),
        "end_off_s": round(
            (datetime.fromisoformat(answer["end"]) - end).total_seconds(), 3
        ),
        "gaps": len(answer["gaps"]),
    }


def file_row(
    kind: str, path: str, asked_s: float, late_s: float, extra: dict[str, Any]
) -> dict[str, Any]:
    seconds, frames = media_seconds(path)
    return {
        "action": kind,
        "media_s": round(seconds, 3),
        "frames": frames,
        "off_fragments": round((seconds - asked_s) / FRAGMENT_S, 2),
        "after_end_s": round(late_s, 3),
        **extra,
    }


def actions_at_once(
    hass: Hass, camera: str, run: int, before: float, after: float
) -> list[dict[str, Any]]:
    """The three saves over REST at T, at once; a row per action."""
    at_wall = time.time()
    at = datetime.fromtimestamp(at_wall, UTC)
    start, end = at - timedelta(seconds=before), at + timedelta(seconds=after)
    end_wall = at_wall + after
    asked = {"entity_id": camera, "start": start.isoformat(), "end": end.isoformat()}
    calls = {
        "save_clip": {**asked, "filename": f"event_{run}.mp4"},
        "save_fragments": {**asked, "filename": f"event_{run}.mkv"},
        "save_images": {**asked, "folder": f"event_{run}_images", "interval": 1},
    }

    def one(name: str) -> tuple[str, Any, float]:
        answer = hass.action(name, {**calls[name], "overwrite": True})
        return name, answer["service_response"][camera], time.time() - end_wall

    with concurrent.futures.ThreadPoolExecutor(len(calls)) as pool:
        done = list(pool.map(one, calls))
    rows = []
    for name, answer, late in done:
        if name == "save_images":
            samples = int((end - start).total_seconds()) + 1
            rows.append(
                {
                    "action": name,
                    "images": len(answer["files"]),
                    "asked_images": samples,
                    "no_media": len(answer["no_media"]),
                    "after_end_s": round(late, 3),
                }
            )
            continue
        extra = {"fragments": answer["fragments"], **covered(answer, start, end)}
        rows.append(file_row(name, answer["path"], before + after, late, extra))
    return rows


def install_automation(hass: Hass, camera: str, before: float, after: float) -> None:
    """An automation from YAML: configuration.yaml includes it, then a reload."""
    automation = f"""- id: bench_doorbell
  alias: bench doorbell
  mode: parallel
  triggers:
    - trigger: event
      event_type: {EVENT_TYPE}
  actions:
    - action: kinesis_video.save_clip
      target:
        entity_id: {camera}
      data:
        start: "{{{{ now() - timedelta(seconds={before}) }}}}"
        end: "{{{{ now() + timedelta(seconds={after}) }}}}"
        filename: "auto_{{{{ trigger.event.data.run }}}}.mp4"
        overwrite: true
"""
    (hass.dir / "automations.yaml").write_text(automation)
    config = hass.dir / "configuration.yaml"
    lines = config.read_text().splitlines()
    lines[lines.index("automation:")] = "automation: !include automations.yaml"
    config.write_text("\n".join(lines) + "\n")
    hass.ha.call("POST", "/api/services/automation/reload", {})
    deadline = time.monotonic() + 60
    while hass.ha.request("GET", f"/api/states/{AUTOMATION}")[0] != 200:
        if time.monotonic() > deadline:
            raise SystemExit(f"{AUTOMATION} did not appear after the reload")
        time.sleep(0.5)


def automation_run(
    hass: Hass, camera: str, run: int, before: float, after: float
) -> dict[str, Any]:
    """Fire the doorbell event at T; wait for the clip's event; a row."""
    assert hass.ha.token is not None
    socket = demo_provision.WebSocket(hass.url, hass.ha.token)
    socket.sock.settimeout(after + 120)
    try:
        subscribed = socket.command(
            {"type": "subscribe_events", "event_type": "kinesis_video_clip_saved"}
        )
        assert subscribed.get("success"), subscribed
        at_wall = time.time()
        hass.ha.call("POST", f"/api/events/{EVENT_TYPE}", {"run": run})
        while True:
            message = socket.receive()
            if message.get("type") != "event":
                continue
            data = message["event"]["data"]
            if data.get("entity_id") == camera and data["path"].endswith(
                f"auto_{run}.mp4"
            ):
                late = time.time() - (at_wall + after)
                break
    finally:
        socket.close()
    # The automation's now() is a few ms after T: compared with T's range.
    at = datetime.fromtimestamp(at_wall, UTC)
    start, end = at - timedelta(seconds=before), at + timedelta(seconds=after)
    extra = {"fragments": data["fragments"], **covered(data, start, end)}
    return file_row("automation", data["path"], before + after, late, extra)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--before", type=float, default=10.0)
    parser.add_argument("--after", type=float, default=30.0)
    parser.add_argument("--no-automation", action="store_true")
    args = parser.parse_args()
    os.chdir(bench_hass.ROOT)
    if not args.no_automation:
        # Loaded (empty) at start, so a reload can bring the bench's automation.
        bench_hass.COMPONENTS = (*bench_hass.COMPONENTS, "automation")
    rows: list[dict[str, Any]] = []
    with running(["doorbell"], "1h") as (_emulator, hass):
        hass.add_entry(1)
        (camera,) = hass.cameras()
        if not args.no_automation:
            install_automation(hass, camera, args.before, args.after)
        time.sleep(5)  # settle after setup
        for run in range(1, args.runs + 1):
            for row in actions_at_once(hass, camera, run, args.before, args.after):
                rows.append({"run": run, **row})
                print(json.dumps(rows[-1]), flush=True)
            if not args.no_automation:
                row = automation_run(hass, camera, run, args.before, args.after)
                rows.append({"run": run, **row})
                print(json.dumps(rows[-1]), flush=True)
        blocking = hass.log_lines("blocking call")
    print(f"-- asked {args.before + args.after:g} s; one fragment = {FRAGMENT_S} s")
    for action in dict.fromkeys(row["action"] for row in rows):
        print(f"{action}:")
        mine = [row for row in rows if row["action"] == action]
        keys = ["media_s", "off_fragments", "after_end_s"]
        if action == "save_images":
            keys = ["images", "after_end_s"]
        for key in keys:
            values = [float(row[key]) for row in mine]
            print(
                f"{key:>16}: median {statistics.median(values):8.3f}"
                f"  min {min(values):8.3f}  max {max(values):8.3f}  (n={len(values)})"
            )
    print(f"blocking-call warnings in the log: {len(blocking)}")


if __name__ == "__main__":
    main()
