"""The messages between the checker (trusted) and the runner (untrusted): one JSON object a line.

Arrays travel as {"__array__": [dtype, shape, base64 of the raw bytes]}, never pickled. `decode`
is what the checker applies to everything the runner sends: it refuses lines longer than
`MAX_LINE_BYTES`, JSON that is not an object, nesting deeper than `MAX_DEPTH`, arrays of another
dtype than `DTYPES`, of a shape that does not match their bytes, or larger than `MAX_ARRAY_SIZE`
elements (counted with Python integers, which cannot overflow). Whatever the line holds, `decode`
returns a message or raises ProtocolError, nothing else: a bad message fails the request that
received it, never the grading around it. A ProtocolError's text names the rule broken, never a
value the other side chose (it reaches the student's feedback, and student code can write here). Only the standard library and NumPy are used, so both
sides import this file as it is.
"""

from __future__ import annotations

import base64
import json
import math
import os
import select
import time

import numpy as np

DTYPES = ("float32", "float64", "int64", "int32", "bool")
MAX_ARRAY_SIZE = 4_000_000  # elements of one array
MAX_LINE_BYTES = 64 * 2**20  # one message
# Levels of lists and objects in one message. The deepest honest message (a result that is a
# sequence of mappings of tensors, in a reply) is under 10 deep; Python's recursion limit is 1000.
MAX_DEPTH = 32
MAX_DIMENSIONS = 8  # of one array


class ProtocolError(Exception):
    """The other side sent something that is not a valid message (or nothing, or too much)."""


class ChannelTimeout(ProtocolError):
    """No complete message arrived within the time allowed."""


class ChannelClosed(ProtocolError):
    """The other side closed its end (it exited or was killed)."""


def encode_value(value):
    """Python data with NumPy arrays -> JSON-able data."""
    if isinstance(value, np.ndarray):
        if value.dtype.name not in DTYPES:
            value = value.astype(np.float64)
        value = np.array(value, order="C", copy=True)  # (ascontiguousarray would turn shape () into (1,))
        return {"__array__": [value.dtype.name, list(value.shape), base64.b64encode(value.tobytes()).decode("ascii")]}
    if isinstance(value, dict):
        return {str(k): encode_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode_value(v) for v in value]
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    return value


def decode_value(value, depth: int = 0):
    """JSON data -> Python data with validated NumPy arrays (ProtocolError when invalid)."""
    if isinstance(value, (dict, list)) and depth >= MAX_DEPTH:
        raise ProtocolError(f"a message nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, dict):
        if "__array__" in value:
            return _decode_array(value["__array__"])
        return {k: decode_value(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_value(v, depth + 1) for v in value]
    return value


def _decode_array(spec) -> np.ndarray:
    if not (isinstance(spec, list) and len(spec) == 3 and isinstance(spec[0], str) and isinstance(spec[1], list) and isinstance(spec[2], str)):
        raise ProtocolError("malformed array")
    dtype, shape, data = spec
    if dtype not in DTYPES:
        raise ProtocolError(f"array of a dtype not allowed (allowed: {', '.join(DTYPES)})")
    # Each dimension a plain int in [0, MAX_ARRAY_SIZE] (not a bool, float, NaN or a 4,000-digit
    # number), then their product in Python integers: np.prod in int64 wraps [2**62, 4] round to 0.
    if len(shape) > MAX_DIMENSIONS or not all(type(n) is int and 0 <= n <= MAX_ARRAY_SIZE for n in shape):
        raise ProtocolError(f"array of invalid shape (at most {MAX_DIMENSIONS} dimensions, each an integer from 0 to {MAX_ARRAY_SIZE})")
    size = math.prod(shape)
    if size > MAX_ARRAY_SIZE:
        raise ProtocolError(f"array of more than {MAX_ARRAY_SIZE} elements")
    if len(data) > 4 * ((size * np.dtype(dtype).itemsize + 2) // 3):
        raise ProtocolError("array with more data than its shape holds")
    try:
        raw = base64.b64decode(data, validate=True)
    except ValueError:
        raise ProtocolError("array data is not base64") from None
    if len(raw) != size * np.dtype(dtype).itemsize:
        raise ProtocolError("array whose data do not fit its shape")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


def encode(message: dict) -> bytes:
    return json.dumps(encode_value(message), allow_nan=True, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes) -> dict:
    """One message from its line; ProtocolError (and nothing else) for anything that is not one."""
    if len(line) > MAX_LINE_BYTES:
        raise ProtocolError(f"message longer than {MAX_LINE_BYTES} bytes")
    try:
        message = json.loads(line)
    except (ValueError, RecursionError):  # (ValueError covers integers of more than 4,300 digits)
        raise ProtocolError("not a JSON message") from None
    if not isinstance(message, dict) or not isinstance(message.get("op"), str):
        raise ProtocolError("a message must be a JSON object with an 'op'")
    try:
        return decode_value(message)
    except ProtocolError:
        raise
    except Exception as error:  # a case the checks above missed still fails this message alone
        raise ProtocolError(f"a message that cannot be decoded ({type(error).__name__})") from None


class Channel:
    """Messages over a pair of file descriptors, with a deadline on every receive."""

    def __init__(self, read_fd: int, write_fd: int):
        self.read_fd, self.write_fd = read_fd, write_fd
        self._buffer = bytearray()

    def send(self, message: dict) -> None:
        data = encode(message)
        view = memoryview(data)
        try:
            while view:
                written = os.write(self.write_fd, view)
                view = view[written:]
        except (BrokenPipeError, OSError) as error:
            raise ChannelClosed(f"the other side is gone ({error})") from None

    def receive(self, timeout: float | None = None) -> dict:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            newline = self._buffer.find(b"\n")
            if newline >= 0:
                line = bytes(self._buffer[:newline])
                del self._buffer[: newline + 1]
                return decode(line)
            if len(self._buffer) > MAX_LINE_BYTES:
                raise ProtocolError(f"message longer than {MAX_LINE_BYTES} bytes")
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self.read_fd], [], [], wait)
            if not ready:
                raise ChannelTimeout(f"no answer within {timeout:.0f} s")
            chunk = os.read(self.read_fd, 1 << 20)
            if not chunk:
                raise ChannelClosed("the other side closed the channel")
            self._buffer += chunk
