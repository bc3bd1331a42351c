"""Run the social-feed demo: ``python -m examples.social_feed [--fresh] [--load]``.

Starts three regions (us, eu, ap), each a replica server with its own SQLite data
directory, prints a page URL per region, and runs until Ctrl-C, which stops everything
cleanly. Running it again resumes the same data; ``--fresh`` starts from nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from pathlib import Path

from .cluster import REGIONS, DemoCluster
from .web import DemoWeb


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    p = argparse.ArgumentParser(prog="python -m examples.social_feed", description=__doc__)
    p.add_argument(
        "--data", default="data/social_feed", help="data directory (default %(default)s)"
    )
    p.add_argument("--fresh", action="store_true", help="delete the data and start empty")
    p.add_argument("--port", type=int, default=8080, help="web port (default %(default)s)")
    p.add_argument(
        "--replica-port",
        type=int,
        default=7101,
        help="first of three replica ports (default %(default)s)",
    )
    p.add_argument("--load", action="store_true", help="also run the load generator once")
    p.add_argument(
        "--seconds",
        type=float,
        default=0,
        help="stop after this many seconds (default: run until Ctrl-C)",
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> None:
    cluster = DemoCluster(Path(args.data), base_port=args.replica_port, fresh=args.fresh)
    web = DemoWeb(cluster, port=args.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await cluster.start()
        await web.start()
        print("\ncrdtsync social feed: three regions are up.", flush=True)
        for name in REGIONS:
            print(f"  {name}: {web.url(name)}", flush=True)
        print(
            "Open two regions side by side, cut one off with its switch, like in both, heal.\n"
            "Ctrl-C stops everything; run again to resume the same data (--fresh to start over).",
            flush=True,
        )
        if args.load:
            from .loadgen import run_load

            await run_load([r.port for r in cluster.regions.values()], users=12, seconds=5)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), args.seconds or None)
    finally:
        print("stopping...", flush=True)
        await web.stop()
        await cluster.stop()
        print("stopped; data kept in", args.data, flush=True)


if __name__ == "__main__":
    main()
