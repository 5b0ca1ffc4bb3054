"""Repository metadata: manifest, brand images, HACS file, licence, module layout.

These mirror the checks hassfest, the brands proxy and HACS make, which CI
cannot run (they need GitHub); the numbers are theirs, the code is ours.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import typing
from pathlib import Path

import pytest
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator
from homeassistant.util.yaml import load_yaml_dict
from PIL import Image

import custom_components.kinesis_video as package

ROOT = Path(__file__).parent.parent
INTEGRATION = ROOT / "custom_components" / "kinesis_video"
BRAND = INTEGRATION / "brand"

# The rules of Home Assistant's Integration Quality Scale (hassfest's list).
QUALITY_SCALE_RULES = {
    # Bronze
    "action-setup",
    "appropriate-polling",
    "brands",
    "common-modules",
    "config-flow",
    "config-flow-test-coverage",
    "dependency-transparency",
    "docs-actions",
    "docs-conditions",
    "docs-high-level-description",
    "docs-installation-instructions",
    "docs-removal-instructions",
    "docs-triggers",
    "entity-event-setup",
    "entity-unique-id",
    "has-entity-name",
    "runtime-data",
    "test-before-configure",
    "test-before-setup",
    "unique-config-entry",
    # Silver
    "action-exceptions",
    "config-entry-unloading",
    "docs-configuration-parameters",
    "docs-installation-parameters",
    "entity-unavailable",
    "integration-owner",
    "log-when-unavailable",
    "parallel-updates",
    "reauthentication-flow",
    "test-coverage",
    # Gold
    "devices",
    "diagnostics",
    "discovery",
    "discovery-update-info",
    "docs-data-update",
    "docs-examples",
    "docs-known-limitations",
    "docs-supported-devices",
    "docs-supported-functions",
    "docs-troubleshooting",
    "docs-use-cases",
    "dynamic-devices",
    "entity-category",
    "entity-device-class",
    "entity-disabled-by-default",
    "entity-translations",
    "exception-translations",
    "icon-translations",
    "reconfiguration-flow",
    "repair-issues",
    "stale-devices",
    # Platinum
    "async-dependency",
    "inject-websession",
    "strict-typing",
}


def _manifest() -> dict[str, typing.Any]:
    result: dict[str, typing.Any] = json.loads(
        (INTEGRATION / "manifest.json").read_text(encoding="utf-8")
    )
    return result


def test_manifest_has_what_hassfest_asks() -> None:
    """integration_type and loggers set; keys in hassfest's order."""
    manifest = _manifest()
    # One entry is an AWS account and region with a device per stream.
    assert manifest["integration_type"] == "hub"
    # The libraries whose loggers the integration's calls go through: botocore
    # signs every request (HTTP is Home Assistant's own aiohttp session).
    assert manifest["loggers"] == ["botocore"]
    keys = list(manifest)
    assert keys[:2] == ["domain", "name"]
    assert keys[2:] == sorted(keys[2:])
    assert manifest["version"]


def _opaque_box(image: Image.Image) -> tuple[int, int, int, int] | None:
    return image.getchannel("A").getbbox()


@pytest.mark.parametrize(("name", "size"), [("icon.png", 256), ("icon@2x.png", 512)])
def test_brand_icons(name: str, size: int) -> None:
    """Square, transparent, trimmed PNGs at the sizes the brands rules ask."""
    with Image.open(BRAND / name) as image:
        assert image.format == "PNG"
        assert image.mode == "RGBA"
        assert image.size == (size, size)
        assert image.getpixel((0, 0))[3] == 0  # type: ignore[index]
        box = _opaque_box(image)
    assert box is not None
    left, top, right, bottom = box
    # Trimmed: the drawing touches two opposite edges.
    assert (left, right) == (0, size) or (top, bottom) == (0, size)


@pytest.mark.parametrize(
    ("name", "low", "high"), [("logo.png", 128, 256), ("logo@2x.png", 256, 512)]
)
def test_brand_logos(name: str, low: int, high: int) -> None:
    """Landscape, shortest side within the brands bounds, trimmed, transparent."""
    with Image.open(BRAND / name) as image:
        assert image.format == "PNG"
        assert image.mode == "RGBA"
        width, height = image.size
        box = _opaque_box(image)
    assert width > height
    assert low <= height <= high
    assert box is not None
    left, top, right, bottom = box
    assert (left, right) == (0, width) or (top, bottom) == (0, height)


