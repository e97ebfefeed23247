"""The event store's transcoder: the library's JSON format, written by ``orjson``.

``eventsourcing``'s ``JSONTranscoder`` encodes an event's state with the standard ``json``
module and calls back into Python for every datetime and command context; that was
about an eighth of the NATS ingest's CPU. ``orjson`` writes the same bytes (compact
separators, UTF-8, keys in insertion order) in a fraction of the time, and hands
datetimes and dataclasses back to the registered transcodings, so the stored form keeps
its ``{"_type_": ..., "_data_": ...}`` wrappers and reads back through the library's
decoder unchanged. Whatever ``orjson`` refuses (an integer beyond 64 bits, a key that is
not a string, text that is not valid Unicode) is encoded by the library, exactly as before.

One difference would change what is stored: ``orjson`` writes a ``UUID`` as a plain
string, where the library writes a wrapped hex value. Domain events carry no UUIDs (their
fields are text, numbers, datetimes and the command context), and a test over every
event class keeps it so.
"""

from __future__ import annotations

from typing import Any, Final

import orjson
from eventsourcing.persistence import JSONTranscoder

_OPTIONS: Final = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


class OrjsonTranscoder(JSONTranscoder):
    """``JSONTranscoder`` with ``orjson`` encoding (see the module docstring)."""

    def encode(self, obj: Any) -> bytes:
        """The same bytes ``JSONTranscoder.encode`` makes, made faster."""
        try:
            return orjson.dumps(obj, default=self._wrapped, option=_OPTIONS)
        except orjson.JSONEncodeError:
            return super().encode(obj)  # encodes it the library's way, or raises its error

    def _wrapped(self, obj: Any) -> dict[str, Any]:
        transcoding = self.types.get(type(obj))
        if transcoding is None:
            raise TypeError  # orjson's signal for "cannot encode": the library's path decides
        return {"_type_": transcoding.name, "_data_": transcoding.encode(obj)}
