"""Child process of test_crash: commit the workload in a loop, print each acknowledged i.

Usage: python crash_child.py STORE_PATH SECONDS. Prints ``ready N`` once the store is open
(N: the last commit already in it), then ``i`` after each ``commit()`` returns, flushed.
Stops by itself after SECONDS (the parent normally SIGKILLs it long before).
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))

from crdtsync.store import SQLiteStore  # noqa: E402
from tests.unit.store.helpers import commit_for  # noqa: E402


def main() -> None:
    path, seconds = sys.argv[1], float(sys.argv[2])
    store = SQLiteStore(path)
    done = int(store.meta().get("count", 0))
    print("ready", done, flush=True)
    deadline = time.monotonic() + seconds
    i = done + 1
    while time.monotonic() < deadline:
        store.commit(commit_for(i))
        print(i, flush=True)
        i += 1
    store.close()


if __name__ == "__main__":
    main()
