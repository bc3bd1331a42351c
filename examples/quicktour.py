"""A short tour of the lattice core: three regions write concurrently, exchange deltas, agree.

Run with ``bash scripts/demo.sh`` (until the three-region social-feed demo lands).
"""

from __future__ import annotations

import random

from crdtsync import AWORSet, HybridLogicalClock, LWWRegister, PNCounter, join
from crdtsync.codec import decode, encode


def main() -> None:
    regions = ["us", "eu", "ap"]
    likes = {r: AWORSet() for r in regions}
    views = {r: PNCounter() for r in regions}
    title = {r: LWWRegister() for r in regions}
    clocks = {r: HybridLogicalClock() for r in regions}
    outbox: list[tuple[str, bytes]] = []

    # Everyone writes while cut off from each other (deltas queue up as bytes).
    now_ms = 1_700_000_000_000
    for i, region in enumerate(regions):
        outbox.append((region, encode(likes[region].add(region, f"user-{region}"))))
        outbox.append((region, encode(views[region].increment(region, 10 + i))))
        ts = clocks[region].now(now_ms + i)
        outbox.append((region, encode(title[region].assign(region, f"hello from {region}", ts))))
    # "us" unlikes its own like; "eu" likes as the same user concurrently: add wins.
    outbox.append(("us", encode(likes["us"].remove("us", "user-us"))))
    outbox.append(("eu", encode(likes["eu"].add("eu", "user-us"))))

    print("while partitioned:")
    for r in regions:
        print(
            f"  {r}: likes={sorted(likes[r].value)} views={views[r].value} title={title[r].value!r}"
        )

    # Heal: deliver every delta to every other region, shuffled and duplicated.
    rng = random.Random(7)
    deliveries = [(src, blob, dst) for src, blob in outbox for dst in regions if dst != src] * 2
    rng.shuffle(deliveries)
    for _src, blob, dst in deliveries:
        delta = decode(blob)
        target = {"aworset": likes, "pncounter": views, "lww": title}[delta.TYPE][dst]
        target.merge(delta)
    total = sum(len(b) for _, b in outbox)
    print(f"after exchanging {len(outbox)} deltas ({total} bytes), shuffled and duplicated:")
    for r in regions:
        print(
            f"  {r}: likes={sorted(likes[r].value)} views={views[r].value} title={title[r].value!r}"
        )
    same = all(
        likes[r] == likes["us"] and views[r] == views["us"] and title[r] == title["us"]
        for r in regions
    )
    print("converged:", same, "| join of all:", sorted(join(likes["us"], likes["eu"]).value))


if __name__ == "__main__":
    main()
