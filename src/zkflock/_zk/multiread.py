"""ZooKeeper's multiRead (opcode 22, 3.6+), which kazoo cannot send.

N getChildren / getData requests in one request and one reply, where N
separate requests would cost kazoo's per-request client CPU and a thread
wake-up N times. Used by ``lock_many``'s queue listings (``queue``) and the
exporter's reads (``listing``). Unlike a multi, each operation succeeds or
fails on its own: the reply holds, per operation, its result or the
exception of its error code. Operations carry no watches.
"""

from __future__ import annotations

from typing import Any

from kazoo import exceptions as ke
from kazoo.protocol.serialization import (
    GetChildren,
    GetData,
    MultiHeader,
    Transaction,
    ZnodeStat,
    int_struct,
    read_buffer,
    read_string,
    stat_struct,
)


class MultiRead(Transaction):  # type: ignore[misc]
    """ZooKeeper's multiRead of GetChildren / GetData operations (no watches).
    Unlike a multi, each operation succeeds or fails on its own: the reply
    holds, per operation, its result or the exception of its error code."""

    type = 22

    @classmethod
    def deserialize(cls, buffer: bytes, offset: int) -> list[Any]:
        results: list[Any] = []
        header, offset = MultiHeader.deserialize(buffer, offset)
        while not header.done:
            if header.type == GetChildren.type:
                count = int_struct.unpack_from(buffer, offset)[0]
                offset += int_struct.size
                children = []
                for _ in range(count):
                    child, offset = read_string(buffer, offset)
                    children.append(child)
                results.append(children)
            elif header.type == GetData.type:
                data, offset = read_buffer(buffer, offset)
                stat = ZnodeStat._make(stat_struct.unpack_from(buffer, offset))
                offset += stat_struct.size
                results.append((data or b"", stat))
            else:  # -1: this operation's error code
                err = int_struct.unpack_from(buffer, offset)[0]
                offset += int_struct.size
                results.append(ke.EXCEPTIONS[err]())
            header, offset = MultiHeader.deserialize(buffer, offset)
        return results
