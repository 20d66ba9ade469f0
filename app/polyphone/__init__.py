"""Polyphone: a desktop softphone for PolyAI voice agents."""

import os as _os

# numpy's OpenBLAS splits even a 24,000-sample dot product across a thread per core. On a busy
# machine those threads wait for a core, and the call that asked waits with them: measured
# here with both cores busy, np.dot took 18 ms (median; a 454 ms stall of the call's event loop
# in the echo watch once) against 0.08 ms on one thread. Polyphone's vectors are all this
# small, so BLAS runs on the calling thread. Set before numpy loads; a value the person set wins.
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
    _os.environ.setdefault(_name, "1")

__version__ = "0.1.0"
APP_NAME = "Polyphone"
