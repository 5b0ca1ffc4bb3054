"""The one error map, the answer parsers, and set-up checks of the client."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from custom_components.kinesis_video.kvs import (
    AuthenticationError,
    AwsCredentials,
    ClockSkewError,
    InvalidArgumentError,
    KinesisVideoClient,
    NoDataRetentionError,
    NoMediaError,
    PermissionDeniedError,
    ServiceError,
    StreamNotFoundError,
    ThrottledError,
    error_from_answer,
    wire,
)
from custom_components.kinesis_video.kvs.client import control_endpoint

from .conftest import aligned_range


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        (("NotAuthorizedException", 401, "no"), (PermissionDeniedError, False, False)),
        (
            ("InvalidSignatureException", 403, "Signature expired: x"),
            (ClockSkewError, False, False),
        ),
        (("RequestTimeTooSkewed", 403, ""), (ClockSkewError, False, False)),
        (
            ("InvalidSignatureException", 403, "bad"),
            (AuthenticationError, False, False),
        ),
        (("", 403, ""), (AuthenticationError, False, False)),
        (("ClientLimitExceededException", 400, ""), (ThrottledError, True, False)),
        (("", 429, ""), (ThrottledError, True, False)),
        (("ResourceNotFoundException", 404, ""), (NoMediaError, False, False)),
        (("UnknownOperationException", 404, ""), (ServiceError, False, True)),
        (("UnknownOperationException", 200, ""), (ServiceError, False, True)),
        (("NoDataRetentionException", 400, ""), (NoDataRetentionError, False, False)),
        (("InvalidArgumentException", 400, ""), (InvalidArgumentError, False, False)),
        (("InternalFailure", 500, ""), (ServiceError, True, False)),
        (("Something", 400, ""), (ServiceError, False, False)),
    ],
)
def test_error_map(
    answer: tuple[str, int, str], outcome: tuple[type[Exception], bool, bool]
) -> None:
    code, status, message = answer
    expected, retryable, moved = outcome
    error = error_from_answer(code, status, message, "Op", NoMediaError)
    assert type(error) is expected
    assert (error.retryable, error.endpoint_moved) == (retryable, moved)
    assert error.aws_code == (code or None)
    assert str(error).startswith("Op: ")


def test_error_message_is_cut_short() -> None:
    error = error_from_answer("X", 400, "m" * 5000, "Op", StreamNotFoundError)
    assert len(str(error)) < 300


def test_error_of_answers() -> None:
    header = {wire.ERROR_TYPE_HEADER: "ResourceNotFoundException:http://doc/"}
    assert wire.error_of(header, b'{"message": "gone"}') == (
        "ResourceNotFoundException",
        "gone",
    )
    assert wire.error_of({}, b'{"__type": "a.b#Throttling", "Message": "slow"}') == (
        "Throttling",
        "slow",
    )
    assert wire.error_of({}, b"<html>502</html>") == ("", "")
    assert wire.error_of({}, b"[1]") == ("", "")
    assert wire.error_of({}, b"") == ("", "")


def test_answer_time_and_ranges() -> None:
    assert wire.answer_time("2026-12-01T00:00:00") == datetime(2026, 12, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="timestamp"):
        wire.answer_time(None)
    with pytest.raises(InvalidArgumentError, match="between"):
        wire.check_range("Expires", 10, 300, 43200)


def test_control_endpoints() -> None:
    assert (
        control_endpoint("eu-west-1") == "https://kinesisvideo.eu-west-1.amazonaws.com"
    )
    assert control_endpoint("cn-north-1").endswith(".amazonaws.com.cn")


async def test_set_up_checks() -> None:
    async with aiohttp.ClientSession() as session:
        for creds in (
            AwsCredentials("AKIA", "s", "not a region!"),
            AwsCredentials("AKIA", "s", "us-east-1", "ftp://example.com"),
            AwsCredentials("AKIA", "s", "us-east-1", "http://"),
        ):
            with pytest.raises(InvalidArgumentError, match="Cannot set up"):
                KinesisVideoClient(session, creds)
        # A session token is sent, never shown.
        creds = AwsCredentials("AKIA", "s", "us-east-1", session_token="tok3n")
        assert "tok3n" not in repr(creds)
        assert "amazonaws.com" in KinesisVideoClient(session, creds)._control_url


async def test_has_fragments(client: KinesisVideoClient, arns: dict[str, str]) -> None:
    start, end = aligned_range(1)
    assert await client.has_fragments(arns["backyard"], start, end)
    long_ago = datetime.now(UTC) - timedelta(hours=5)
    assert not await client.has_fragments(
        arns["backyard"], long_ago, long_ago + timedelta(minutes=1)
    )
