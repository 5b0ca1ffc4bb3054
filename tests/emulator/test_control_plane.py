"""Contract tests of the control plane through an unchanged boto3 client."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pytest

from kvs_emulator.testing import EmulatorProcess

from .helpers import error_of

ARN_PATTERN = re.compile(
    r"arn:[a-z\d-]+:kinesisvideo:[a-z0-9-]+:[0-9]+:[a-z]+/[a-zA-Z0-9_.-]+/[0-9]+"
)


def _all_names(kvs: Any, **kwargs: Any) -> tuple[list[str], int]:
    """Walk ListStreams by hand: every name in page order, and the page count."""
    names: list[str] = []
    pages = 0
    while True:
        response = kvs.list_streams(**kwargs)
        pages += 1
        names += [info["StreamName"] for info in response["StreamInfoList"]]
        if not response.get("NextToken"):
            return names, pages
        kwargs["NextToken"] = response["NextToken"]


def test_describe_stream_by_name_and_by_arn(kvs: Any) -> None:
    info = kvs.describe_stream(StreamName="front-door")["StreamInfo"]
    assert info["StreamName"] == "front-door"
    assert ARN_PATTERN.fullmatch(info["StreamARN"])
    assert info["StreamARN"].split("/")[1] == "front-door"
    assert info["Status"] == "ACTIVE"
    assert info["MediaType"] == "video/h264"
    assert info["DataRetentionInHours"] == 24
    assert info["Version"]
    assert info["KmsKeyId"]
    assert isinstance(info["CreationTime"], datetime)

    by_arn = kvs.describe_stream(StreamARN=info["StreamARN"])["StreamInfo"]
    assert by_arn == info
    both = kvs.describe_stream(StreamName="front-door", StreamARN=info["StreamARN"])
    assert both["StreamInfo"] == info


def test_describe_stream_errors(kvs: Any) -> None:
    arn = kvs.describe_stream(StreamName="front-door")["StreamInfo"]["StreamARN"]
    assert error_of(lambda: kvs.describe_stream(StreamName="nope"))[:2] == (
        "ResourceNotFoundException",
        404,
    )
    unknown_arn = arn.replace("/front-door/", "/nope/")
    assert error_of(lambda: kvs.describe_stream(StreamARN=unknown_arn))[:2] == (
        "ResourceNotFoundException",
        404,
    )
    # The right name with another stream's ARN: the pair does not match.
    assert error_of(lambda: kvs.describe_stream(StreamName="backyard", StreamARN=arn))[
        :2
    ] == ("InvalidArgumentException", 400)
    # Neither name nor ARN: botocore sends it (both are optional), AWS rejects it.
    assert error_of(kvs.describe_stream)[:2] == (
        "InvalidArgumentException",
        400,
    )


def test_create_stream_then_describe(kvs: Any) -> None:
    arn = kvs.create_stream(
        StreamName="porch.cam_1",
        DeviceName="porch-camera",
        MediaType="video/h264",
        DataRetentionInHours=48,
        Tags={"room": "porch"},
    )["StreamARN"]
    assert ARN_PATTERN.fullmatch(arn)
    info = kvs.describe_stream(StreamName="porch.cam_1")["StreamInfo"]
    assert info["StreamARN"] == arn
    assert info["DeviceName"] == "porch-camera"
    assert info["DataRetentionInHours"] == 48
    assert info["Status"] == "ACTIVE"
    assert kvs.describe_stream(StreamARN=arn)["StreamInfo"] == info


def test_create_stream_errors(kvs: Any) -> None:
    assert error_of(lambda: kvs.create_stream(StreamName="front-door"))[:2] == (
        "ResourceInUseException",
        400,
    )
    kvs.create_stream(StreamName="twice")
    assert error_of(lambda: kvs.create_stream(StreamName="twice"))[:2] == (
        "ResourceInUseException",
        400,
    )
    # botocore checks no patterns: the service rejects the name.
    assert error_of(lambda: kvs.create_stream(StreamName="no spaces!"))[:2] == (
        "InvalidArgumentException",
        400,
    )


def test_list_streams_pages_with_max_results_and_next_token(kvs: Any) -> None:
    created = [f"cam-{i}" for i in range(5)]
    for name in created:
        kvs.create_stream(StreamName=name)
    everything = sorted(["front-door", "backyard", *created])

    names, pages = _all_names(kvs, MaxResults=2)
    assert pages == 4  # 2 + 2 + 2 + 1
    assert sorted(names) == everything
    assert len(names) == len(set(names))

    first = kvs.list_streams(MaxResults=2)
    assert len(first["StreamInfoList"]) == 2
    assert first["NextToken"]
    assert "NextToken" not in kvs.list_streams(MaxResults=100)

    # boto3's own paginator drives the same NextToken protocol.
    paginator = kvs.get_paginator("list_streams")
    paged = [
        info["StreamName"]
        for page in paginator.paginate(PaginationConfig={"PageSize": 3})
        for info in page["StreamInfoList"]
    ]
    assert sorted(paged) == everything


def test_list_streams_begins_with(kvs: Any) -> None:
    for name in ("cam-a", "cam-b", "cam-c", "camera", "garage"):
        kvs.create_stream(StreamName=name)
    condition = {"ComparisonOperator": "BEGINS_WITH", "ComparisonValue": "cam-"}

    names, pages = _all_names(kvs, StreamNameCondition=condition, MaxResults=2)
    assert sorted(names) == ["cam-a", "cam-b", "cam-c"]
    assert pages == 2

    names, _ = _all_names(
        kvs,
        StreamNameCondition={
            "ComparisonOperator": "BEGINS_WITH",
            "ComparisonValue": "c",
        },
    )
    assert sorted(names) == ["cam-a", "cam-b", "cam-c", "camera"]
    nothing = kvs.list_streams(
        StreamNameCondition={
            "ComparisonOperator": "BEGINS_WITH",
            "ComparisonValue": "z",
        }
    )
    assert nothing["StreamInfoList"] == []
    assert not nothing.get("NextToken")


def test_list_streams_bad_next_token(kvs: Any) -> None:
    assert error_of(lambda: kvs.list_streams(NextToken="bm90LWpzb24="))[:2] == (
        "InvalidArgumentException",
        400,
    )


def test_delete_stream_with_current_version(kvs: Any) -> None:
    arn = kvs.create_stream(StreamName="doomed")["StreamARN"]
    version = kvs.describe_stream(StreamARN=arn)["StreamInfo"]["Version"]

    code, status, _ = error_of(
        lambda: kvs.delete_stream(StreamARN=arn, CurrentVersion=version + "0")
    )
    assert (code, status) == ("VersionMismatchException", 400)
    assert kvs.describe_stream(StreamARN=arn)["StreamInfo"]["StreamName"] == "doomed"

    kvs.delete_stream(StreamARN=arn, CurrentVersion=version)
    assert error_of(lambda: kvs.describe_stream(StreamName="doomed"))[:2] == (
        "ResourceNotFoundException",
        404,
    )
    assert error_of(lambda: kvs.delete_stream(StreamARN=arn))[:2] == (
        "ResourceNotFoundException",
        404,
    )
    names = [i["StreamName"] for i in kvs.list_streams()["StreamInfoList"]]
    assert names == ["backyard", "front-door"]


def test_delete_stream_without_version(kvs: Any) -> None:
    arn = kvs.describe_stream(StreamName="backyard")["StreamInfo"]["StreamARN"]
    kvs.delete_stream(StreamARN=arn)
    assert error_of(lambda: kvs.describe_stream(StreamARN=arn))[:2] == (
        "ResourceNotFoundException",
        404,
    )
    # The name can be used again; the new stream has a new ARN.
    new_arn = kvs.create_stream(StreamName="backyard")["StreamARN"]
    assert new_arn != arn
    assert kvs.describe_stream(StreamName="backyard")["StreamInfo"]["StreamARN"] == (
        new_arn
    )


def test_arns_come_from_names_not_from_the_clock(
    emulator: EmulatorProcess, kvs: Any
) -> None:
    """A reset gives the same ARNs back; a re-created name gets a new one."""

    def arn_of(name: str) -> str:
        arn: str = kvs.describe_stream(StreamName=name)["StreamInfo"]["StreamARN"]
        return arn

    start_up = arn_of("front-door")
    kvs.delete_stream(StreamARN=start_up)
    second = kvs.create_stream(StreamName="front-door")["StreamARN"]
    kvs.delete_stream(StreamARN=second)
    third = kvs.create_stream(StreamName="front-door")["StreamARN"]
    assert len({start_up, second, third}) == 3
    for arn in (start_up, second, third):
        assert ARN_PATTERN.fullmatch(arn)
        # As long as AWS's creation time in ms.
        assert re.fullmatch(r"[1-9][0-9]{12}", arn.rsplit("/", 1)[1])
    # Admin-made and API-made streams follow the same rule.
    porch = emulator.admin("POST", "streams", {"name": "porch"})["StreamARN"]
    shed = kvs.create_stream(StreamName="shed")["StreamARN"]

    emulator.reset()
    assert arn_of("front-door") == start_up
    assert emulator.admin("POST", "streams", {"name": "porch"})["StreamARN"] == porch
    assert kvs.create_stream(StreamName="shed")["StreamARN"] == shed


def _api_names(kvs: Any) -> list[str]:
    shape = kvs.meta.service_model.operation_model("GetDataEndpoint").input_shape
    names: list[str] = shape.members["APIName"].enum
    return names


def test_get_data_endpoint_for_every_api_name(
    kvs: Any, emulator: EmulatorProcess
) -> None:
    names = _api_names(kvs)
    assert {"GET_CLIP", "LIST_FRAGMENTS", "GET_IMAGES", "PUT_MEDIA"} <= set(names)
    arn = kvs.describe_stream(StreamName="front-door")["StreamInfo"]["StreamARN"]
    for name in names:
        by_name = kvs.get_data_endpoint(StreamName="front-door", APIName=name)
        assert by_name["DataEndpoint"] == emulator.url, name
        by_arn = kvs.get_data_endpoint(StreamARN=arn, APIName=name)
        assert by_arn["DataEndpoint"] == emulator.url, name


def test_get_data_endpoint_errors(kvs: Any) -> None:
    assert error_of(
        lambda: kvs.get_data_endpoint(StreamName="nope", APIName="GET_CLIP")
    )[:2] == ("ResourceNotFoundException", 404)
    # botocore does not check enums: the service does.
    assert error_of(
        lambda: kvs.get_data_endpoint(StreamName="front-door", APIName="GET_MOVIE")
    )[:2] == ("InvalidArgumentException", 400)


@pytest.mark.parametrize(
    ("operation", "kwargs"),
    [
        ("describe_stream", {"StreamName": "ghost"}),
        ("get_data_endpoint", {"StreamName": "ghost", "APIName": "GET_MEDIA"}),
        (
            "delete_stream",
            {"StreamARN": "arn:aws:kinesisvideo:us-east-1:123456789012:stream/ghost/1"},
        ),
    ],
)
def test_unknown_stream(kvs: Any, operation: str, kwargs: dict[str, Any]) -> None:
    code, status, message = error_of(lambda: getattr(kvs, operation)(**kwargs))
    assert (code, status) == ("ResourceNotFoundException", 404)
    assert "ghost" in message
