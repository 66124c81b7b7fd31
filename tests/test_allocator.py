"""keep_freed_memory: a block freed by one training step is reused by the next, not faulted in again."""

import platform
import subprocess
import sys

import pytest

BLOCK = 48 << 20
PAGES = BLOCK // 4096

# Five steps, each allocating, writing and freeing one block on a worker thread, as XLA's threads do;
# prints the page faults they took.
STEPS = f"""
import ctypes, ctypes.util, resource, sys, threading
from keras_vae.allocator import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
def steps():
    for _ in range(5):
        block = libc.malloc({BLOCK})
        ctypes.memset(block, 1, {BLOCK})
        libc.free(block)
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
worker = threading.Thread(target=steps)
worker.start()
worker.join()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults)
"""


def page_faults(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", STEPS, mode], capture_output=True, text=True, check=True)
    return int(done.stdout.split()[-1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_freed_blocks_are_reused_not_faulted_in_again():
    assert page_faults("default") > 4 * PAGES  # each step's block comes fresh from the kernel
    assert page_faults("keep") < 1.2 * PAGES  # only the first step's

