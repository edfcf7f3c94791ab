"""Write ``sdk-recorded-participants-2020-09.json`` from the comms-samples recording.

``microsoftgraph/microsoft-graph-comms-samples`` keeps, as test data of its recording bot,
``RecordingBot.Tests/TestData/participants.zip``: 21 roster events of one real Teams call
(2020-09-02), each a BSON document that the Graph Communications SDK's
``CollectionEventArgs<IParticipant>`` was serialized to (``AddedResources`` and
``RemovedResources``, each resource with the participant JSON the service sent).

Usage::

    python decode_sdk_participants.py participants.zip \
        > sdk-recorded-participants-2020-09.json

BSON is decoded as it stands (strings, documents, arrays, booleans, int32/int64, doubles,
UTC datetimes as ``{"$date": milliseconds}``, null); nothing is renamed or dropped.
"""

from __future__ import annotations

import json
import struct
import sys
import zipfile
from typing import Any


def _document(data: bytes, at: int, *, array: bool = False) -> tuple[Any, int]:
    (size,) = struct.unpack_from("<i", data, at)
    end, at, out = at + size, at + 4, {}
    while data[at] != 0:
        kind, name_end = data[at], data.index(0, at + 1)
        name, at = data[at + 1 : name_end].decode(), name_end + 1
        value: Any
        if kind == 0x02:
            (length,) = struct.unpack_from("<i", data, at)
            value, at = data[at + 4 : at + 3 + length].decode(), at + 4 + length
        elif kind in (0x03, 0x04):
            value, at = _document(data, at, array=kind == 0x04)
        elif kind == 0x08:
            value, at = data[at] == 1, at + 1
        elif kind == 0x10:
            (value,), at = struct.unpack_from("<i", data, at), at + 4
        elif kind in (0x12, 0x09):
            (value,), at = struct.unpack_from("<q", data, at), at + 8
            value = {"$date": value} if kind == 0x09 else value
        elif kind == 0x01:
            (value,), at = struct.unpack_from("<d", data, at), at + 8
        elif kind == 0x0A:
            value = None
        else:
            raise ValueError(f"BSON element type {kind:#x} at byte {at} is not decoded here")
        out[name] = value
    if at + 1 != end:
        raise ValueError(f"BSON document ends at byte {at + 1}, its size says {end}")
    return (list(out.values()) if array else out), end


def main(path: str) -> None:
    """Print the zip's events as one JSON array, oldest first (entries are named by .NET ticks)."""
    with zipfile.ZipFile(path) as archive:
        events = [
            {"entry": name, **_document(archive.read(name), 0)[0]}
            for name in sorted(archive.namelist())
        ]
    json.dump(events, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
