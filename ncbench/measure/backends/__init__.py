"""How bytes move: one module per backend, looked up by its CLI name.

name -> Backend class; availability is checked without importing (importlib.util.find_spec).
"""

import importlib
import importlib.util

from ...errors import NcbenchError

# CLI value -> (module, class). A new backend is one more file and one more line here.
BACKENDS = {
    "mpi": ("ncbench.measure.backends.mpi", "MPIBackend"),
    "nccl": ("ncbench.measure.backends.nccl", "NCCLBackend"),
    "cuda-mpi": ("ncbench.measure.backends.cuda_mpi", "CudaMPIBackend"),
}
REQUIRES = {"mpi": ("mpi4py",), "nccl": ("mpi4py", "cupy"), "cuda-mpi": ("mpi4py", "cupy")}
INSTALL = {"cupy": "pip install 'ncbench[gpu]' on a machine with NVIDIA GPUs", "mpi4py": "pip install 'ncbench[mpich]'"}


def available() -> list[str]:
    """Return the backends whose modules can be imported here."""
    return [name for name, needs in REQUIRES.items() if all(importlib.util.find_spec(m) for m in needs)]


def get(name: str):
    """Return the backend class called `name`, or say which exist and which are usable here."""
    if name not in BACKENDS:
        raise NcbenchError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    missing = [m for m in REQUIRES[name] if importlib.util.find_spec(m) is None]
    if missing:
        raise NcbenchError(
            f"backend {name!r} needs {', '.join(missing)}, which is not installed "
            f"({'; '.join(INSTALL[m] for m in missing)}); available here: {', '.join(available()) or 'none'}"
        )
    module, cls = BACKENDS[name]
    return getattr(importlib.import_module(module), cls)
