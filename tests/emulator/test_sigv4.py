"""Tests for kvs_emulator.sigv4, using requests signed by botocore itself."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSPreparedRequest, AWSRequest
from botocore.credentials import Credentials
from multidict import CIMultiDict

from kvs_emulator.sigv4 import (
    INCOMPLETE_SIGNATURE,
    INVALID_SIGNATURE,
    MISSING_AUTHENTICATION_TOKEN,
    SIGNATURE_MISMATCH_MESSAGE,
    UNRECOGNIZED_CLIENT,
    UNSIGNED_PAYLOAD,
    SigV4Failure,
    SigV4Identity,
    authenticate_request,
    verify_request,
)

ENDPOINT = "http://127.0.0.1:4566"
AKID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
OTHER_AKID = "AKIDOTHER"
OTHER_SECRET = "some-other-secret"
CREDENTIALS = {AKID: SECRET, OTHER_AKID: OTHER_SECRET}
SESSION_TOKEN = "FwoGZXIvYXdzEXAMPLE//token+with/odd=chars"
T0 = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)

GET_CLIP_BODY = json.dumps(
    {
        "StreamName": "front-door",
        "ClipFragmentSelector": {
            "FragmentSelectorType": "SERVER_TIMESTAMP",
            "TimestampRange": {"StartTimestamp": 1.7e9, "EndTimestamp": 1.7e9 + 60},
        },
    }
).encode()
LIST_FRAGMENTS_BODY = json.dumps(
    {"StreamName": "front-door", "MaxResults": 100}
).encode()
DESCRIBE_STREAM_BODY = json.dumps({"StreamName": "caf\u00e9 \u2603"}).encode()


@dataclass(frozen=True)
class Wire:
    """A request as the emulator's aiohttp handler would see it."""

    method: str
    raw_path: str
    raw_query: str
    headers: CIMultiDict[str]
    body: bytes


