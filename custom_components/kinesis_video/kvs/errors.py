"""Errors of the Kinesis Video client, and the one map from AWS's answers to them.

Messages name the operation and AWS's code and message (cut short); never a
secret, a signature or a URL that carries a session token.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

MESSAGE_MAX: Final = 200

# The key itself is refused (unknown, wrong secret, expired): re-authenticate.
AUTH_CODES: Final = frozenset(
    [
        "ExpiredTokenException",
        "IncompleteSignatureException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "MissingAuthenticationTokenException",
        "SignatureDoesNotMatch",
        "UnrecognizedClientException",
    ]
)
# The request was signed too far from AWS's time (5 minutes for most services):
# the local clock is off, and new keys would not help. KVS answers with
# InvalidSignatureException "Signature expired: ..." / "Signature not yet current: ...".
CLOCK_SKEW_CODES: Final = frozenset(
    ["RequestExpired", "RequestInTheFuture", "RequestTimeTooSkewed"]
)
CLOCK_SKEW_MESSAGES: Final = ("Signature expired", "Signature not yet current")
# The key is fine but its IAM policy does not allow the action: new keys would
# not help (re-authenticating with the same key would loop), the policy would.
PERMISSION_CODES: Final = frozenset(["AccessDeniedException", "NotAuthorizedException"])
THROTTLE_CODES: Final = frozenset(
    ["ClientLimitExceededException", "ThrottlingException", "TooManyRequestsException"]
)
# Permanent: the request (or the stream's media) cannot be served as asked.
INVALID_CODES: Final = frozenset(
    [
        "InvalidArgumentException",
        "UnsupportedStreamMediaTypeException",
        "InvalidCodecPrivateDataException",
        "MissingCodecPrivateDataException",
        "InvalidMediaFrameException",
        "SerializationException",
    ]
)


class KinesisVideoError(Exception):
    """Base error. ``code`` is a short stable key; ``aws_code`` the AWS error code."""

    code: str = "unknown"

    def __init__(
        self,
        message: str,
        *,
        aws_code: str | None = None,
        retryable: bool = False,
        endpoint_moved: bool = False,
    ) -> None:
        super().__init__(message)
        self.aws_code = aws_code
        self.retryable = retryable
        self.endpoint_moved = endpoint_moved


class AuthenticationError(KinesisVideoError):
    """The credentials are refused: unknown key, wrong secret or expired."""

    code = "authentication"


class ClockSkewError(KinesisVideoError):
    """AWS refused the request's signing time: this machine's clock is off."""

    code = "clock_skew"


class PermissionDeniedError(KinesisVideoError):
    """Valid credentials whose IAM policy does not allow this action."""

    code = "permission_denied"


class ThrottledError(KinesisVideoError):
    """The per-stream or account request rate was exceeded (after retries)."""

    code = "throttled"


class NoMediaError(KinesisVideoError):
    """No fragments in the requested range (or none recent enough for LIVE)."""

    code = "no_media"


class StreamNotFoundError(KinesisVideoError):
    """The stream does not exist (any more)."""

    code = "stream_not_found"


class NoDataRetentionError(KinesisVideoError):
    """The stream keeps no media, so there is no archive to read."""

    code = "no_data_retention"


class InvalidArgumentError(KinesisVideoError):
    """The request is invalid, or the stream's media cannot be served that way."""

    code = "invalid_argument"


class ServiceError(KinesisVideoError):
    """5xx, connection failure, timeout or an unexpected answer (after retries)."""

    code = "service"


def _is_clock_skew(code: str, status: int, detail: str) -> bool:
    return code in CLOCK_SKEW_CODES or (
        code in AUTH_CODES and detail.startswith(CLOCK_SKEW_MESSAGES)
    )


def _code_in(codes: frozenset[str]) -> Callable[[str, int, str], bool]:
    return lambda code, status, detail: code in codes


# The first rule that matches an answer (its code, HTTP status and message) gives
# the error class (None: the caller's ``not_found``), retryable, endpoint moved.
# No rule: a ServiceError, retryable if a 5xx.
_RULES: Final[
    tuple[
        tuple[
            Callable[[str, int, str], bool], type[KinesisVideoError] | None, bool, bool
        ],
        ...,
    ]
] = (
    (_code_in(PERMISSION_CODES), PermissionDeniedError, False, False),
    (_is_clock_skew, ClockSkewError, False, False),
    (
        lambda code, status, detail: code in AUTH_CODES or status in (401, 403),
        AuthenticationError,
        False,
        False,
    ),
    (
        lambda code, status, detail: code in THROTTLE_CODES or status == 429,
        ThrottledError,
        True,
        False,
    ),
    (_code_in(frozenset(["ResourceNotFoundException"])), None, False, False),
    # The wrong endpoint, as a real error (usually it answers HTTP 200).
    (_code_in(frozenset(["UnknownOperationException"])), ServiceError, False, True),
    (
        _code_in(frozenset(["NoDataRetentionException"])),
        NoDataRetentionError,
        False,
        False,
    ),
    (_code_in(INVALID_CODES), InvalidArgumentError, False, False),
)


def error_from_answer(
    code: str,
    status: int,
    message: str,
    operation: str,
    not_found: type[KinesisVideoError],
) -> KinesisVideoError:
    """The error for an AWS error answer: its code, HTTP status and message.

    ``not_found`` is what ResourceNotFoundException means for this call (a
    stream that is gone, or no media in a range). An error inside an HTTP 200
    comes only from a wrong endpoint.
    """
    detail = message[:MESSAGE_MAX]
    aws_code = code or None
    if status == 200:
        return unexpected_answer(operation, code, aws_code=aws_code)
    text = f"{operation}: {code or status}: {detail}"
    for test, cls, retryable, moved in _RULES:
        if test(code, status, detail):
            return (cls or not_found)(
                text, aws_code=aws_code, retryable=retryable, endpoint_moved=moved
            )
    return ServiceError(text, aws_code=aws_code, retryable=status >= 500)


def connection_error(operation: str, err: BaseException) -> ServiceError:
    """A failed connection, a timeout or a cut body: retry, on a fresh endpoint."""
    return ServiceError(
        f"{operation}: connection failed ({type(err).__name__})",
        retryable=True,
        endpoint_moved=True,
    )


def unexpected_answer(
    operation: str, what: str, *, aws_code: str | None = None
) -> ServiceError:
    """An HTTP 200 that is not the answer asked for (e.g. a wrong endpoint's)."""
    return ServiceError(
        f"{operation}: unexpected answer ({what})",
        aws_code=aws_code,
        endpoint_moved=True,
    )
