"""The C allocator's settings for a training process: freed memory stays in the process for the next step.

By default glibc hands a large block back to the kernel when it is freed (an munmap, or a trim of the heap's
top, and a thread's own arena is a heap of its own), so the next step's block of the same size is faulted in
again, page by zeroed page. XLA on CPU allocates its temporaries at every step: the conv VAE on JAX took
20,400 page faults a step (about 80 MB) and spent a fifth of its time in them. One arena, and no block under
1 GiB mapped or trimmed apart, keeps those pages for reuse (measured in docs/benchmarks.md).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8
KEEP_BYTES = 1 << 30


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory for reuse; whether it did (False elsewhere: macOS, musl)."""
    if platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    settings = ((M_ARENA_MAX, 1), (M_MMAP_THRESHOLD, KEEP_BYTES), (M_TRIM_THRESHOLD, KEEP_BYTES))
    applied = [libc.mallopt(option, value) for option, value in settings]  # every one, even after a refusal
    return all(result == 1 for result in applied)
