"""Helper for scripts/demo: requirements check and provisioning over HTTP.

    demo_provision.py install DOMAIN... [--custom PATH/manifest.json]
        Install (under Home Assistant's package constraints) each requirement of
        these domains, Home Assistant's always-loaded integrations and all their
        dependencies that is not installed yet. Run it with the venv's python (it
        imports homeassistant).

    demo_provision.py provision --url URL --emulator-url URL --access-key K
                                --secret-key S --region R [--pid PID]
        Wait for Home Assistant at URL, finish onboarding (or log in when that is
        done), keep the kinesis_video config entry of an earlier run (pointing it at
        the emulator if its URL moved) or else make one, and wait for its camera
        entities. Uses only Home Assistant's public HTTP APIs, so it works across
        versions. Prints nothing secret.

    demo_provision.py token --url URL
        Log in as the demo user and print a short-lived access token (for curl).

The provisioning part uses only the standard library.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import socket
import struct
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

DOMAIN = "kinesis_video"
USERNAME = "demo"
PASSWORD = "demo1234"
DISPLAY_NAME = "Demo"
LANGUAGE = "en"


class DemoError(Exception):
    """A provisioning step failed; the message says which and why."""


# --------------------------------------------------------------------------------------
# requirements


def missing_requirements(
    domains: list[str], custom_manifests: list[Path]
) -> list[tuple[str, list[str]]]:
    """Requirements of the domains' dependency closure that are not installed.

    Covers the given domains, the custom integrations, and the integrations Home
    Assistant always loads (they matter: e.g. the frontend's service list imports
    assist_satellite, hence assist_pipeline and its requirements). Returns (spec,
    domains needing it).
    """
    from homeassistant import bootstrap, loader  # noqa: PLC0415
    from homeassistant.util.package import is_installed  # noqa: PLC0415

    components = Path(loader.__file__).parent / "components"
    manifests: dict[str, dict[str, Any]] = {}
    for path in custom_manifests:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        manifests[manifest["domain"]] = manifest

    def closure(roots: set[str]) -> set[str]:
        seen: set[str] = set()
        todo = sorted(roots)
        while todo:
            domain = todo.pop()
            if domain in seen:
                continue
            if domain not in manifests:
                path = components / domain / "manifest.json"
                if not path.is_file():
                    continue
                manifests[domain] = json.loads(path.read_text(encoding="utf-8"))
            seen.add(domain)
            todo.extend(manifests[domain].get("dependencies", []))
        return seen

    roots = set(domains) | set(manifests)
    for name in ("CORE_INTEGRATIONS", "DEFAULT_INTEGRATIONS"):
        roots |= set(getattr(bootstrap, name, ()))
    everything = closure(roots)

    needed_by: dict[str, list[str]] = {}
    for domain in sorted(everything):
        for spec in manifests[domain].get("requirements", []):
            needed_by.setdefault(spec, []).append(domain)
    return [
        (spec, users)
        for spec, users in sorted(needed_by.items())
        if not is_installed(spec)
    ]


def include_shim(shim_dir: Path) -> str:
    """A CPATH entry that lets C extensions build against this interpreter, or "".

    Some relocated Debian-built interpreters (e.g. unpacked under /opt) ship a
    pyconfig.h that includes <x86_64-linux-gnu/python3.X/pyconfig.h>, which the
    compiler only finds under /usr/include. Link just that directory into shim_dir.
    Elsewhere this returns "" and changes nothing.
    """
    include = Path(sysconfig.get_paths()["include"])
    try:
        text = (include / "pyconfig.h").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    match = re.search(r"#\s*include\s*<([^>]+)/pyconfig\.h>", text)
    if match is None:
        return ""
    wanted = match.group(1)  # e.g. x86_64-linux-gnu/python3.14
    target = include.parent / wanted
    if (Path("/usr/include") / wanted).is_dir() or not target.is_dir():
        return ""
    link = shim_dir / wanted
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(target)
    return str(shim_dir.resolve())


def install_missing(domains: list[str], custom_manifests: list[Path]) -> None:
    """Install, into this interpreter, what ``missing_requirements`` finds missing.

    Under the running Home Assistant's package constraints, as a user's install
    would pin them; packages that build from source get the include shim. A
    failed pip raises DemoError saying which integrations needed what.
    """
    import homeassistant  # noqa: PLC0415

    missing = missing_requirements(domains, custom_manifests)
    specs = [spec for spec, _ in missing]
    if not specs:
        return
    constraints = Path(homeassistant.__file__).parent / "package_constraints.txt"
    env = dict(os.environ)
    if shim := include_shim(Path(sys.prefix) / ".demo-include"):
        env["CPATH"] = shim + (":" + env["CPATH"] if env.get("CPATH") else "")
    print(f"installing what Home Assistant needs: {' '.join(specs)}", flush=True)
    done = subprocess.run(
        [
            sys.executable,
            *("-m", "pip", "install", "--quiet", "--disable-pip-version-check"),
            *(("-c", str(constraints)) if constraints.is_file() else ()),
            *specs,
        ],
        check=False,
        env=env,
    )
    if done.returncode != 0:
        needed = "; ".join(f"{spec} ({','.join(users)})" for spec, users in missing)
        raise DemoError(
            f"pip install failed ({done.returncode}); packages without a wheel need"
            f" a C/C++ compiler and Python headers. Needed: {needed}"
        )


# --------------------------------------------------------------------------------------
# HTTP


class HomeAssistant:
    """A tiny client for Home Assistant's REST API."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.client_id = f"{self.url}/"
        self.redirect_uri = f"{self.url}/?auth_callback=1"
        self.token: str | None = None

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        form: dict[str, str] | None = None,
        timeout: float = 60,
    ) -> tuple[int, Any]:
        """Send a request; return (status, decoded JSON or text), never raise on 4xx."""
        headers = {"Accept": "application/json"}
        data = None
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(
            self.url + path, data=data, headers=headers, method=method
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        text = raw.decode("utf-8", "replace")
        try:
            return status, json.loads(text) if text else None
        except ValueError:
            return status, text

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Like request, but a non-2xx answer is an error."""
        status, answer = self.request(method, path, body)
        if not 200 <= status < 300:
            raise DemoError(f"{method} {path} answered {status}: {short(answer)}")
        return answer

    def wait_until_up(self, pid: int | None, timeout: float) -> None:
        """Wait until the frontend answers.

        The frontend depends on onboarding and auth, so once its manifest is served
        their APIs are registered too (the onboarding API only while not onboarded).
        """
        deadline = time.monotonic() + timeout
        while True:
            if pid is not None and not process_alive(pid):
                raise DemoError("Home Assistant exited during startup")
            try:
                status, _ = self.request("GET", "/manifest.json", timeout=5)
                if status == 200:
                    return
            except (OSError, urllib.error.URLError):
                pass
            if time.monotonic() > deadline:
                raise DemoError(f"Home Assistant did not answer at {self.url}")
            time.sleep(1)

    def exchange_code(self, code: str) -> None:
        """Trade an authorization code for an access token."""
        status, answer = self.request(
            "POST",
            "/auth/token",
            form={
                "grant_type": "authorization_code",
                "code": code,
                "client_id": self.client_id,
            },
        )
        if status != 200 or "access_token" not in (answer or {}):
            raise DemoError(f"/auth/token answered {status}: {short(answer)}")
        self.token = answer["access_token"]

    def login(self) -> None:
        """Log in through the login-flow API (Home Assistant has no password grant)."""
        flow = self.call(
            "POST",
            "/auth/login_flow",
            {
                "client_id": self.client_id,
                "handler": ["homeassistant", None],
                "redirect_uri": self.redirect_uri,
            },
        )
        result = self.call(
            "POST",
            f"/auth/login_flow/{flow['flow_id']}",
            {"client_id": self.client_id, "username": USERNAME, "password": PASSWORD},
        )
        if result.get("type") != "create_entry":
            raise DemoError(
                f"login as {USERNAME} failed ({short(result.get('errors'))}); the"
                " demo-config/ folder has another owner: delete demo-config/ to start"
                " over"
            )
        self.exchange_code(result["result"])


def process_alive(pid: int) -> bool:
    """Whether the process exists (and is not a zombie we could reap)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        try:
            return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, IndexError):
            return True
    return True


