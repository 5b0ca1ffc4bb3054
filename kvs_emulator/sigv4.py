"""Verify AWS Signature Version 4 on requests reaching the emulator.

The verifier rebuilds the canonical request from what arrived on the wire,
mirroring what botocore's ``SigV4Auth`` signs for non-S3 services, and
compares signatures in constant time.  Failures raise :class:`SigV4Failure`
carrying the error code, message and HTTP status AWS would answer with, so a
wrong access key or a wrong secret is refused the way AWS refuses it.

Both header authentication (``Authorization: AWS4-HMAC-SHA256 ...``) and
presigned query-string authentication (``X-Amz-Signature=...`` in the query)
are supported.  Any region is accepted; it is reported back in
:class:`SigV4Identity`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote_to_bytes

__all__ = [
    "ALGORITHM",
    "INCOMPLETE_SIGNATURE",
    "INVALID_SIGNATURE",
    "MISSING_AUTHENTICATION_TOKEN",
    "SIGNATURE_MISMATCH_MESSAGE",
    "UNRECOGNIZED_CLIENT",
    "UNSIGNED_PAYLOAD",
    "SigV4Failure",
    "SigV4Identity",
    "authenticate_request",
    "verify_request",
]

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
MAX_PRESIGNED_EXPIRES = 604800  # one week, in seconds

MISSING_AUTHENTICATION_TOKEN = "MissingAuthenticationTokenException"  # noqa: S105
INCOMPLETE_SIGNATURE = "IncompleteSignatureException"
INVALID_SIGNATURE = "InvalidSignatureException"
UNRECOGNIZED_CLIENT = "UnrecognizedClientException"

SIGNATURE_MISMATCH_MESSAGE = (
    "The request signature we calculated does not match the signature you "
    "provided. Check your AWS Secret Access Key and signing method. Consult "
    "the service documentation for details."
)
INVALID_TOKEN_MESSAGE = "The security token included in the request is invalid."  # noqa: S105
MISSING_TOKEN_MESSAGE = "Missing Authentication Token"  # noqa: S105
CONTENT_SHA256_MISMATCH_MESSAGE = (
    "The provided 'x-amz-content-sha256' header does not match what was computed."
)

# Characters left unescaped by the canonical encodings (RFC 3986 unreserved).
_QUERY_SAFE = "-_.~"
_PATH_SAFE = "/~"

_AMZ_DATE_RE = re.compile(r"\d{8}T\d{6}Z")
_SCOPE_DATE_RE = re.compile(r"\d{8}")
_REGION_RE = re.compile(r"[A-Za-z0-9-]+")
_HEX_SHA256_RE = re.compile(r"[0-9a-fA-F]{64}")

_Q_ALGORITHM = "X-Amz-Algorithm"
_Q_CREDENTIAL = "X-Amz-Credential"
_Q_DATE = "X-Amz-Date"
_Q_EXPIRES = "X-Amz-Expires"
_Q_SIGNED_HEADERS = "X-Amz-SignedHeaders"
_Q_SIGNATURE = "X-Amz-Signature"
_Q_SECURITY_TOKEN = "X-Amz-Security-Token"  # noqa: S105
_Q_REQUIRED = (
    _Q_ALGORITHM,
    _Q_CREDENTIAL,
    _Q_SIGNATURE,
    _Q_SIGNED_HEADERS,
    _Q_DATE,
    _Q_EXPIRES,
)
_Q_AUTH_KEYS = frozenset((*_Q_REQUIRED, _Q_SECURITY_TOKEN))
# Seeing any of these in the query means the client attempted query auth.
_Q_MARKERS = frozenset((_Q_ALGORITHM, _Q_CREDENTIAL, _Q_SIGNATURE, _Q_SIGNED_HEADERS))


class SigV4Failure(Exception):  # noqa: N818 (name fixed by the API)
    """A request failed authentication; carries what AWS would answer.

    ``code`` goes into ``x-amzn-ErrorType`` (and ``__type``), ``message``
    into the JSON body's ``message`` and ``status`` is the HTTP status.
    """

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(code, message, status)
        self.code = code
        self.message = message
        self.status = status

    def __str__(self) -> str:
        return f"{self.code} ({self.status}): {self.message}"


@dataclass(frozen=True, slots=True)
class SigV4Identity:
    """Who signed an accepted request, and under which scope."""

    access_key_id: str
    region: str
    service: str
    signed_at: datetime
    session_token: str | None
    presigned: bool


@dataclass(frozen=True, slots=True)
class _Credential:
    access_key_id: str
    scope_date: str
    region: str
    service: str

    @property
    def scope(self) -> str:
        return f"{self.scope_date}/{self.region}/{self.service}/{TERMINATOR}"


@dataclass(frozen=True, slots=True)
class _AuthInfo:
    credential: _Credential
    signed_headers: tuple[str, ...]
    signature: str
    amz_date: str
    signed_at: datetime
    expires: int | None  # only for presigned requests
    query_pairs: list[tuple[str, str]]  # raw pairs that enter the signature
    session_token: str | None


def _missing() -> SigV4Failure:
    return SigV4Failure(MISSING_AUTHENTICATION_TOKEN, MISSING_TOKEN_MESSAGE, 403)


def _incomplete(message: str) -> SigV4Failure:
    return SigV4Failure(INCOMPLETE_SIGNATURE, message, 400)


def _invalid(message: str = SIGNATURE_MISMATCH_MESSAGE) -> SigV4Failure:
    return SigV4Failure(INVALID_SIGNATURE, message, 403)


def _unrecognized() -> SigV4Failure:
    return SigV4Failure(UNRECOGNIZED_CLIENT, INVALID_TOKEN_MESSAGE, 403)


def _utf8(text: str) -> bytes:
    # Servers hand undecodable bytes over as surrogate escapes; give them back.
    return text.encode("utf-8", "surrogateescape")


def _header_map(headers: Mapping[str, str]) -> dict[str, list[str]]:
    """Lower-case names to all their values (multidicts keep repeats)."""
    result: dict[str, list[str]] = {}
    for name, value in headers.items():
        result.setdefault(name.strip().lower(), []).append(value)
    return result


def _single_header(headers: dict[str, list[str]], name: str) -> str | None:
    values = headers.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise _incomplete(f"Request contains multiple '{name}' headers.")
    return values[0]


def _split_target(raw_path: str, raw_query: str) -> tuple[str, str]:
    """Accept aiohttp's ``raw_path``, which still carries the query string."""
    path, sep, query = raw_path.partition("?")
    if sep and not raw_query:
        raw_query = query
    path = path.partition("#")[0]
    return path, raw_query.removeprefix("?")


