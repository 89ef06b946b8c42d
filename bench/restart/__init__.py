r"""Restart and outage benchmark: real ``otel-bridge serve`` processes on a state dir.

Run::

    .venv/bin/python -m bench.restart              # 500 runs x 10 tasks, 3 restarts, outage
    .venv/bin/python -m bench.restart --quick      # smoke run (under a minute)
    .venv/bin/python -m bench.restart --runs 1000 --tasks 20 --reps 5 \\
        --outage-runs 500 --outage-tasks 50 --rates 100,1000,5000 --only both

Every process is a real one on loopback: ``bench/restart/upstream.py`` (the e2e source with
each run cut at an open task and its rest held for the next socket), the e2e OTLP/gRPC
receiver (unique span ids, duplicates), and ``otel-bridge serve`` with a state dir, started
by ``bench/e2e/launch.py`` (default settings) and pinned to CPU 0 like the e2e benchmark.

Measured:

- restart resume (``--reps`` times): a bridge follows ``--runs`` runs and gets each run's
  first part (``flow_started``, ``--open`` tasks done, the next one started); once all of it
  is counted, exported and committed (``otel_bridge_state_unsaved_changes`` 0) it is
  SIGKILLed and a new bridge starts on the same state dir with no ``POST``. From its start:
  time to ``/readyz`` 200, to every run socket reconnected (the upstream counts), to every
  remaining span and every root at the receiver; spans lost, duplicated, dropped;
- outage: ``--outage-runs`` whole runs end while the OTLP endpoint is down (a free port);
  the bytes of the state budget per stored span (``otel_bridge_state_bytes`` ÷
  ``otel_bridge_export_queue_depth``), and from it how long an outage the default budgets
  hold at ``--rates`` spans/s (memory queue alone without a state dir; the disk budget with
  one); then the receiver starts on that port: time to the first and the last span,
  duplicates, loss.

The SQLite cost per event is ``python -m bench.e2e.run --state``'s. Progress goes to stderr,
markdown tables to stdout; every wait is a bounded poll and every child is stopped
(SIGTERM, then SIGKILL) whatever happens; logs are kept on failure or with ``--keep-logs``.

Modules: ``rig.py`` (the processes, /metrics), ``resume.py`` and ``outage.py`` (one
measurement each), ``table.py`` (the report), ``upstream.py`` (the holding LAO stand-in),
``late_receiver.py`` (the e2e receiver on a port chosen beforehand).
"""