def short(value: Any, limit: int = 400) -> str:
    """A one-line, bounded rendering of an API answer for error messages."""
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= limit else text[:limit] + "..."


def log(message: str) -> None:
    """Progress output, prefixed like the shell script's."""
    print(f"demo: {message}", flush=True)


# --------------------------------------------------------------------------------------
# onboarding and the config entry


def onboard(ha: HomeAssistant) -> None:
    """Finish onboarding, or log in when the owner already exists."""
    status, answer = ha.request("GET", "/api/onboarding")
    if status == 404:  # onboarded: Home Assistant no longer serves this API
        steps: dict[str, bool] = {}
    elif status == 200:
        steps = {step["step"]: step["done"] for step in answer}
    else:
        raise DemoError(f"/api/onboarding answered {status}: {short(answer)}")
    if not steps.get("user", True):
        status, answer = ha.request(
            "POST",
            "/api/onboarding/users",
            {
                "client_id": ha.client_id,
                "name": DISPLAY_NAME,
                "username": USERNAME,
                "password": PASSWORD,
                "language": LANGUAGE,
            },
        )
        if status == 200:
            log(f"created the owner user {USERNAME!r}")
            ha.exchange_code(answer["auth_code"])
        elif status != 403:  # 403: somebody finished this step meanwhile
            raise DemoError(f"creating the user answered {status}: {short(answer)}")
    if ha.token is None:
        ha.login()
        log(f"logged in as {USERNAME!r}")

    bodies = {
        "core_config": {},
        "analytics": {},
        "integration": {"client_id": ha.client_id, "redirect_uri": ha.redirect_uri},
    }
    for step, body in bodies.items():
        if steps.get(step, True):
            continue
        status, answer = ha.request("POST", f"/api/onboarding/{step}", body)
        if status not in {200, 403}:
            raise DemoError(f"onboarding step {step} answered {status}: {answer}")
    if not all(steps.values()):
        log("onboarding complete")


