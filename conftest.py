"""The test process's environment, set before any test module imports torch."""

import os

# torch's OpenMP threads sleep rather than spin while waiting, as in the processes the
# `prelabel` command starts (prelabel.threads): on a busy machine spinning threads make
# torch code on every core ten times slower.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
