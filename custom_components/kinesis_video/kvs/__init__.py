"""Async client library for Amazon Kinesis Video Streams (no Home Assistant here).

``KinesisVideoClient`` speaks the control plane and archived media over an
injected ``aiohttp.ClientSession``, signed with botocore's SigV4 signer.
"""

from __future__ import annotations

from .client import (
    DOWNLOAD_CHUNK,
    LATEST_IMAGE_INTERVAL_MS,
    LATEST_IMAGE_WINDOW,
    LIST_FRAGMENTS_PAGE,
    MEDIA_FRAGMENTS_BATCH,
    KinesisVideoClient,
    RunInExecutor,
)
from .errors import (
    AuthenticationError,
    ClockSkewError,
    InvalidArgumentError,
    KinesisVideoError,
    NoDataRetentionError,
    NoMediaError,
    PermissionDeniedError,
    ServiceError,
    StreamNotFoundError,
    ThrottledError,
    error_from_answer,
)
from .models import (
    AwsCredentials,
    ContainerFormat,
    DiscontinuityMode,
    DisplayTimestamp,
    Fragment,
    FragmentList,
    FragmentListBuilder,
    Image,
    ImageFormat,
    PlaybackMode,
    SessionUrl,
    StreamArn,
    StreamInfo,
    TimestampType,
    parse_stream_arn,
)
from .pacing import (
    GET_CLIP_INTERVAL_S,
    LIST_FRAGMENTS_BURST,
    LIST_FRAGMENTS_TPS,
    RetryPolicy,
    TokenBucket,
)

__all__ = [
    "DOWNLOAD_CHUNK",
    "GET_CLIP_INTERVAL_S",
    "LATEST_IMAGE_INTERVAL_MS",
    "LATEST_IMAGE_WINDOW",
    "LIST_FRAGMENTS_BURST",
    "LIST_FRAGMENTS_PAGE",
    "LIST_FRAGMENTS_TPS",
    "MEDIA_FRAGMENTS_BATCH",
    "AuthenticationError",
    "AwsCredentials",
    "ClockSkewError",
    "ContainerFormat",
    "DiscontinuityMode",
    "DisplayTimestamp",
    "Fragment",
    "FragmentList",
    "FragmentListBuilder",
    "Image",
    "ImageFormat",
    "InvalidArgumentError",
    "KinesisVideoClient",
    "KinesisVideoError",
    "NoDataRetentionError",
    "NoMediaError",
    "PermissionDeniedError",
    "PlaybackMode",
    "RetryPolicy",
    "RunInExecutor",
    "ServiceError",
    "SessionUrl",
    "StreamArn",
    "StreamInfo",
    "StreamNotFoundError",
    "ThrottledError",
    "TimestampType",
    "TokenBucket",
    "error_from_answer",
    "parse_stream_arn",
]
