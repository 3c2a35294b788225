"""The worker gives big transient buffers back: glibc's mmap threshold stays where memory.py pins it.

tests/test_hostile.py measures the effect on a real server (slow); these check the setting itself, in a fresh
interpreter, through glibc's own count of mmapped blocks (mallinfo2).
"""

import ctypes
import json
import subprocess
import sys

import pytest

from taxifare.serving import memory
from tests.conftest import REPO

PROBE = """
import ctypes, json, sys
from taxifare.serving.memory import pin_mmap_threshold

libc = ctypes.CDLL(None)
class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype, libc.malloc.argtypes, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_size_t], [ctypes.c_void_p]

def mmapped(size, count=1):  # how many of `count` blocks, held together, glibc serves with mmap
    before = libc.mallinfo2().hblks
    blocks = [libc.malloc(size) for _ in range(count)]
    taken = libc.mallinfo2().hblks - before
    for block in blocks:
        libc.free(block)
    return taken

pinned = pin_mmap_threshold() if sys.argv[1] == "pin" else None
libc.free(libc.malloc(4 << 20))  # an upload-sized buffer freed: unpinned, glibc raises its threshold past it
print(json.dumps({"pinned": pinned, "512 KiB": mmapped(512 << 10), "64 x 64 KiB": mmapped(64 << 10, count=64)}))
"""


def blocks_mmapped_after_a_big_free(pin: bool) -> dict:
    """How many blocks glibc serves with mmap once a 4 MiB buffer came and went: one of 512 KiB, 64 of 64 KiB."""
    run = subprocess.run([sys.executable, "-c", PROBE, "pin" if pin else "no"], cwd=REPO,
                         capture_output=True, text=True, timeout=60, check=True)
    return json.loads(run.stdout)


@pytest.mark.skipif(not hasattr(ctypes.CDLL(None), "mallinfo2"), reason="glibc 2.33+ only")
def test_pinned_threshold_keeps_big_blocks_mmapped_and_small_ones_in_the_heap():
    assert blocks_mmapped_after_a_big_free(pin=True) == {"pinned": True, "512 KiB": 1, "64 x 64 KiB": 0}


@pytest.mark.skipif(not hasattr(ctypes.CDLL(None), "mallinfo2"), reason="glibc 2.33+ only")
def test_without_the_pin_glibc_keeps_big_blocks_in_its_heap():
    """The probe's control: what the pin prevents does happen without it."""
    assert blocks_mmapped_after_a_big_free(pin=False) == {"pinned": None, "512 KiB": 0, "64 x 64 KiB": 0}


@pytest.mark.parametrize("error", [OSError("no C library"), AttributeError("mallopt")])
def test_a_c_library_without_mallopt_is_left_alone(monkeypatch, error):
    """Elsewhere than glibc (macOS's libc has no mallopt), main.py still imports and nothing is pinned."""
    def unavailable(_name):
        raise error
    monkeypatch.setattr(memory.ctypes, "CDLL", unavailable)
    assert memory.pin_mmap_threshold() is False
