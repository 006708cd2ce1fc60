"""What every backend does the same unless it says otherwise: a host loop, no device clock, no encoding."""

from ...ops import DType

MEMORY_SHARE = 0.8  # of MemAvailable that a node's ranks may use for buffers


def host_memory_problem(bytes_per_rank: int, hosts: list[str], rank: int) -> str | None:
    """Return why `bytes_per_rank` of host buffers will not fit beside this host's other ranks, or None."""
    local_ranks = hosts.count(hosts[rank])
    try:
        with open("/proc/meminfo") as f:
            avail_kib = next(int(line.split()[1]) for line in f if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError):
        return None  # no /proc/meminfo: let the allocation itself fail
    if bytes_per_rank <= avail_kib * 1024 * MEMORY_SHARE / max(1, local_ranks):
        return None
    return (
        f"the largest size needs {bytes_per_rank / 2**30:.2f} GiB per rank for buffers and check data, but "
        f"{local_ranks} ranks share {avail_kib / 2**20:.1f} GiB available on {hosts[rank]}; lower -e"
    )


class Backend:
    """Defaults for the hooks the harness calls; a backend overrides what its hardware changes."""

    name = "?"
    timing = "host"
    init_s = 0.0  # seconds to create the backend's communicator (NCCL's is a figure operators watch)

    @classmethod
    def unavailable(cls, **options) -> str | None:
        """Return why this backend cannot run in this process, or None (checked on every rank)."""
        return None

    @classmethod
    def memory_problem(cls, bytes_per_rank: int, hosts: list[str], rank: int, **options) -> str | None:
        """Return why this rank's buffers will not fit where this backend keeps them, or None."""
        return host_memory_problem(bytes_per_rank, hosts, rank)

    @staticmethod
    def unsupported(dt: DType) -> str | None:
        return None

    def batch(self, raw, pre, iters: int):
        """Return a callable issuing `iters` operations, each after the rank's pre-op hook (if any)."""
        loop = range(iters)
        if pre is None:

            def run():
                for _ in loop:
                    raw()
        else:

            def run():
                for _ in loop:
                    pre()
                    raw()

        return run

    def failure(self, err: Exception) -> str | None:
        """Return one sentence for an error this backend's library raised (not a bug of ours), or None."""
        return None

    def ops_per_batch(self, iters: int) -> int:
        """Return how many operations `batch(raw, pre, iters)` issues (CUDA-graph launches may round it)."""
        return iters

    def timer(self):
        """Return a device timer (start/stop/elapsed_s) for each sample, or None on host buffers."""
        return

    def value_dtype(self, dt: DType) -> DType:
        """Return the dtype check values are computed in before `encode` stores them as `dt`."""
        return dt

    def encode(self, values, dt: DType):
        return values

    def decode(self, stored, dt: DType):
        return stored

    def describe_device(self) -> tuple[int, str, str] | None:
        """Return this rank's (CUDA device, PCI bus id, model) on GPU buffers, None on host buffers."""
        return None

    def versions(self) -> dict:
        """Return versions beyond the run's own (MPI, mpi4py, numpy, ncbench): NCCL, CUDA, GPU."""
        return {}

    def abort(self) -> None:
        """Tear down what could hang (called from the watchdog thread before the process exits)."""

    def close(self) -> None:
        """Release the communicator; every rank calls it before MPI finalises."""