def wait_running(ha: HomeAssistant, timeout: float) -> None:
    """Wait until Home Assistant finished starting (config flows need that)."""
    deadline = time.monotonic() + timeout
    while True:
        status, answer = ha.request("GET", "/api/config")
        if status == 200 and answer.get("state", "RUNNING") == "RUNNING":
            return
        if time.monotonic() > deadline:
            raise DemoError("Home Assistant did not finish starting")
        time.sleep(1)


def option_values(field: dict[str, Any]) -> list[str]:
    """The values a (multi-)select form field offers, whatever its serialization."""
    options: Any = field.get("options")
    selector = field.get("selector")
    if isinstance(selector, dict):
        for spec in selector.values():
            if isinstance(spec, dict) and "options" in spec:
                options = spec["options"]
    if isinstance(options, dict):
        return [str(key) for key in options]
    values = []
    for option in options or []:
        if isinstance(option, dict):
            values.append(str(option["value"]))
        elif isinstance(option, (list, tuple)):
            values.append(str(option[0]))
        else:
            values.append(str(option))
    return values


def check_form(step: dict[str, Any], expected: str) -> None:
    """Fail with the flow's own words when it is not at the expected step."""
    if step.get("type") == "abort":
        raise DemoError(f"the {DOMAIN} config flow aborted: {step.get('reason')}")
    if step.get("type") != "form" or step.get("step_id") != expected:
        raise DemoError(f"expected the {expected!r} form, got {short(step)}")
    if step.get("errors"):
        raise DemoError(f"the {expected!r} step reported errors: {step['errors']}")


def domain_entries(ha: HomeAssistant) -> list[dict[str, Any]]:
    """The kinesis_video config entries (entry_id, title, state...)."""
    entries = ha.call("GET", f"/api/config/config_entries/entry?domain={DOMAIN}")
    return [entry for entry in entries if entry.get("domain") == DOMAIN]


def shown_values(step: dict[str, Any]) -> dict[str, Any]:
    """What a form shows filled in: each field's default or suggested value."""
    values: dict[str, Any] = {}
    for field in step.get("data_schema", []):
        description = field.get("description")
        if "default" in field:
            values[field.get("name")] = field["default"]
        elif isinstance(description, dict) and "suggested_value" in description:
            values[field.get("name")] = description["suggested_value"]
    return values


