"""Fault-injection convergence suite (Jepsen style) over real replica server processes.

- :mod:`.schedule`: a seed -> a schedule of faults and the clients' operations (pure);
- :mod:`.cluster`: 3-5 ``crdtsync serve`` processes, every peer link through a fault proxy;
- :mod:`.harness`: runs a schedule (clients, nemesis, final heal) and records the history;
- :mod:`.stores`: reads the replicas' data directories (copies) after the run;
- :mod:`.checker`: the rules the history and the final states must obey;
- ``python -m tests.chaos --schedules N``: many schedules, with a summary (docs/chaos.md).
"""
