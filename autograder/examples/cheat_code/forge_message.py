import gc
import json
import os

OVERSIZE = '{"op":"result","value":{"kind":"tensor","array":{"__array__":["float64",[4611686018427387904,4],""]},"requires_grad":true},"id":ID}'
NAN_SHAPE = '{"op":"result","value":{"kind":"tensor","array":{"__array__":["float64",[NaN,4],""]}},"id":ID}'
DEEP = '{"op":"result","value":' + "[" * 600 + "]" * 600 + ',"id":ID}'
HUGE = '{"op":"result","value":{"kind":"tensor","array":{"__array__":["float64",[' + "9" * 5000 + '],""]}},"id":ID}'


def forge(line):
    """Write `line` to the checker as the answer to the request being served now."""
    session = next(o for o in gc.get_objects() if type(o).__name__ == "Session" and hasattr(o, "channel"))
    os.write(session.channel.write_fd, line.replace("ID", json.dumps(session.request_id)).encode() + b"\n")
