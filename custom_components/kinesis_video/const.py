"""Constants for the Amazon Kinesis Video Streams integration."""

from __future__ import annotations

from datetime import timedelta
from typing import Final

DOMAIN: Final = "kinesis_video"

# Config entry data (credentials and where to reach the service).
CONF_ACCESS_KEY_ID: Final = "access_key_id"
CONF_SECRET_ACCESS_KEY: Final = "secret_access_key"  # noqa: S105 - a key name
CONF_REGION: Final = "region"
CONF_ENDPOINT_URL: Final = "endpoint_url"

# Config entry options (what to show and how to play it).
CONF_STREAMS: Final = "streams"
CONF_HLS_CONTAINER: Final = "hls_container"
CONF_URL_LIFETIME: Final = "url_lifetime"
CONF_TIMESTAMP_TYPE: Final = "timestamp_type"

CONTAINER_FMP4: Final = "FRAGMENTED_MP4"
CONTAINER_MPEG_TS: Final = "MPEG_TS"
TIMESTAMP_SERVER: Final = "SERVER_TIMESTAMP"
TIMESTAMP_PRODUCER: Final = "PRODUCER_TIMESTAMP"

DEFAULT_HLS_CONTAINER: Final = CONTAINER_FMP4
# One hour: a viewer costs one GetHLSStreamingSessionURL call per hour, well under
# the 1 TPS per stream limit, and a leaked URL is useless soon after.
DEFAULT_URL_LIFETIME: Final = 3600
MIN_URL_LIFETIME: Final = 300  # KVS Expires bounds
MAX_URL_LIFETIME: Final = 43200
DEFAULT_TIMESTAMP_TYPE: Final = TIMESTAMP_SERVER

# Refresh a session URL this long before it expires, so the running stream never
# sees a 403 in normal operation.
URL_REFRESH_MARGIN: Final = timedelta(seconds=60)
# After a failed refresh, try again after this (doubling up to the maximum).
URL_RETRY_MIN: Final = timedelta(seconds=10)
URL_RETRY_MAX: Final = timedelta(minutes=5)
# While a stream runs, check its session URL this often (KVS may close a session
# early, e.g. when an 11th session is opened for the stream).
SESSION_CHECK_INTERVAL: Final = timedelta(seconds=30)
# Stills come from GetImages, charged per image: reuse one this long.
STILL_CACHE_SECONDS: Final = 30.0
# Stream status (DescribeStream) poll; the control plane allows far more.
STATUS_POLL_INTERVAL: Final = timedelta(minutes=5)
# Stream health: ListFragments over the last minute, twice a minute per stream.
# A fragment that started within the window means the camera is sending.
HEALTH_POLL_INTERVAL: Final = timedelta(seconds=30)
HEALTH_WINDOW: Final = timedelta(seconds=60)
