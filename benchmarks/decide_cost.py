"""CPU of one lock decision over an N-node queue: zkflock's ``decide`` against
the old one (every child parsed and sorted; ``tests/_protocol_reference.py``)
and a plain sort of the children by their sequence suffix (what kazoo's ``Lock`` does
per wake-up), in one process, best of 5.

    .venv/bin/python benchmarks/decide_cost.py          # 4, 16, 100 nodes
    .venv/bin/python benchmarks/decide_cost.py 100 1000
"""

from __future__ import annotations

import os
import random
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import _protocol_reference as reference
from zkflock._locks import protocol

CALLS = 2000


def best_us(call: object) -> float:
    return min(timeit.repeat(call, number=CALLS, repeat=5)) / CALLS * 1e6  # type: ignore[arg-type]


def main(sizes: list[int]) -> None:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average {load}; {CALLS} calls, best of 5, µs per call")
    print(f"{'nodes':>6} {'who':>12} {'zkflock':>9} {'old':>9} {'old/zkflock':>12}")
    for n in sizes:
        nodes = [f"x-{i:032x}-{i:010d}" for i in range(n)]
        listing = nodes[:]
        random.Random(n).shuffle(listing)  # the server lists in no particular order
        for who, me in (("next in line", nodes[1]), ("last", nodes[-1])):
            new = best_us(lambda me=me, ls=listing: protocol.decide_exclusive(ls, me))
            old = best_us(lambda me=me, ls=listing: reference.decide_exclusive(ls, me))
            print(f"{n:>6} {who:>12} {new:9.1f} {old:9.1f} {old / new:12.1f}")
        plain = best_us(lambda ls=listing: sorted(ls, key=lambda c: c[-10:]))
        print(f"{n:>6} {'suffix sort':>12} {plain:9.1f}")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [4, 16, 100])
