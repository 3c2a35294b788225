"""Give large transient buffers back to the operating system as soon as they are freed.

glibc's malloc serves blocks of 128 KiB and more with mmap and unmaps them when they are freed,
but each such free raises that threshold (up to 32 MiB): from then on big blocks come from the
threads' heaps, which keep the memory. Request bodies are read in such blocks (gunicorn reads a
chunked upload up to 1 MiB at a time), so a burst of large uploads left the worker ~60 MB above
idle for good. Pinning the threshold keeps big blocks mmapped: the worker returns to within a
few MB of idle (tests/test_hostile.py). Elsewhere than glibc (macOS), there is nothing to do.
"""

import ctypes

M_MMAP_THRESHOLD = -3
"""glibc's mallopt() parameter number (malloc.h)."""
MMAP_THRESHOLD_BYTES = 128 * 1024
"""glibc's own starting value, kept from then on."""


def pin_mmap_threshold() -> bool:
    """Fix glibc's mmap threshold; True if the C library took it."""
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this process already runs on
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
