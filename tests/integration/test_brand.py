"""Home Assistant serves the integration's own brand images (2026.3 and newer)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.kinesis_video.const import DOMAIN

BRAND = Path(__file__).parents[2] / "custom_components" / DOMAIN / "brand"


@pytest.mark.skipif(
    importlib.util.find_spec("homeassistant.components.brands") is None,
    reason="Home Assistant before 2026.3 has no brands proxy",
)
@pytest.mark.parametrize(
    "image", ["icon.png", "icon@2x.png", "logo.png", "logo@2x.png"]
)
async def test_brand_images_served(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, image: str
) -> None:
    """The proxy answers from brand/, without asking the brands CDN."""
    assert await async_setup_component(hass, "brands", {})
    client = await hass_client()

    # placeholder=no: a miss would be a 404 (or a CDN fetch), never a stand-in.
    response = await client.get(
        f"/api/brands/integration/{DOMAIN}/{image}?placeholder=no"
    )

    assert response.status == 200
    assert response.content_type == "image/png"
    assert await response.read() == (BRAND / image).read_bytes()