def _host_header(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    default_port = {"http": 80, "https": 443}.get(parts.scheme)
    if parts.port is not None and parts.port != default_port:
        host = f"{host}:{parts.port}"
    return host


def _to_wire(prepared: AWSPreparedRequest) -> Wire:
    """Turn a prepared botocore request into what reaches the server."""
    parts = urlsplit(prepared.url)
    headers: CIMultiDict[str] = CIMultiDict()
    for name, value in prepared.headers.items():
        # botocore keeps some header values as bytes; aiohttp hands over str.
        raw: object = value
        headers.add(name, raw.decode() if isinstance(raw, bytes) else str(raw))
    # The HTTP client (urllib3) adds Host from the URL; botocore signed that.
    if "Host" not in headers:
        headers["Host"] = _host_header(prepared.url)
    body = prepared.body
    if body is None:
        raw_body = b""
    elif isinstance(body, str):
        raw_body = body.encode()
    elif isinstance(body, bytes | bytearray):
        raw_body = bytes(body)
    else:
        data = body.read()
        raw_body = data.encode() if isinstance(data, str) else data
    return Wire(
        method=prepared.method or "GET",
        raw_path=parts.path or "/",
        raw_query=parts.query,
        headers=headers,
        body=raw_body,
    )


@contextmanager
def _botocore_clock(at: datetime | None) -> Iterator[None]:
    if at is None:
        yield
        return
    naive_utc = at.astimezone(UTC).replace(tzinfo=None)
    with mock.patch("botocore.auth.get_current_datetime", return_value=naive_utc):
        yield


def sign(
    method: str,
    path_and_query: str,
    body: bytes = b"",
    *,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    akid: str = AKID,
    secret: str = SECRET,
    token: str | None = None,
    region: str = "us-east-1",
    service: str = "kinesisvideo",
    at: datetime | None = None,
    endpoint: str = ENDPOINT,
) -> Wire:
    """Sign with botocore's SigV4Auth exactly as a client would."""
    request = AWSRequest(
        method=method,
        url=endpoint + path_and_query,
        data=body,
        headers=dict(headers or {"Content-Type": "application/json"}),
        params=dict(params or {}),
    )
    auth = SigV4Auth(Credentials(akid, secret, token), service, region)
    with _botocore_clock(at):
        auth.add_auth(request)
    prepared = request.prepare()
    prepared.headers["User-Agent"] = "Boto3/1.0 test"  # unsigned, as in boto3
    return _to_wire(prepared)


def presign(
    path_and_query: str,
    *,
    akid: str = AKID,
    secret: str = SECRET,
    token: str | None = None,
    region: str = "us-east-1",
    expires: int = 300,
    at: datetime | None = None,
) -> Wire:
    """Presign a GET with botocore's SigV4QueryAuth."""
    request = AWSRequest(method="GET", url=ENDPOINT + path_and_query)
    auth = SigV4QueryAuth(
        Credentials(akid, secret, token), "kinesisvideo", region, expires=expires
    )
    with _botocore_clock(at):
        auth.add_auth(request)
    return _to_wire(request.prepare())


def check(
    wire: Wire,
    *,
    credentials: Mapping[str, str] = CREDENTIALS,
    now: datetime | None = None,
    service: str = "kinesisvideo",
    headers: Mapping[str, str] | None = None,
) -> SigV4Identity:
    return authenticate_request(
        method=wire.method,
        raw_path=wire.raw_path,
        raw_query=wire.raw_query,
        headers=wire.headers if headers is None else headers,
        body=wire.body,
        credentials=credentials,
        service=service,
        now=now,
    )


def refused(wire: Wire, **kwargs: Any) -> SigV4Failure:
    with pytest.raises(SigV4Failure) as info:
        check(wire, **kwargs)
    return info.value


def with_header(wire: Wire, name: str, value: str | None) -> Wire:
    headers = wire.headers.copy()
    headers.popall(name, None)
    if value is not None:
        headers[name] = value
    return replace(wire, headers=headers)


# --- requests that must be accepted -------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path_and_query", "body"),
    [
        ("POST", "/getClip", GET_CLIP_BODY),
        ("POST", "/listFragments", LIST_FRAGMENTS_BODY),
        ("POST", "/describeStream", DESCRIBE_STREAM_BODY),
        ("POST", "/getHLSStreamingSessionURL", b"{}"),
        ("POST", "/describeStream", b""),
        ("POST", "/listFragments?b=2&a=1&a=0&empty=&flag", LIST_FRAGMENTS_BODY),
        ("POST", "/getClip?name=caf%C3%A9%20%2B%2F%3D&x-y_z.~=%7E", GET_CLIP_BODY),
        ("GET", "/", b""),
        ("GET", "", b""),
        ("POST", "/streams/my%20stream/%2Fslash%3F%23/~tilde_-.", b"{}"),
        ("POST", "/odd/!$'()*,;=:@&+/x", b"{}"),
        ("POST", "/caf%C3%A9/%E2%98%83", b"{}"),
        ("POST", "/a/./b/../c//d/", b"{}"),
        ("POST", "/percent%25sign/%2e%2E", b"{}"),
    ],
)
def test_valid_header_signature(method: str, path_and_query: str, body: bytes) -> None:
    wire = sign(method, path_and_query, body)
    assert (
        verify_request(
            method=wire.method,
            raw_path=wire.raw_path,
            raw_query=wire.raw_query,
            headers=wire.headers,
            body=wire.body,
            credentials=CREDENTIALS,
        )
        == AKID
    )


def test_identity_details() -> None:
    wire = sign("POST", "/getClip", GET_CLIP_BODY, region="eu-west-1", at=T0)
    identity = check(wire, now=T0 + timedelta(seconds=3))
    assert identity == SigV4Identity(
        access_key_id=AKID,
        region="eu-west-1",
        service="kinesisvideo",
        signed_at=T0,
        session_token=None,
        presigned=False,
    )


@pytest.mark.parametrize("region", ["us-east-1", "ap-southeast-2", "local"])
def test_any_region_is_accepted(region: str) -> None:
    assert check(sign("POST", "/listFragments", b"{}", region=region)).region == region


def test_session_token_is_signed_and_reported() -> None:
    wire = sign("POST", "/getClip", GET_CLIP_BODY, token=SESSION_TOKEN)
    assert "x-amz-security-token" in wire.headers["Authorization"]
    identity = check(wire)
    assert identity.session_token == SESSION_TOKEN
    # The token is covered by the signature.
    failure = refused(with_header(wire, "X-Amz-Security-Token", "forged"))
    assert failure.code == INVALID_SIGNATURE


def test_query_params_encoded_by_urlencode() -> None:
    # AWSRequest(params=...) is sent with urlencode ('+' for space) but signed
    # with RFC 3986 encoding ('%20'); both must agree.
    wire = sign(
        "GET",
        "/listFragments",
        params={"StreamName": "front door+back", "z": "~", "a": "\u00e9/&="},
    )
    assert "+" in wire.raw_query
    assert check(wire).access_key_id == AKID


