"""The reference client's RESP2/RESP3 decoding, fed raw wire bytes through a socket pair."""

from __future__ import annotations

import math
import socket
import threading

import pytest

from respmatrix.clients.resp import RespConnection, RespProtocolError, encode_command
from respmatrix.replies import PushReply, RespError, SetReply


def decode(wire: bytes) -> object:
    ours, theirs = socket.socketpair()
    conn = RespConnection.__new__(RespConnection)
    conn.host, conn.port, conn._sock, conn._buf, conn.pushes = "pair", 0, ours, bytearray(), []
    sender = threading.Thread(target=theirs.sendall, args=(wire,))
    sender.start()
    try:
        return conn.read_reply()
    finally:
        sender.join()
        ours.close()
        theirs.close()


@pytest.mark.parametrize(
    ("wire", "value"),
    [
        (b"+OK\r\n", "OK"),
        (b":-42\r\n", -42),
        (b"$5\r\nhello\r\n", "hello"),
        (b"$0\r\n\r\n", ""),
        (b"$-1\r\n", None),
        (b"*-1\r\n", None),
        (b"_\r\n", None),
        (b"*2\r\n$1\r\na\r\n:1\r\n", ["a", 1]),
        (b"%1\r\n+k\r\n:2\r\n", {"k": 2}),
        (b",1.5\r\n", 1.5),
        (b",inf\r\n", math.inf),
        (b"#t\r\n", True),
        (b"#f\r\n", False),
        (b"(12345678901234567890\r\n", 12345678901234567890),
        (b"=8\r\ntxt:some\r\n", "some"),
        (b"$2\r\n\xff\x00\r\n", b"\xff\x00"),  # not UTF-8: stays bytes
        (b"|1\r\n+ttl\r\n:3\r\n+OK\r\n", "OK"),  # attributes are skipped
    ],
)
def test_decodes_each_type(wire: bytes, value: object) -> None:
    got = decode(wire)
    assert got == value
    assert type(got) is type(value)


def test_error_and_blob_error_become_values() -> None:
    assert decode(b"-ERR syntax error\r\n") == RespError("ERR syntax error")
    assert decode(b"!10\r\nSYNTAX bad\r\n") == RespError("SYNTAX bad")


def test_set_reply_is_marked_unordered() -> None:
    got = decode(b"~2\r\n+a\r\n+b\r\n")
    assert isinstance(got, SetReply) and sorted(got) == ["a", "b"]


def test_push_frames_are_kept_aside() -> None:
    ours, theirs = socket.socketpair()
    conn = RespConnection.__new__(RespConnection)
    conn.host, conn.port, conn._sock, conn._buf, conn.pushes = "pair", 0, ours, bytearray(), []
    theirs.sendall(b">2\r\n+invalidate\r\n*1\r\n+k\r\n:7\r\n")
    assert conn.read_reply() == 7
    assert conn.pushes == [PushReply(["invalidate", ["k"]])]
    ours.close()
    theirs.close()


def test_unknown_type_byte_is_a_protocol_error() -> None:
    with pytest.raises(RespProtocolError, match="unexpected RESP type"):
        decode(b"?what\r\n")


def test_encode_command() -> None:
    assert encode_command(("SET", b"k", 5)) == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\n5\r\n"
    with pytest.raises(TypeError):
        encode_command((None,))
