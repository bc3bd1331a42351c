"""The crdtsync replica server: one region's replica as a process (installed as crdtsync_server).

Run it with ``crdtsync serve --id us --listen 127.0.0.1:7001 --data ./data/us``. One port
serves ``/sync`` (peer replicas), ``/client`` (the JSON client API), ``/health`` and
``/metrics``. See docs/operations.md and docs/client-api.md.
"""

from __future__ import annotations

__all__: list[str] = []