def test_plain_dict_headers_with_any_case() -> None:
    wire = sign("POST", "/getClip", GET_CLIP_BODY)
    plain = {name.upper(): value for name, value in wire.headers.items()}
    assert check(wire, headers=plain).access_key_id == AKID


def test_aiohttp_raw_path_with_query() -> None:
    wire = sign("POST", "/listFragments?b=2&a=1", LIST_FRAGMENTS_BODY)
    combined = replace(wire, raw_path=f"{wire.raw_path}?{wire.raw_query}", raw_query="")
    assert check(combined).access_key_id == AKID


def test_unsigned_headers_and_whitespace_are_tolerated() -> None:
    wire = sign(
        "POST",
        "/getClip",
        GET_CLIP_BODY,
        headers={"Content-Type": "application/json", "X-Custom": "  a   b\tc  "},
    )
    wire = with_header(wire, "X-Custom", "a b   c")  # same after trimming
    wire.headers.add("X-Unsigned-Extra", "whatever")
    wire.headers["Content-Length"] = str(len(wire.body))
    assert check(wire).access_key_id == AKID


def test_date_header_instead_of_x_amz_date() -> None:
    wire = sign(
        "POST",
        "/describeStream",
        b"{}",
        headers={"Date": "placeholder", "Content-Type": "application/json"},
        at=T0,
    )
    assert "X-Amz-Date" not in wire.headers
    assert check(wire, now=T0).signed_at == T0


def test_naive_now_is_utc() -> None:
    wire = sign("POST", "/getClip", b"{}", at=T0)
    assert (
        check(wire, now=T0.replace(tzinfo=None) + timedelta(minutes=1)).signed_at == T0
    )


def test_custom_service_name() -> None:
    wire = sign("POST", "/", b"{}", service="kinesis")
    assert check(wire, service="kinesis").service == "kinesis"


def test_uppercase_signature_hex_is_accepted() -> None:
    wire = sign("POST", "/getClip", b"{}")
    auth = wire.headers["Authorization"]
    head, _, signature = auth.rpartition("Signature=")
    assert check(
        with_header(wire, "Authorization", head + "Signature=" + signature.upper())
    )


# --- x-amz-content-sha256 -----------------------------------------------------------


def test_declared_payload_hash_must_match_body() -> None:
    digest = hashlib.sha256(GET_CLIP_BODY).hexdigest()
    wire = sign(
        "POST",
        "/getClip",
        GET_CLIP_BODY,
        headers={"Content-Type": "application/json", "X-Amz-Content-SHA256": digest},
    )
    assert check(wire).access_key_id == AKID
    failure = refused(replace(wire, body=GET_CLIP_BODY + b" "))
    assert failure.code == INVALID_SIGNATURE
    assert failure.status == 403


def test_unsigned_payload_is_accepted() -> None:
    wire = sign(
        "POST",
        "/getClip",
        GET_CLIP_BODY,
        headers={"X-Amz-Content-SHA256": UNSIGNED_PAYLOAD},
    )
    assert check(replace(wire, body=b"anything")).access_key_id == AKID


# --- requests that must be refused ----------------------------------------------------


def assert_mismatch(failure: SigV4Failure) -> None:
    assert failure.code == INVALID_SIGNATURE
    assert failure.status == 403
    assert failure.message == SIGNATURE_MISMATCH_MESSAGE
    assert failure.message == (
        "The request signature we calculated does not match the signature you "
        "provided. Check your AWS Secret Access Key and signing method. Consult "
        "the service documentation for details."
    )


def test_wrong_secret() -> None:
    assert_mismatch(refused(sign("POST", "/getClip", GET_CLIP_BODY, secret="wrong")))


def test_secret_of_another_key() -> None:
    wire = sign("POST", "/getClip", GET_CLIP_BODY, secret=OTHER_SECRET)
    assert_mismatch(refused(wire))


def test_unknown_access_key() -> None:
    failure = refused(sign("POST", "/getClip", GET_CLIP_BODY, akid="AKIDUNKNOWN"))
    assert failure.code == UNRECOGNIZED_CLIENT
    assert failure.status == 403
    assert failure.message == "The security token included in the request is invalid."


