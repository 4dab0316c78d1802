"""pkt-lines, push commands and reports, and git's stateless-rpc processes."""

from __future__ import annotations

import io
import subprocess

import pytest

import gitstore
from gitstore.protocol import encode_pkt, iter_pkts, sideband

A = "a" * 40
B = "b" * 40
Z = "0" * 40


def test_pkt_encoding_counts_its_own_length() -> None:
    assert encode_pkt("hi\n") == b"0007hi\n"
    assert list(iter_pkts(b"0007hi\n0000")) == [b"hi\n", None]
    with pytest.raises(ValueError):
        encode_pkt(b"x" * 65520)


def test_read_push_commands_stops_at_the_flush_and_keeps_raw_bytes() -> None:
    commands = (
        encode_pkt(f"{A} {B} refs/heads/main\0report-status side-band-64k quiet\n")
        + encode_pkt(f"{Z} {B} refs/tags/v1\n")
        + b"0000"
    )
    stream = io.BytesIO(commands + b"PACK...rest of the pack")
    push = gitstore.read_push_commands(stream.read)
    assert push.updates == [
        gitstore.RefUpdate(A, B, "refs/heads/main"),
        gitstore.RefUpdate(Z, B, "refs/tags/v1"),
    ]
    assert push.capabilities == {"report-status", "side-band-64k", "quiet"}
    assert push.side_band and push.raw == commands
    assert push.updates[1].is_create and not push.updates[1].is_delete
    assert stream.read() == b"PACK...rest of the pack"  # the pack was not touched


def test_shallow_lines_before_commands_are_skipped() -> None:
    data = encode_pkt(f"shallow {A}\n") + encode_pkt(f"{A} {B} refs/heads/x\0 \n") + b"0000"
    push = gitstore.read_push_commands(io.BytesIO(data).read)
    assert [u.ref for u in push.updates] == ["refs/heads/x"]


def test_probe_request_has_no_commands() -> None:
    assert gitstore.read_push_commands(io.BytesIO(b"0000").read).updates == []


@pytest.mark.parametrize(
    "data",
    [
        b"",  # empty
        b"00",  # short length
        b"zzzz",  # not hex
        b"0003",  # impossible length
        b"+00a",  # int() would accept this
        b"0010short",  # truncated payload
        encode_pkt("not a command\n") + b"0000",
        encode_pkt(f"{A} {B}\n") + b"0000",
        encode_pkt(f"{A[:39]}g {B} refs/heads/x\n") + b"0000",
        encode_pkt(f"{A} {B} refs/heads/caf\u00e9\n") + b"0000",
        encode_pkt("push-cert\0 push-cert=1\n") + b"0000",
    ],
)
def test_malformed_push_requests(data: bytes) -> None:
    with pytest.raises(gitstore.ProtocolError):
        gitstore.read_push_commands(io.BytesIO(data).read)


def test_validate_pkt_stream() -> None:
    gitstore.validate_pkt_stream(encode_pkt("command=ls-refs\n") + b"0001" + b"0000")
    for bad in (b"", b"0000garbage", b"zzzz"):
        with pytest.raises(gitstore.ProtocolError):
            gitstore.validate_pkt_stream(bad)


@pytest.mark.parametrize("side_band", [False, True])
def test_report_round_trip(side_band: bool) -> None:
    statuses = [
        gitstore.RefStatus("refs/heads/main", "branch 'main' is protected"),
        gitstore.RefStatus("refs/heads/x"),
    ]
    report = gitstore.build_report(statuses, side_band=side_band)
    assert gitstore.parse_report(report, side_band=side_band) == statuses
    if side_band:
        assert report.endswith(b"0000") and report[4:5] == b"\x01"


def test_sideband_splits_long_data() -> None:
    data = b"x" * 70000
    packets = [p for p in iter_pkts(sideband(2, data)) if p is not None]
    assert len(packets) == 2 and b"".join(p[1:] for p in packets) == data


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("version=2", "version=2"),
        ("version=2:object-format=sha1", "version=2:object-format=sha1"),
        (None, None),
        ("version=2\nX=1", None),
        ("version=2 ; rm", None),
        ("a:" * 20, None),
    ],
)
def test_git_protocol_header_is_validated(header, expected) -> None:
    assert gitstore.parse_git_protocol(header) == expected


def test_services_round_trip_a_clone_and_a_push(doc, tmp_path) -> None:
    """upload-pack and receive-pack through ServiceProcess, without gevent."""
    head = doc.resolve("main")
    adv = gitstore.advertise_refs(doc.path, gitstore.GitService.UPLOAD_PACK)
    assert adv.startswith(b"001e# service=git-upload-pack\n0000") and head.encode() in adv
    request = encode_pkt(f"want {head} ofs-delta\n") + b"0000" + encode_pkt("done\n")
    with gitstore.ServiceProcess(doc.path, gitstore.GitService.UPLOAD_PACK) as proc:
        proc.feed_in_background(request)
        answer = b"".join(proc.stream_output())
    assert answer.startswith(b"0008NAK\n") and b"PACK" in answer

    # Push a new branch at the existing head (no objects needed: an empty pack).
    empty_pack = subprocess.run(
        ["git", "pack-objects", "--stdout"], input=b"", capture_output=True, check=True
    ).stdout
    commands = encode_pkt(f"{Z} {head} refs/heads/copy\0report-status\n") + b"0000"
    with gitstore.ServiceProcess(doc.path, gitstore.GitService.RECEIVE_PACK) as proc:
        proc.collect_output_in_background()
        proc.feed([commands, empty_pack])
        proc.wait()
        output = proc.collected_output()
    assert gitstore.parse_report(output, side_band=False) == [gitstore.RefStatus("refs/heads/copy")]
    assert doc.resolve("copy") == head
