"""What every backend does the same unless it says otherwise: a host loop, no device clock, no encoding."""

from ..ops import DType


class Backend:
    """Defaults for the hooks the harness calls; a backend overrides what its hardware changes."""

    name = "?"
    timing = "host"
    init_s = 0.0  # seconds to create the backend's communicator (NCCL's is a figure operators watch)

    @classmethod
    def unavailable(cls, **options) -> str | None:
        """Return why this backend cannot run in this process, or None (checked on every rank)."""
        return None

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

    def versions(self) -> dict:
        """Return versions beyond the run's own (MPI, mpi4py, numpy, ncbench): NCCL, CUDA, GPU."""
        return {}

    def abort(self) -> None:
        """Tear down what could hang (called from the watchdog thread before the process exits)."""

    def close(self) -> None:
        """Release the communicator; every rank calls it before MPI finalises."""