def test_empty_credentials_refuse_everyone() -> None:
    failure = refused(sign("POST", "/getClip", b"{}"), credentials={})
    assert failure.code == UNRECOGNIZED_CLIENT


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda w: replace(w, body=w.body + b" "), id="body"),
        pytest.param(lambda w: replace(w, body=b""), id="body-emptied"),
        pytest.param(lambda w: replace(w, raw_path="/listFragments"), id="path"),
        pytest.param(lambda w: replace(w, raw_path="/getclip"), id="path-case"),
        pytest.param(lambda w: replace(w, raw_query="x=1"), id="query-added"),
        pytest.param(lambda w: replace(w, method="PUT"), id="method"),
        pytest.param(
            lambda w: with_header(w, "Content-Type", "text/plain"), id="signed-header"
        ),
        pytest.param(lambda w: with_header(w, "Host", "evil:4566"), id="host"),
    ],
)
def test_tampered_request(tamper: Callable[[Wire], Wire]) -> None:
    assert_mismatch(refused(tamper(sign("POST", "/getClip", GET_CLIP_BODY))))


def test_tampered_query_value() -> None:
    wire = sign("POST", "/listFragments?MaxResults=1", b"{}")
    assert_mismatch(refused(replace(wire, raw_query="MaxResults=2")))


def test_missing_authentication() -> None:
    wire = with_header(sign("POST", "/getClip", GET_CLIP_BODY), "Authorization", None)
    failure = refused(wire)
    assert failure.code == MISSING_AUTHENTICATION_TOKEN
    assert failure.status == 403
    assert failure.message == "Missing Authentication Token"
    assert refused(with_header(wire, "Authorization", "  ")).code == (
        MISSING_AUTHENTICATION_TOKEN
    )


def test_expired_signature() -> None:
    wire = sign("POST", "/getClip", GET_CLIP_BODY, at=T0)
    assert check(wire, now=T0 + timedelta(minutes=14, seconds=59))
    failure = refused(wire, now=T0 + timedelta(minutes=16))
    assert failure.code == INVALID_SIGNATURE
    assert failure.status == 403
    assert failure.message == (
        "Signature expired: 20261125T120000Z is now earlier than "
        "20261125T120100Z (20261125T121600Z - 15 min.)"
    )


def test_old_date_against_real_clock() -> None:
    wire = sign("POST", "/getClip", b"{}", at=datetime.now(UTC) - timedelta(hours=1))
    failure = refused(wire)
    assert failure.code == INVALID_SIGNATURE
    assert failure.message.startswith("Signature expired: ")


def test_signature_from_the_future() -> None:
    wire = sign("POST", "/getClip", GET_CLIP_BODY, at=T0)
    failure = refused(wire, now=T0 - timedelta(minutes=16))
    assert failure.code == INVALID_SIGNATURE
    assert failure.message.startswith("Signature not yet current: 20261125T120000Z")


def test_missing_date() -> None:
    wire = with_header(sign("POST", "/getClip", b"{}"), "X-Amz-Date", None)
    failure = refused(wire)
    assert failure.code == INCOMPLETE_SIGNATURE
    assert failure.status == 400
    assert "requires existence of either a 'X-Amz-Date' or a 'Date'" in (
        failure.message
    )


def test_malformed_date() -> None:
    wire = with_header(sign("POST", "/getClip", b"{}"), "X-Amz-Date", "2026-11-25")
    assert refused(wire).code == INCOMPLETE_SIGNATURE


def test_scope_date_must_match_request_date() -> None:
    wire = sign("POST", "/getClip", b"{}", at=T0)
    forged = wire.headers["Authorization"].replace("/20261125/", "/20261124/")
    failure = refused(with_header(wire, "Authorization", forged), now=T0)
    assert failure.code == INVALID_SIGNATURE
    assert failure.message.startswith("Date in Credential scope does not match")


def test_wrong_service_in_scope() -> None:
    failure = refused(sign("POST", "/getClip", b"{}", service="kinesis"))
    assert failure.code == INVALID_SIGNATURE
    assert failure.status == 403
    assert failure.message == (
        "Credential should be scoped to correct service: 'kinesisvideo'. "
    )


AUTH_PREFIX = "AWS4-HMAC-SHA256 "
GOOD_CREDENTIAL = f"Credential={AKID}/20261125/us-east-1/kinesisvideo/aws4_request"
SIGNATURE = "Signature=" + "0" * 64