def _split_query(raw_query: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for part in raw_query.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        pairs.append((key, value))
    return pairs


def _decode(component: str) -> bytes:
    # '+' is a space in query strings (urlencode output); '%2B' is a plus.
    return unquote_to_bytes(component.replace("+", " "))


def _decode_text(component: str) -> str:
    return _decode(component).decode("utf-8", "replace")


def _canonical_queries(pairs: list[tuple[str, str]]) -> list[str]:
    """Canonical query strings a client may legitimately have signed.

    The SigV4 rule decodes and re-encodes every pair (RFC 3986) and sorts by
    key, then value; this also matches botocore's ``params=`` path, which is
    sent with ``urlencode`` ('+' for a space).  botocore signs a query that is
    already in the URL as the raw pairs, only sorted; that differs from the
    rule only for queries not encoded the RFC 3986 way (``%7E``, lower-case
    hex, ...), so it is accepted as a second form.
    """
    normalized = sorted(
        (quote(_decode(key), safe=_QUERY_SAFE), quote(_decode(value), safe=_QUERY_SAFE))
        for key, value in pairs
    )
    forms = ["&".join(f"{key}={value}" for key, value in normalized)]
    raw = "&".join(f"{key}={value}" for key, value in sorted(pairs))
    if raw != forms[0]:
        forms.append(raw)
    return forms


def _remove_dot_segments(path: str) -> str:
    """Resolve ``.``/``..`` and drop empty segments, as botocore does."""
    if not path:
        return "/"
    segments: list[str] = []
    for segment in path.split("/"):
        if segment in {"", "."}:
            continue
        if segment == "..":
            if segments:
                segments.pop()
            continue
        segments.append(segment)
    lead = "/" if path.startswith("/") else ""
    trail = "/" if path.endswith("/") and segments else ""
    return lead + "/".join(segments) + trail


def _canonical_uri(raw_path: str) -> str:
    """Encode the path as it arrived on the wire once more.

    botocore sends an already percent-encoded path and signs it encoded again
    (``%`` becomes ``%25``); AWS calls this double-encoding for non-S3
    services.  Doing the same to the received raw path gives the same string.
    """
    normalized = _remove_dot_segments(raw_path) or "/"
    return quote(_utf8(normalized), safe=_PATH_SAFE)


def _trim_all(value: str) -> str:
    return " ".join(value.split())


def _canonical_headers(
    headers: dict[str, list[str]], signed_headers: tuple[str, ...]
) -> str:
    lines = []
    for name in signed_headers:
        values = headers.get(name, [])
        lines.append(f"{name}:{','.join(_trim_all(value) for value in values)}")
    return "\n".join(lines)


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, _utf8(message), hashlib.sha256).digest()


