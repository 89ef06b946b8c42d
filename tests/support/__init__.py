"""Test support: real servers on free loopback ports, and the clock the tests wait with.

``rig`` (the simulator and a bridge wired together), ``timing`` (``UNIT``, ``wait_for``),
``ports``, and real external servers (``jaeger``, ``prometheus``, ``otlp_receiver``).
Binaries come from `tools/build.sh` (.tools/bin/) and `.ci/install-system.sh` (Debian
packages). Without them a test is skipped locally and fails under CI=true.
"""
