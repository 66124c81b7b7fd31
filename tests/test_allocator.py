"""keep_freed_memory: a block freed by one training step is reused by the next, not faulted in again."""

import platform
import resource
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")

BLOCK = 48 << 20
PAGES = BLOCK // resource.getpagesize()

# Sets the allocator up as told (not at all, by keep_freed_memory, or as the CLI's commands do), then runs
# five steps on a worker thread, as XLA's threads do, each allocating, writing and freeing one block; prints
# the page faults the steps took.
STEPS = f"""
import ctypes, ctypes.util, resource, sys, threading
if sys.argv[1] == "keep":
    from keras_vae.allocator import keep_freed_memory
    assert keep_freed_memory()
elif sys.argv[1] == "cli":
    from cli.boundary import use_backend
    use_backend(__import__("os").environ.get("KERAS_BACKEND", "tensorflow"))
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


def page_faults(setup: str) -> int:
    done = subprocess.run([sys.executable, "-c", STEPS, setup], capture_output=True, text=True, check=True)
    return int(done.stdout.split()[-1])


def test_by_default_each_step_faults_its_block_in_again():
    assert page_faults("default") > 4 * PAGES


@pytest.mark.parametrize("setup", ["keep", "cli"])
def test_kept_memory_is_faulted_in_by_the_first_step_only(setup):
    assert page_faults(setup) < 1.2 * PAGES