@pytest.mark.parametrize(
    ("authorization", "code", "fragment"),
    [
        (
            f"{AUTH_PREFIX}{GOOD_CREDENTIAL}, SignedHeaders=host;x-amz-date",
            INCOMPLETE_SIGNATURE,
            "requires 'Signature' parameter",
        ),
        (
            AUTH_PREFIX,
            INCOMPLETE_SIGNATURE,
            "requires 'Credential' parameter",
        ),
        (
            f"{AUTH_PREFIX}{GOOD_CREDENTIAL}, SignedHeaders, {SIGNATURE}",
            INCOMPLETE_SIGNATURE,
            "missing equal-sign",
        ),
        (
            f"AWS4-HMAC-SHA512 {GOOD_CREDENTIAL}, SignedHeaders=host, {SIGNATURE}",
            INCOMPLETE_SIGNATURE,
            "Unsupported AWS 'algorithm'",
        ),
        ("Bearer abc", INCOMPLETE_SIGNATURE, "Unsupported AWS 'algorithm'"),
        (
            f"{AUTH_PREFIX}Credential={AKID}/20261125/us-east-1/aws4_request, "
            f"SignedHeaders=host;x-amz-date, {SIGNATURE}",
            INCOMPLETE_SIGNATURE,
            "exactly 5 slash-delimited elements",
        ),
        (
            f"{AUTH_PREFIX}{GOOD_CREDENTIAL}, SignedHeaders=x-amz-date, {SIGNATURE}",
            INCOMPLETE_SIGNATURE,
            "'Host' or ':authority' must be a 'SignedHeader'",
        ),
        (
            f"{AUTH_PREFIX}{GOOD_CREDENTIAL}, SignedHeaders=host;;x, {SIGNATURE}",
            INCOMPLETE_SIGNATURE,
            "Invalid SignedHeaders",
        ),
        (
            f"{AUTH_PREFIX}Credential={AKID}/20261125/us-east-1/kinesisvideo/aws4, "
            f"SignedHeaders=host;x-amz-date, {SIGNATURE}",
            INVALID_SIGNATURE,
            "valid terminator",
        ),
        (
            f"{AUTH_PREFIX}Credential={AKID}/20261125/us east/kinesisvideo/"
            f"aws4_request, SignedHeaders=host;x-amz-date, {SIGNATURE}",
            INVALID_SIGNATURE,
            "valid region",
        ),
        (
            f"{AUTH_PREFIX}{GOOD_CREDENTIAL}, SignedHeaders=host;x-amz-date, "
            "Signature=not-hex-\u00e9",
            INVALID_SIGNATURE,
            "does not match the signature you provided",
        ),
    ],
)
def test_malformed_authorization(authorization: str, code: str, fragment: str) -> None:
    wire = with_header(sign("POST", "/getClip", b"{}", at=T0), "Authorization", "x")
    failure = refused(with_header(wire, "Authorization", authorization), now=T0)
    assert failure.code == code
    assert failure.status == (400 if code == INCOMPLETE_SIGNATURE else 403)
    assert fragment in failure.message


def test_failure_is_an_exception_with_fields() -> None:
    failure = SigV4Failure(INVALID_SIGNATURE, "nope", 403)
    assert isinstance(failure, Exception)
    assert (failure.code, failure.message, failure.status) == (
        INVALID_SIGNATURE,
        "nope",
        403,
    )
    assert "nope" in str(failure)


# --- presigned (query-string) authentication -----------------------------------------


PRESIGN_PATH = "/getHLSStreamingSessionURL?StreamName=front%20door&Expires=300"


def test_presigned_valid() -> None:
    wire = presign(PRESIGN_PATH, at=T0, region="eu-west-1")
    assert "X-Amz-Signature=" in wire.raw_query
    assert "Authorization" not in wire.headers
    identity = check(wire, now=T0 + timedelta(minutes=4))
    assert identity.presigned
    assert identity.access_key_id == AKID
    assert identity.region == "eu-west-1"
    assert identity.session_token is None


def test_presigned_with_session_token_and_real_clock() -> None:
    wire = presign(PRESIGN_PATH, token=SESSION_TOKEN)
    assert check(wire).session_token == SESSION_TOKEN


def test_presigned_expired() -> None:
    wire = presign(PRESIGN_PATH, at=T0, expires=300)
    failure = refused(wire, now=T0 + timedelta(seconds=301))
    assert failure.code == INVALID_SIGNATURE
    assert failure.status == 403
    assert failure.message.startswith("Signature expired: 20261125T120000Z")


