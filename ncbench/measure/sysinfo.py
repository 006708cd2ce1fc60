"""What was true when a run was measured: versions, settings that move results, environment.

this process + the MPI library -> plain dicts for a run's JSON sidecar (docs/formats.md, "Run sidecar JSON").
"""

import os
import platform
import re
import subprocess
from pathlib import Path

ENV_PREFIXES = ("NCCL_", "UCX_", "OMPI_", "MPICH_", "MPIR_CVAR_", "I_MPI_", "FI_", "HYDRA_", "PMIX_MCA_")
ENV_NAMES = ("CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS", "NCBENCH_INJECT", "SLURM_JOB_ID", "SLURM_NODELIST")
THP_PATH = Path("/sys/kernel/mm/transparent_hugepage/enabled")
GOVERNOR_PATH = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")


def recorded_env(environ: dict) -> dict[str, str]:
    """Return the environment variables that change how collectives run."""
    return {k: v for k, v in sorted(environ.items()) if k.startswith(ENV_PREFIXES) or k in ENV_NAMES}


def _selected(path: Path) -> str:
    try:
        text = path.read_text().strip()
    except OSError:
        return "unknown"
    match = re.search(r"\[(\w+)\]", text)
    return match.group(1) if match else text


def transparent_hugepages() -> str:
    """Return the THP mode ('always', 'madvise', 'never' or 'unknown')."""
    return _selected(THP_PATH)


def cpu_governor() -> str:
    return _selected(GOVERNOR_PATH)


def binding() -> str:
    """Return the cores this process may run on, as a compact list ('0-3,8')."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return "unknown"
    spans: list[list[int]] = []
    for cpu in cpus:
        if spans and cpu == spans[-1][1] + 1:
            spans[-1][1] = cpu
        else:
            spans.append([cpu, cpu])
    return ",".join(f"{a}-{b}" if a != b else f"{a}" for a, b in spans)


def git_revision() -> str:
    """Return the ncbench checkout's git revision (with '-dirty'), or 'unknown' outside one."""
    here = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(
            ["git", "-C", str(here), "describe", "--always", "--dirty", "--abbrev=12"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return sha or "unknown"


def versions(mpi_module=None) -> dict[str, str]:
    """Return the versions of everything on the measurement path."""
    import numpy

    from .. import __version__

    found = {
        "ncbench": __version__,
        "git": git_revision(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
    }
    if mpi_module is not None:
        import mpi4py

        found["mpi4py"] = mpi4py.__version__
        found["mpi_library"] = mpi_module.Get_library_version().strip().splitlines()[0].strip()
        found["mpi_standard"] = "{}.{}".format(*mpi_module.Get_version())
    return found


def process_info() -> dict:
    """Return what this process sees of its machine (one entry per rank in the sidecar)."""
    return {
        "pid": os.getpid(),
        "host": platform.node(),
        "binding": binding(),
        "cores": os.cpu_count() or 1,
        "load_avg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }


def machine() -> dict:
    """Return the settings that moved results by more than Python's own overhead (docs/methodology.md)."""
    return {
        "os": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "transparent_hugepages": transparent_hugepages(),
        "cpu_governor": cpu_governor(),
    }
