"""How bytes move: one module per backend, looked up by its CLI name.

name -> Backend class; availability is checked without importing (importlib.util.find_spec).
"""

import importlib
import importlib.util
from dataclasses import dataclass

from ...errors import NcbenchError


@dataclass(frozen=True)
class Entry:
    """One backend: where its class lives, what it needs installed, and which launch options it honours."""

    module: str
    cls: str
    requires: tuple[str, ...]
    graphs: bool = False  # -G / --graph: captures its launches in a CUDA graph
    staged: bool = False  # --staged: copies GPU buffers through host memory


# CLI value -> Entry. A new backend is one more file and one more line here.
BACKENDS = {
    "mpi": Entry("ncbench.measure.backends.mpi", "MPIBackend", ("mpi4py",)),
    "nccl": Entry("ncbench.measure.backends.nccl", "NCCLBackend", ("mpi4py", "cupy"), graphs=True),
    "cuda-mpi": Entry("ncbench.measure.backends.cuda_mpi", "CudaMPIBackend", ("mpi4py", "cupy"), staged=True),
}
INSTALL = {"cupy": "pip install 'ncbench[gpu]' on a machine with NVIDIA GPUs", "mpi4py": "pip install 'ncbench[mpich]'"}


def supporting(option: str) -> list[str]:
    """Return the backends that honour a launch option ('graphs', 'staged')."""
    return [name for name, entry in BACKENDS.items() if getattr(entry, option)]


def available() -> list[str]:
    """Return the backends whose modules can be imported here."""
    return [name for name, e in BACKENDS.items() if all(importlib.util.find_spec(m) for m in e.requires)]


def get(name: str):
    """Return the backend class called `name`, or say which exist and which are usable here."""
    if name not in BACKENDS:
        raise NcbenchError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    missing = [m for m in BACKENDS[name].requires if importlib.util.find_spec(m) is None]
    if missing:
        raise NcbenchError(
            f"backend {name!r} needs {', '.join(missing)}, which is not installed "
            f"({'; '.join(INSTALL[m] for m in missing)}); available here: {', '.join(available()) or 'none'}"
        )
    entry = BACKENDS[name]
    return getattr(importlib.import_module(entry.module), entry.cls)