def emulator_arns(emulator_url: str) -> set[str]:
    """The ARNs of the emulator's streams, from its unsigned admin API."""
    url = f"{emulator_url.rstrip('/')}/_emulator/state"
    with urllib.request.urlopen(url, timeout=30) as resp:
        state = json.loads(resp.read())
    return {stream["StreamARN"] for stream in state["streams"]}


def point_at_emulator(
    ha: HomeAssistant, entry: dict[str, Any], args: argparse.Namespace
) -> bool:
    """Make the entry use the emulator's URL, keys and region; whether it does.

    The reconfigure form shows the stored key id, region and endpoint (never the
    secret). Unchanged: nothing to do. Another port (4567 was taken): the form
    updates the entry and keeps its options. Another region has other streams:
    not this entry's, so False.
    """
    step = ha.call(
        "POST",
        "/api/config/config_entries/flow",
        {
            "handler": DOMAIN,
            "entry_id": entry["entry_id"],
            "show_advanced_options": False,
        },
    )
    if step.get("type") != "form":
        return False
    flow = f"/api/config/config_entries/flow/{step['flow_id']}"
    wanted = {
        "access_key_id": args.access_key,
        "region": args.region,
        "endpoint_url": args.emulator_url,
    }
    shown = shown_values(step)
    if step.get("step_id") != "reconfigure" or shown.get("region") != args.region:
        ha.request("DELETE", flow)
        return False
    if all(shown.get(key) == value for key, value in wanted.items()):
        ha.request("DELETE", flow)
        return True
    step = ha.call("POST", flow, {**wanted, "secret_access_key": args.secret_key})
    if step.get("type") == "abort" and step.get("reason") == "reconfigure_successful":
        log(f"pointed the {DOMAIN} entry at the emulator at {args.emulator_url}")
        return True
    if step.get("type") == "form":
        ha.request("DELETE", flow)
    log(f"could not point the {DOMAIN} entry at the emulator: {short(step)}")
    return False


def configured_streams(
    ha: HomeAssistant, entry_id: str, timeout: float
) -> list[str] | None:
    """The entry's streams as its options form shows them, once it is loaded.

    None when it does not load in time (its streams or keys do not work here).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = next(
            (e.get("state") for e in domain_entries(ha) if e["entry_id"] == entry_id),
            None,
        )
        if state is None or state in {"setup_error", "migration_error"}:
            return None
        if state == "loaded":
            step = ha.call(
                "POST", "/api/config/config_entries/options/flow", {"handler": entry_id}
            )
            if step.get("type") == "form":
                ha.request(
                    "DELETE",
                    f"/api/config/config_entries/options/flow/{step['flow_id']}",
                )
                return list(shown_values(step).get("streams") or [])
            # "not_loaded": a reload (after reconfigure) is under way.
        time.sleep(1)
    return None


def keep_entry(ha: HomeAssistant, args: argparse.Namespace) -> int | None:
    """Keep the entry of an earlier run with its options; its stream count.

    The emulator's ARNs come from its stream names, so an entry made by an earlier
    run still names streams that exist. None when there is no such entry (none, or
    several, or one whose streams are not the emulator's, e.g. made before ARNs
    were stable or for other streams): then a new one replaces it.
    """
    entries = domain_entries(ha)
    if len(entries) != 1:
        return None
    entry = entries[0]
    if not point_at_emulator(ha, entry, args):
        return None
    streams = configured_streams(ha, entry["entry_id"], min(args.timeout, 60))
    if streams is None:
        log(f"the previous {DOMAIN} entry did not load against this emulator")
        return None
    available = emulator_arns(args.emulator_url)
    if not streams or not set(streams) <= available:
        log(f"the previous {DOMAIN} entry names streams this emulator does not have")
        return None
    log(
        f"kept the {DOMAIN} entry {entry.get('title')!r} and its options"
        f" ({len(streams)} streams)"
    )
    return len(streams)


def ensure_entry(ha: HomeAssistant, args: argparse.Namespace) -> int:
    """An entry for the emulator's streams, kept from an earlier run if it fits.

    Returns how many streams (cameras) it has.
    """
    kept = keep_entry(ha, args)
    if kept is not None:
        return kept
    return len(create_entry(ha, args))


def create_entry(ha: HomeAssistant, args: argparse.Namespace) -> list[str]:
    """Replace existing kinesis_video entries with one for the emulator's streams."""
    for entry in domain_entries(ha):
        ha.call("DELETE", f"/api/config/config_entries/entry/{entry['entry_id']}")
        log(f"removed the previous {DOMAIN} entry {entry.get('title')!r}")

    step = ha.call(
        "POST",
        "/api/config/config_entries/flow",
        {"handler": DOMAIN, "show_advanced_options": False},
    )
    check_form(step, "user")
    flow = f"/api/config/config_entries/flow/{step['flow_id']}"
    step = ha.call(
        "POST",
        flow,
        {
            "access_key_id": args.access_key,
            "secret_access_key": args.secret_key,
            "region": args.region,
            "endpoint_url": args.emulator_url,
        },
    )
    check_form(step, "streams")
    fields = {f.get("name"): f for f in step.get("data_schema", [])}
    if "streams" not in fields:
        raise DemoError(f"the streams form has no 'streams' field: {short(step)}")
    arns = option_values(fields["streams"])
    if not arns:
        raise DemoError("the streams form offers no streams (ListStreams found none)")
    step = ha.call("POST", flow, {"streams": arns})
    if step.get("type") != "create_entry":
        raise DemoError(f"the streams step did not create the entry: {short(step)}")
    log(f"created the {DOMAIN} entry {step.get('title')!r} with {len(arns)} streams")
    return arns