def test_presigned_long_expiry_outlives_clock_skew() -> None:
    wire = presign(PRESIGN_PATH, at=T0, expires=7200)
    assert check(wire, now=T0 + timedelta(minutes=90)).presigned


def test_presigned_wrong_secret() -> None:
    assert_mismatch(refused(presign(PRESIGN_PATH, secret="wrong")))


def test_presigned_unknown_key() -> None:
    assert refused(presign(PRESIGN_PATH, akid="AKIDUNKNOWN")).code == (
        UNRECOGNIZED_CLIENT
    )


def test_presigned_tampered_query() -> None:
    wire = presign(PRESIGN_PATH)
    tampered = wire.raw_query.replace("front%20door", "back%20door")
    assert tampered != wire.raw_query
    assert_mismatch(refused(replace(wire, raw_query=tampered)))
    longer = wire.raw_query.replace("X-Amz-Expires=300", "X-Amz-Expires=3000")
    assert_mismatch(refused(replace(wire, raw_query=longer)))


def test_presigned_missing_signature() -> None:
    wire = presign(PRESIGN_PATH)
    stripped = "&".join(
        part
        for part in wire.raw_query.split("&")
        if not part.startswith("X-Amz-Signature=")
    )
    failure = refused(replace(wire, raw_query=stripped))
    assert failure.code == INCOMPLETE_SIGNATURE
    assert "must include 'X-Amz-Signature'" in failure.message


def test_presigned_expiry_over_a_week() -> None:
    wire = presign(PRESIGN_PATH, expires=604801)
    assert refused(wire).code == INCOMPLETE_SIGNATURE


# --- requests captured from real boto3 clients (no network) --------------------------


class _Captured(Exception):  # noqa: N818
    def __init__(self, request: AWSPreparedRequest) -> None:
        super().__init__("captured")
        self.request = request


def _capture(request: AWSPreparedRequest, **_: Any) -> None:
    raise _Captured(request)


def _boto3_wire(
    service_name: str,
    operation: str,
    params: Mapping[str, Any],
    *,
    secret: str = SECRET,
    akid: str = AKID,
    token: str | None = None,
) -> Wire:
    client = boto3.client(  # type: ignore[call-overload]
        service_name,
        region_name="eu-central-1",
        endpoint_url=ENDPOINT,
        aws_access_key_id=akid,
        aws_secret_access_key=secret,
        aws_session_token=token,
    )
    client.meta.events.register("before-send", _capture)
    with pytest.raises(_Captured) as info:
        getattr(client, operation)(**params)
    return _to_wire(info.value.request)


BOTO3_CALLS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "kinesis-video-archived-media",
        "get_clip",
        {
            "StreamName": "front door",
            "ClipFragmentSelector": {
                "FragmentSelectorType": "SERVER_TIMESTAMP",
                "TimestampRange": {
                    "StartTimestamp": T0,
                    "EndTimestamp": T0 + timedelta(minutes=1),
                },
            },
        },
    ),
    ("kinesis-video-archived-media", "list_fragments", {"StreamName": "caf\u00e9"}),
    (
        "kinesis-video-archived-media",
        "get_hls_streaming_session_url",
        {"StreamName": "x", "PlaybackMode": "LIVE"},
    ),
    ("kinesisvideo", "describe_stream", {"StreamName": "front-door"}),
    (
        "kinesisvideo",
        "get_data_endpoint",
        {"StreamName": "front-door", "APIName": "GET_CLIP"},
    ),
]


@pytest.mark.parametrize(("service_name", "operation", "params"), BOTO3_CALLS)
@pytest.mark.parametrize("token", [None, SESSION_TOKEN])
def test_boto3_requests(
    service_name: str, operation: str, params: Mapping[str, Any], token: str | None
) -> None:
    wire = _boto3_wire(service_name, operation, params, token=token)
    identity = check(wire)
    assert identity.access_key_id == AKID
    assert identity.region == "eu-central-1"
    assert identity.session_token == token


def test_boto3_wrong_secret_and_unknown_key() -> None:
    service_name, operation, params = BOTO3_CALLS[0]
    assert_mismatch(refused(_boto3_wire(service_name, operation, params, secret="x")))
    unknown = _boto3_wire(service_name, operation, params, akid="AKIDNOPE")
    assert refused(unknown).code == UNRECOGNIZED_CLIENT
