"""The checker's decoder against messages a student's process can forge: every one is refused with a
ProtocolError (which fails the one request that got it), none raises anything else.

Each forged line is what student code could write to the runner's channel (its stdout is the pipe).
"""

from __future__ import annotations

import base64
import json
import os

import numpy as np
import pytest

from autograder.protocol.channel import DTYPES, MAX_ARRAY_SIZE, MAX_DEPTH, MAX_DIMENSIONS, MAX_LINE_BYTES, Channel, ProtocolError, decode, encode


def array_message(dtype, shape, data: bytes = b"") -> bytes:
    return json.dumps({"op": "result", "value": {"__array__": [dtype, shape, base64.b64encode(data).decode()]}}).encode()


def nested(depth: int, opener: str = "[", closer: str = "]") -> bytes:
    return b'{"op":"result","value":' + (opener * depth).encode() + (closer * depth).encode() + b"}"


FORGED = {
    # shapes whose product wraps round in int64 (2**62 * 4 = 2**64 -> 0) or overflows it
    "shape product wraps to 0 in int64": array_message("float64", [2**62, 4]),
    "shape product wraps to a small number": array_message("float64", [2**62 + 1, 4], b"\0" * 32),
    "a dimension beyond int64": array_message("float64", [2**70]),
    "a dimension of 4,000 digits": b'{"op":"result","value":{"__array__":["float64",[' + b"9" * 4000 + b'],""]}}',
    "an integer of 5,000 digits": b'{"op":"result","value":' + b"9" * 5000 + b"}",
    "NaN as a dimension": b'{"op":"result","value":{"__array__":["float64",[NaN],""]}}',
    "Infinity as a dimension": b'{"op":"result","value":{"__array__":["float64",[Infinity],""]}}',
    "a float dimension": array_message("float64", [2.0], b"\0" * 16),
    "a bool dimension": array_message("float64", [True], b"\0" * 8),
    "a negative dimension": array_message("float64", [-1, -4], b"\0" * 32),
    "a list as a dimension": array_message("float64", [[2]], b"\0" * 16),
    "too many dimensions": array_message("float64", [1] * 9, b"\0" * 8),
    "too many elements": array_message("bool", [MAX_ARRAY_SIZE + 1]),
    "bytes that do not fit the shape": array_message("float64", [3], b"\0" * 16),
    "far more data than the shape holds": array_message("float64", [1], b"\0" * 10_000),
    "data that is not base64": b'{"op":"result","value":{"__array__":["float64",[1],"!!!!!!!!!!!!"]}}',
    "an object dtype": array_message("object", [1], b"\0" * 8),
    "a malformed array": b'{"op":"result","value":{"__array__":"float64"}}',
    "lists nested 600 deep": nested(600),
    "objects nested 600 deep": b'{"op":"result","value":' + b'{"a":' * 600 + b"1" + b"}" * 600 + b"}",
    "lists nested 100,000 deep": nested(100_000),
    "an array nested deep inside": b'{"op":"result","value":'
    + b"[" * (MAX_DEPTH + 5)
    + json.dumps({"__array__": ["float64", [1], base64.b64encode(b"\0" * 8).decode()]}).encode()
    + b"]" * (MAX_DEPTH + 5)
    + b"}",
    "not JSON": b"\xff\xfe garbage",
    "JSON that is not an object": b"[1, 2, 3]",
    "no op": b'{"value": 1}',
    "an op that is not a string": b'{"op": 7}',
}


@pytest.mark.parametrize("line", FORGED.values(), ids=FORGED.keys())
def test_a_forged_message_is_refused_with_a_protocol_error(line):
    with pytest.raises(ProtocolError):
        decode(line)


def test_a_line_longer_than_the_limit_is_refused_before_parsing():
    with pytest.raises(ProtocolError, match="bytes"):
        decode(b" " * (MAX_LINE_BYTES + 1))


def test_honest_messages_still_decode():
    message = {
        "op": "result",
        "value": {
            "kind": "sequence",
            "items": [{"kind": "tensor", "array": np.arange(12, dtype=np.float32).reshape(3, 4)}, {"kind": "number", "value": float("nan")}],
        },
        "grads": [np.zeros((0, 4)), np.array(2.5)],
    }
    got = decode(encode(message)[:-1])
    array = got["value"]["items"][0]["array"]
    assert array.dtype == np.float32 and array.shape == (3, 4) and array[2, 3] == 11
    assert np.isnan(got["value"]["items"][1]["value"])
    assert got["grads"][0].shape == (0, 4) and got["grads"][1].shape == () and float(got["grads"][1]) == 2.5
    # nesting up to the limit is fine
    assert decode(nested(MAX_DEPTH - 1))["op"] == "result"
    with pytest.raises(ProtocolError, match="nested"):
        decode(nested(MAX_DEPTH))


def test_the_channel_turns_a_forged_line_into_a_protocol_error_and_reads_on():
    read_fd, write_fd = os.pipe()
    try:
        channel = Channel(read_fd, write_fd)
        os.write(write_fd, array_message("float64", [2**62, 4]) + b"\n" + encode({"op": "result", "value": 1}))
        with pytest.raises(ProtocolError):
            channel.receive(timeout=5)
        assert channel.receive(timeout=5) == {"op": "result", "value": 1}
    finally:
        os.close(read_fd)
        os.close(write_fd)


@pytest.mark.parametrize("line", FORGED.values(), ids=FORGED.keys())
def test_a_refusal_names_the_rule_never_a_value_the_sender_chose(line):
    """A ProtocolError's text reaches the student's feedback, and student code can write to the
    channel: it must carry nothing the sender put in the message (no dtype, size, shape or text)."""
    with pytest.raises(ProtocolError) as refused:
        decode(line)
    text = str(refused.value)
    for constant in (MAX_ARRAY_SIZE, MAX_LINE_BYTES, MAX_DEPTH, MAX_DIMENSIONS, *DTYPES, "base64", "from 0"):
        text = text.replace(str(constant), "")
    assert not any(ch.isdigit() for ch in text) and "'object'" not in text and "garbage" not in text, text