def wait_cameras(ha: HomeAssistant, count: int, timeout: float) -> list[dict[str, Any]]:
    """Wait until the entry's camera entities exist (and report their states)."""
    deadline = time.monotonic() + timeout
    while True:
        entries = ha.call("GET", f"/api/config/config_entries/entry?domain={DOMAIN}")
        state = next(
            (e.get("state") for e in entries if e.get("domain") == DOMAIN), "missing"
        )
        if state in {"setup_error", "migration_error", "failed_unload"}:
            raise DemoError(
                f"the {DOMAIN} entry did not set up (state {state});"
                " see demo-config/home-assistant.log"
            )
        cameras = [
            s
            for s in ha.call("GET", "/api/states")
            if s["entity_id"].startswith("camera.")
            and s["state"] not in {"unavailable", "unknown"}
        ]
        if state == "loaded" and len(cameras) >= count:
            return cameras
        if time.monotonic() > deadline:
            raise DemoError(
                f"entry state {state}, {len(cameras)} of {count} cameras available"
            )
        time.sleep(1)


class WebSocket:
    """Just enough of a websocket client (RFC 6455) for a few API commands."""

    def __init__(self, url: str, token: str) -> None:
        parts = urllib.parse.urlsplit(url)
        self.sock = socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or 80), timeout=30
        )
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                "GET /api/websocket HTTP/1.1\r\n"
                f"Host: {parts.netloc}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self._recv()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise DemoError(f"websocket upgrade refused: {head[:200]!r}")
        self.next_id = 1
        self.receive()  # auth_required
        self.send({"type": "auth", "access_token": token})
        if self.receive().get("type") != "auth_ok":
            raise DemoError("websocket authentication failed")

    def _recv(self) -> bytes:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise DemoError("websocket closed by Home Assistant")
        return chunk

    def _read(self, count: int) -> bytes:
        while len(self.buffer) < count:
            self.buffer += self._recv()
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def send(self, message: dict[str, Any]) -> None:
        payload = json.dumps(message).encode()
        header = bytes([0x81])  # FIN + text
        size = len(payload)
        if size < 126:
            header += bytes([0x80 | size])
        elif size < 65536:
            header += bytes([0x80 | 126]) + struct.pack("!H", size)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", size)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def receive(self) -> dict[str, Any]:
        message = b""
        while True:
            first, second = self._read(2)
            size = second & 0x7F
            if size == 126:
                (size,) = struct.unpack("!H", self._read(2))
            elif size == 127:
                (size,) = struct.unpack("!Q", self._read(8))
            payload = self._read(size)  # servers do not mask
            opcode = first & 0x0F
            if opcode == 0x8:
                raise DemoError("websocket closed by Home Assistant")
            if opcode in {0x0, 0x1, 0x2}:
                message += payload
                if first & 0x80:
                    return json.loads(message)

    def command(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send a command; return its result message."""
        msg_id = self.next_id
        self.next_id += 1
        self.send({"id": msg_id, **message})
        while True:
            answer = self.receive()
            if answer.get("id") == msg_id and answer.get("type") == "result":
                return answer

    def close(self) -> None:
        self.sock.close()


def confirm_http_config(ha: HomeAssistant, marker: Path | None) -> None:
    """Confirm the HTTP settings from configuration.yaml where HA asks for that.

    Since 2026.x Home Assistant moves the YAML http: settings into its storage as
    a trial ("pending") config that reverts (and restarts) after five minutes
    unless confirmed. Older versions have no such command: nothing to do. The
    marker file tells scripts/demo to leave http: out of the YAML from now on.
    """
    assert ha.token is not None
    ws = WebSocket(ha.url, ha.token)
    try:
        answer = ws.command({"type": "http/config"})
        if not answer.get("success"):
            return  # unknown command: this version reads http: from YAML each start
        config = answer["result"]
        pending = config.get("pending")
        if (
            config.get("active_config_type") == "pending"
            and pending is not None
            and pending.get("error") is None
        ):
            result = ws.command({"type": "http/config/promote"})
            if not result.get("success"):
                raise DemoError(f"confirming the HTTP config failed: {result}")
            log(f"confirmed the HTTP settings ({ha.url}) in Home Assistant")
            # Its "http: in YAML is deprecated" repair: the next run leaves it out.
            ws.command(
                {
                    "type": "repairs/ignore_issue",
                    "domain": "http",
                    "issue_id": "deprecated_yaml",
                    "ignore": True,
                }
            )
        if marker is not None:
            marker.write_text(
                "Home Assistant keeps the http: settings in .storage; scripts/demo"
                " leaves them out of configuration.yaml.\n",
                encoding="utf-8",
            )
    finally:
        ws.close()


def set_country(ha: HomeAssistant) -> None:
    """Set the country the onboarding UI would ask for (else a repair nags)."""
    if ha.call("GET", "/api/config").get("country", "US") is not None:
        return
    assert ha.token is not None
    ws = WebSocket(ha.url, ha.token)
    try:
        ws.command({"type": "config/core/update", "country": "US"})
    finally:
        ws.close()


def remove_onboarding_extras(ha: HomeAssistant) -> None:
    """Remove the entries the core_config onboarding step adds (met, shopping list,
    Google Translate TTS, radio browser): their requirements are not installed, they
    need the internet, and they would crowd the demo's dashboard."""
    for entry in ha.call("GET", "/api/config/config_entries/entry"):
        if entry.get("source") == "onboarding":
            ha.call("DELETE", f"/api/config/config_entries/entry/{entry['entry_id']}")
            log(f"removed onboarding's default entry {entry.get('title')!r}")


def provision(args: argparse.Namespace) -> None:
    """The whole provisioning sequence."""
    ha = HomeAssistant(args.url)
    ha.wait_until_up(args.pid, args.timeout)
    onboard(ha)
    confirm_http_config(ha, args.http_marker)
    set_country(ha)
    wait_running(ha, args.timeout)
    count = ensure_entry(ha, args)
    for camera in wait_cameras(ha, count, args.timeout):
        log(f"  {camera['entity_id']}: {camera['state']}")
    remove_onboarding_extras(ha)


# --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    install = sub.add_parser("install")
    install.add_argument("domains", nargs="+")
    install.add_argument("--custom", action="append", default=[], type=Path)

    prov = sub.add_parser("provision")
    prov.add_argument("--url", required=True)
    prov.add_argument("--emulator-url", required=True)
    prov.add_argument("--access-key", required=True)
    prov.add_argument("--secret-key", required=True)
    prov.add_argument("--region", required=True)
    prov.add_argument("--pid", type=int)
    prov.add_argument("--http-marker", type=Path)
    prov.add_argument("--timeout", type=float, default=300)

    tok = sub.add_parser("token")
    tok.add_argument("--url", default="http://127.0.0.1:8123")

    args = parser.parse_args(argv)
    try:
        if args.command == "install":
            install_missing(args.domains, args.custom)
        elif args.command == "provision":
            provision(args)
        else:
            ha = HomeAssistant(args.url)
            ha.login()
            print(ha.token)
    except DemoError as err:
        print(f"demo: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