def test_brand_hidpi_doubles() -> None:
    """Each @2x image is twice its 1x image."""
    for base in ("icon", "logo"):
        with (
            Image.open(BRAND / f"{base}.png") as one,
            Image.open(BRAND / f"{base}@2x.png") as two,
        ):
            assert two.size == (one.size[0] * 2, one.size[1] * 2)


def test_hacs_and_license() -> None:
    """hacs.json uses only keys HACS knows; an MIT LICENSE sits at the top."""
    hacs = json.loads((ROOT / "hacs.json").read_text(encoding="utf-8"))
    known = {
        "name",
        "content_in_root",
        "zip_release",
        "filename",
        "hide_default_branch",
        "country",
        "homeassistant",
        "hacs",
        "persistent_directory",
        "render_readme",
    }
    assert set(hacs) <= known
    assert hacs["name"] == _manifest()["name"]
    license_text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert license_text.startswith("MIT License")
    assert "Kinesis Video for Home Assistant contributors" in license_text


def test_quality_scale_lists_every_rule() -> None:
    """Every rule once, with a status hassfest accepts; exemptions say why."""
    rules = load_yaml_dict(str(INTEGRATION / "quality_scale.yaml"))["rules"]
    assert set(rules) == QUALITY_SCALE_RULES
    for name, value in rules.items():
        status = value["status"] if isinstance(value, dict) else value
        assert status in {"done", "todo", "exempt"}, name
        if status == "exempt":
            assert isinstance(value, dict), name
            assert value["comment"], name


def _modules() -> list[typing.Any]:
    return [
        importlib.import_module(f"{package.__name__}.{info.name}")
        for info in pkgutil.iter_modules(package.__path__)
    ]


def test_coordinators_live_in_coordinator_module() -> None:
    """As core's pylint plugin asks: coordinators are defined in coordinator.py."""
    coordinators = {
        (cls.__module__, name)
        for module in _modules()
        for name, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, DataUpdateCoordinator) and cls is not DataUpdateCoordinator
    }
    assert coordinators
    assert {module for module, _ in coordinators} == {f"{package.__name__}.coordinator"}


def test_platforms_take_config_entry_callback() -> None:
    """Entity platforms type their callback as AddConfigEntryEntitiesCallback."""
    platforms = [m for m in _modules() if hasattr(m, "async_setup_entry")]
    platforms = [m for m in platforms if m.__name__ != package.__name__]
    assert platforms
    for module in platforms:
        hints = typing.get_type_hints(module.async_setup_entry)
        assert hints["async_add_entities"] is AddConfigEntryEntitiesCallback, (
            module.__name__
        )


def _strings() -> dict[str, typing.Any]:
    loaded: dict[str, typing.Any] = json.loads(
        (INTEGRATION / "strings.json").read_text(encoding="utf-8")
    )
    return loaded


def _texts(node: object) -> typing.Iterator[str]:
    if isinstance(node, dict):
        for value in node.values():
            yield from _texts(value)
    elif isinstance(node, str):
        yield node


def test_translations_as_hassfest_wants_them() -> None:
    """English = strings.json; every action field and select option translated.

    Option values with a translation key must be lowercase translation keys,
    and no text may hold HTML (hassfest refuses both).
    """
    strings = _strings()
    english = json.loads(
        (INTEGRATION / "translations" / "en.json").read_text(encoding="utf-8")
    )
    assert english == strings
    assert not [text for text in _texts(strings) if "<" in text or ">" in text]
    services = load_yaml_dict(str(INTEGRATION / "services.yaml"))
    assert set(services) == set(strings["services"])
    for service, spec in services.items():
        fields = spec.get("fields", {})
        assert set(fields) == set(strings["services"][service]["fields"]), service
        for field in fields.values():
            select = (field.get("selector") or {}).get("select")
            if not select or "translation_key" not in select:
                continue
            options = strings["selector"][select["translation_key"]]["options"]
            assert set(select["options"]) == set(options)
            assert all(key == key.lower() for key in options)
    for key, selector in strings["selector"].items():
        assert all(option == option.lower() for option in selector["options"]), key
