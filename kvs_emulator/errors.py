"""AWS errors as the service sends them: status, x-amzn-ErrorType, JSON message."""

from __future__ import annotations

import json
from typing import Final

from aiohttp import web

# HTTP status of each error code, from the botocore service models.
ERROR_STATUS: Final[dict[str, int]] = {
    "AccessDeniedException": 401,
    "AccountStreamLimitExceededException": 400,
    "ClientLimitExceededException": 400,
    "DeviceStreamLimitExceededException": 400,
    "IncompleteSignatureException": 400,
    "InvalidArgumentException": 400,
    "InvalidCodecPrivateDataException": 400,
    "InvalidDeviceException": 400,
    "InvalidMediaFrameException": 400,
    "InvalidSignatureException": 403,
    "MissingAuthenticationTokenException": 403,
    "MissingCodecPrivateDataException": 400,
    "NoDataRetentionException": 400,
    "NotAuthorizedException": 401,
    "ResourceInUseException": 400,
    "ResourceNotFoundException": 404,
    "SerializationException": 400,
    "ServiceUnavailableException": 503,
    "InternalFailure": 500,
    "TagsPerResourceExceededLimitException": 400,
    "UnrecognizedClientException": 403,
    "UnsupportedStreamMediaTypeException": 400,
    "VersionMismatchException": 400,
}


class KvsError(Exception):
    """An error the emulator answers the way AWS would."""

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status if status is not None else ERROR_STATUS.get(code, 400)


def invalid_argument(message: str) -> KvsError:
    """Shortcut for the most common error."""
    return KvsError("InvalidArgumentException", message)


def not_found(message: str) -> KvsError:
    """Shortcut for a missing stream or missing media."""
    return KvsError("ResourceNotFoundException", message)


def error_response(error: KvsError) -> web.Response:
    """An error exactly as AWS sends it, so botocore raises the same ClientError."""
    return web.Response(
        status=error.status,
        headers={
            "x-amzn-ErrorType": f"{error.code}:http://internal.amazon.com/coral/"
            "com.amazon.kinesis.video.v20170930/",
            "x-amzn-RequestId": "00000000-0000-4000-8000-000000000000",
        },
        content_type="application/json",
        text=json.dumps({"message": error.message}),
    )


def unknown_operation_response() -> web.Response:
    """What AWS answers on the wrong endpoint: an error inside an HTTP 200."""
    return web.Response(
        status=200,
        headers={"x-amzn-ErrorType": "UnknownOperationException"},
        content_type="application/json",
        text=json.dumps(
            {
                "Output": {
                    "__type": "com.amazon.coral.service#UnknownOperationException"
                },
                "Version": "1.0",
            }
        ),
    )
