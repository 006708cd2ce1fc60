"""Host buffers: aligned, zeroed, and really backed by huge pages where the kernel allows it."""

from pathlib import Path

import pytest

from ncbench.measure import sysinfo
from ncbench.measure.backends.mpi import HUGE_PAGE, host_buffer


def test_buffers_are_aligned_and_zeroed():
    for nbytes in (1, 4096, 3 << 20):
        buf = host_buffer(nbytes)
        assert buf.ctypes.data % HUGE_PAGE == 0 and len(buf) == nbytes and not buf.any()


def _anon_huge_kib() -> int:
    text = Path("/proc/self/smaps").read_text()
    return sum(int(line.split()[1]) for line in text.splitlines() if line.startswith("AnonHugePages:"))


@pytest.mark.skipif(sysinfo.transparent_hugepages() not in ("always", "madvise"), reason="THP is off here")
def test_large_buffers_get_transparent_huge_pages():
    before = _anon_huge_kib()
    buf = host_buffer(16 << 20)
    buf[:] = 1
    assert _anon_huge_kib() - before >= 8 << 10  # at least half of it in 2 MiB pages
