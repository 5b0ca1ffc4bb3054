"""Home Assistant's HTTP server for tests where the stream worker plays live video.

The worker (FFmpeg) reads the camera's local playlists (live_proxy) from Home
Assistant's own server. The test harness does not listen on the configured
port (8123); this starts the app on a loopback port and records that port
where Home Assistant keeps its own address, as the http integration does.
"""

from __future__ import annotations

from typing import Any

from homeassistant.core import HomeAssistant


async def serve_home_assistant(hass: HomeAssistant, hass_client_no_auth: Any) -> Any:
    """Serve Home Assistant's app; the client, without a login (as FFmpeg)."""
    client = await hass_client_no_auth()
    assert hass.config.api is not None
    hass.config.api.port = client.port
    return client


def require_client_certificates(hass: HomeAssistant) -> None:
    """Home Assistant's server asks clients for a certificate (FFmpeg has none).

    The one setting that keeps the stream worker off the local playlists:
    it plays the session URL itself.
    """
    hass.http.ssl_peer_certificate = "/ssl/clients-ca.pem"
