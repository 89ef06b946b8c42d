"""Real external servers (Jaeger, Prometheus) for integration tests, on free loopback ports.

Binaries come from `tools/build.sh` (.tools/bin/) and `.ci/install-system.sh` (Debian
packages). Without them a test is skipped locally and fails under CI=true.
"""
