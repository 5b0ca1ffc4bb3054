"""AWS errors as the service sends them: status, x-amzn-ErrorType, JSON message."""

from __future__ import annotations

from typing import Final

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