def _signing_key(secret: str, credential: _Credential) -> bytes:
    key = _hmac(_utf8(f"AWS4{secret}"), credential.scope_date)
    key = _hmac(key, credential.region)
    key = _hmac(key, credential.service)
    return _hmac(key, TERMINATOR)


def _format_amz(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(AMZ_DATE_FORMAT)


def _parse_amz_date(value: str) -> datetime:
    if not _AMZ_DATE_RE.fullmatch(value):
        raise _incomplete(
            f"Date must be in ISO-8601 'basic format'. Got '{value}'. "
            "See http://en.wikipedia.org/wiki/ISO_8601"
        )
    try:
        return datetime.strptime(value, AMZ_DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise _incomplete(
            f"Date must be in ISO-8601 'basic format'. Got '{value}'. "
            "See http://en.wikipedia.org/wiki/ISO_8601"
        ) from None


def _parse_http_date(value: str) -> datetime:
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        raise _incomplete(
            f"Date must be in RFC 1123 format when X-Amz-Date is absent. Got '{value}'."
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _describe(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds % 60 == 0:
        return f"{seconds // 60} min."
    return f"{seconds} sec."


def _parse_credential(value: str, service: str) -> _Credential:
    parts = value.split("/")
    if len(parts) != 5:
        raise _incomplete(
            "Credential must have exactly 5 slash-delimited elements, "
            f"e.g. keyid/date/region/service/term, got '{value}'"
        )
    access_key_id, scope_date, region, scope_service, terminator = parts
    if terminator != TERMINATOR:
        raise _invalid(
            "Credential should be scoped with a valid terminator: "
            f"'{TERMINATOR}', not '{terminator}'. "
        )
    if scope_service != service:
        raise _invalid(f"Credential should be scoped to correct service: '{service}'. ")
    if not _REGION_RE.fullmatch(region):
        raise _invalid(
            f"Credential should be scoped to a valid region, not '{region}'. "
        )
    if not _SCOPE_DATE_RE.fullmatch(scope_date):
        raise _invalid(
            f"Credential should be scoped to a valid date, not '{scope_date}'. "
        )
    return _Credential(access_key_id, scope_date, region, scope_service)


def _parse_signed_headers(value: str) -> tuple[str, ...]:
    names = [name.strip().lower() for name in value.split(";")]
    if not names or any(not name for name in names):
        raise _incomplete(f"Invalid SignedHeaders value: '{value}'.")
    if "host" not in names:
        raise _incomplete(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
        )
    return tuple(sorted(set(names)))


def _from_authorization_header(
    authorization: str, headers: dict[str, list[str]], service: str
) -> tuple[_Credential, tuple[str, ...], str, str, datetime]:
    """Parse the header; return credential, signed headers, signature, date."""
    algorithm, _, rest = authorization.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise _incomplete(
            f"Unsupported AWS 'algorithm': '{algorithm}'. Authorization={authorization}"
        )
    fields: dict[str, str] = {}
    for raw_part in rest.split(","):
        part = raw_part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep:
            raise _incomplete(
                f"'{part}' not a valid key=value pair (missing equal-sign) in "
                f"Authorization header: '{authorization}'."
            )
        key = key.strip()
        if key in fields:
            raise _incomplete(
                f"Authorization header has a duplicate '{key}' parameter. "
                f"Authorization={authorization}"
            )
        fields[key] = value.strip()

    problems = [
        f"Authorization header requires '{name}' parameter. "
        for name in ("Credential", "Signature", "SignedHeaders")
        if not fields.get(name)
    ]
    amz_date = _single_header(headers, "x-amz-date")
    http_date = _single_header(headers, "date")
    if amz_date is None and http_date is None:
        problems.append(
            "Authorization header requires existence of either a 'X-Amz-Date' "
            "or a 'Date' header. "
        )
    if problems:
        raise _incomplete("".join(problems) + f"Authorization={authorization}")

    credential = _parse_credential(fields["Credential"], service)
    signed_headers = _parse_signed_headers(fields["SignedHeaders"])
    if amz_date is not None:
        signed_at = _parse_amz_date(amz_date.strip())
    else:
        assert http_date is not None
        signed_at = _parse_http_date(http_date)
    return (
        credential,
        signed_headers,
        fields["Signature"],
        _format_amz(signed_at),
        signed_at,
    )


def _from_query(
    pairs: list[tuple[str, str]], service: str
) -> tuple[_Credential, tuple[str, ...], str, str, datetime, int, str | None]:
    """Parse presigned-URL parameters."""
    found: dict[str, str] = {}
    for key, value in pairs:
        name = _decode_text(key)
        if name not in _Q_AUTH_KEYS:
            continue
        if name in found:
            raise _incomplete(
                f"AWS query-string parameter '{name}' appears more than once. "
                "Re-examine the query-string parameters."
            )
        found[name] = _decode_text(value)
    problems = [
        f"AWS query-string parameters must include '{name}'. "
        for name in _Q_REQUIRED
        if not found.get(name)
    ]
    if problems:
        raise _incomplete("".join(problems) + "Re-examine the query-string parameters.")
    algorithm = found[_Q_ALGORITHM]
    if algorithm != ALGORITHM:
        raise _incomplete(f"Unsupported AWS 'algorithm': '{algorithm}'.")
    expires_text = found[_Q_EXPIRES]
    if not expires_text.isascii() or not expires_text.isdigit():
        raise _incomplete(
            f"X-Amz-Expires should be a number of seconds, got '{expires_text}'."
        )
    expires = int(expires_text)
    if expires > MAX_PRESIGNED_EXPIRES:
        raise _incomplete(
            "X-Amz-Expires must be less than a week (in seconds) that is, the "
            f"given X-Amz-Expires must be less than {MAX_PRESIGNED_EXPIRES} "
            "seconds"
        )
    credential = _parse_credential(found[_Q_CREDENTIAL], service)
    signed_headers = _parse_signed_headers(found[_Q_SIGNED_HEADERS])
    amz_date = found[_Q_DATE].strip()
    signed_at = _parse_amz_date(amz_date)
    return (
        credential,
        signed_headers,
        found[_Q_SIGNATURE],
        amz_date,
        signed_at,
        expires,
        found.get(_Q_SECURITY_TOKEN),
    )


def _collect(
    headers: dict[str, list[str]], pairs: list[tuple[str, str]], service: str
) -> _AuthInfo:
    authorization = _single_header(headers, "authorization")
    if authorization is not None and authorization.strip():
        credential, signed, signature, amz_date, signed_at = _from_authorization_header(
            authorization, headers, service
        )
        return _AuthInfo(
            credential=credential,
            signed_headers=signed,
            signature=signature,
            amz_date=amz_date,
            signed_at=signed_at,
            expires=None,
            query_pairs=pairs,
            session_token=_single_header(headers, "x-amz-security-token"),
        )
    if any(_decode_text(key) in _Q_MARKERS for key, _ in pairs):
        credential, signed, signature, amz_date, signed_at, expires, token = (
            _from_query(pairs, service)
        )
        return _AuthInfo(
            credential=credential,
            signed_headers=signed,
            signature=signature,
            amz_date=amz_date,
            signed_at=signed_at,
            expires=expires,
            query_pairs=[
                (key, value)
                for key, value in pairs
                if _decode_text(key) != _Q_SIGNATURE
            ],
            session_token=token,
        )
    raise _missing()


def _check_time(info: _AuthInfo, now: datetime, max_skew: timedelta) -> None:
    if info.credential.scope_date != info.amz_date[:8]:
        raise _invalid(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 "
            f"version of date from HTTP: '{info.credential.scope_date}' != "
            f"'{info.amz_date[:8]}', from '{info.amz_date}'."
        )
    stamp = _format_amz(info.signed_at)
    if info.expires is not None:
        lifetime = timedelta(seconds=info.expires)
        if now - info.signed_at > lifetime:
            raise _invalid(
                f"Signature expired: {stamp} is now earlier than "
                f"{_format_amz(now - lifetime)} ({_format_amz(now)} - "
                f"{_describe(lifetime)})"
            )
    elif info.signed_at < now - max_skew:
        raise _invalid(
            f"Signature expired: {stamp} is now earlier than "
            f"{_format_amz(now - max_skew)} ({_format_amz(now)} - "
            f"{_describe(max_skew)})"
        )
    if info.signed_at > now + max_skew:
        raise _invalid(
            f"Signature not yet current: {stamp} is still later than "
            f"{_format_amz(now + max_skew)} ({_format_amz(now)} + "
            f"{_describe(max_skew)})"
        )


def _payload_hash(headers: dict[str, list[str]], body: bytes) -> str:
    computed = hashlib.sha256(body).hexdigest()
    declared = _single_header(headers, "x-amz-content-sha256")
    if declared is None:
        return computed
    declared = declared.strip()
    if declared == UNSIGNED_PAYLOAD:
        return declared
    if not _HEX_SHA256_RE.fullmatch(declared) or not hmac.compare_digest(
        declared.lower(), computed
    ):
        raise _invalid(CONTENT_SHA256_MISMATCH_MESSAGE)
    return declared


def _string_to_sign(
    *,
    method: str,
    path: str,
    canonical_query: str,
    headers: dict[str, list[str]],
    info: _AuthInfo,
    payload_hash: str,
) -> str:
    canonical_request = "\n".join(
        (
            method.upper(),
            _canonical_uri(path),
            canonical_query,
            _canonical_headers(headers, info.signed_headers) + "\n",
            ";".join(info.signed_headers),
            payload_hash,
        )
    )
    return "\n".join(
        (
            ALGORITHM,
            info.amz_date,
            info.credential.scope,
            hashlib.sha256(_utf8(canonical_request)).hexdigest(),
        )
    )


def authenticate_request(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Mapping[str, str],
    body: bytes,
    credentials: Mapping[str, str],
    service: str = "kinesisvideo",
    now: datetime | None = None,
    max_skew: timedelta = timedelta(minutes=15),
) -> SigV4Identity:
    """Verify a SigV4-signed request and describe who signed it.

    ``raw_path`` and ``raw_query`` must be exactly what arrived on the wire,
    still percent-encoded (aiohttp: ``request.raw_path``, which may include
    ``?query``; it is split off when ``raw_query`` is empty).  ``headers``
    may be any mapping; names are matched case-insensitively and repeated
    headers in a multidict are joined as SigV4 requires.  ``credentials``
    maps access key ids to secret access keys.  A naive ``now`` is taken to
    be UTC.

    Raises :class:`SigV4Failure` when the request must be refused.
    """
    path, query = _split_target(raw_path, raw_query)
    header_map = _header_map(headers)
    info = _collect(header_map, _split_query(query), service)

    current = datetime.now(UTC) if now is None else now
    if current.tzinfo is None:
        current = current.replace(tzinfo=UTC)
    _check_time(info, current.astimezone(UTC), max_skew)

    secret = credentials.get(info.credential.access_key_id)
    if secret is None:
        raise _unrecognized()

    payload_hash = _payload_hash(header_map, body)
    signing_key = _signing_key(secret, info.credential)
    matched = False
    try:
        provided = _utf8(info.signature.strip().lower())
        for canonical_query in _canonical_queries(info.query_pairs):
            string_to_sign = _string_to_sign(
                method=method,
                path=path,
                canonical_query=canonical_query,
                headers=header_map,
                info=info,
                payload_hash=payload_hash,
            )
            expected = hmac.new(
                signing_key, _utf8(string_to_sign), hashlib.sha256
            ).hexdigest()
            matched |= hmac.compare_digest(expected.encode("ascii"), provided)
    except UnicodeEncodeError:
        raise _invalid() from None
    if not matched:
        raise _invalid()
    return SigV4Identity(
        access_key_id=info.credential.access_key_id,
        region=info.credential.region,
        service=info.credential.service,
        signed_at=info.signed_at,
        session_token=info.session_token,
        presigned=info.expires is not None,
    )


def verify_request(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Mapping[str, str],
    body: bytes,
    credentials: Mapping[str, str],
    service: str = "kinesisvideo",
    now: datetime | None = None,
    max_skew: timedelta = timedelta(minutes=15),
) -> str:
    """Verify a SigV4-signed request and return the signer's access key id.

    Same arguments as :func:`authenticate_request`, which also gives region,
    signing time and session token.  Raises :class:`SigV4Failure`.
    """
    return authenticate_request(
        method=method,
        raw_path=raw_path,
        raw_query=raw_query,
        headers=headers,
        body=body,
        credentials=credentials,
        service=service,
        now=now,
        max_skew=max_skew,
    ).access_key_id
