"""Shared test helpers: where mpiexec is, and how to run ncbench under it."""

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def committed_runs(tmp_path_factory) -> Path:
    """A read-only copy of the runs the repository commits (git's results/runs), for tests that read the folder whole.

    The README's `scripts/run` writes a new run into results/runs; a test that counted the folder's points or
    took its latest run would then fail on a newcomer's machine after the README's first command.
    """
    where = tmp_path_factory.mktemp("committed") / "runs"
    where.mkdir()
    listed = subprocess.run(
        ["git", "ls-files", "-z", "results/runs"], cwd=ROOT, capture_output=True, check=False
    ).stdout.decode()
    names = [Path(name) for name in listed.split("\0") if name] or [
        path.relative_to(ROOT)
        for path in (ROOT / "results" / "runs").iterdir()
        if path.is_file()  # no git (an unpacked sdist)
    ]
    for name in names:
        shutil.copy2(ROOT / name, where / name.name)
    return where


def mpiexec() -> str | None:
    """Return the mpiexec beside this Python (the mpich wheel's), else the one on PATH."""
    local = Path(sys.executable).parent / "mpiexec"
    if local.exists():
        return str(local)
    return shutil.which("mpiexec")


HAS_MPI = importlib.util.find_spec("mpi4py") is not None and mpiexec() is not None
requires_mpi = pytest.mark.skipif(not HAS_MPI, reason="needs mpi4py and mpiexec (pip install '.[mpich]')")


def model_rows(truth, op, algorithm, scales, rng, *, protocols=None, noise=0.02, run=None, tuner=None) -> list[dict]:
    """Return NCCL rows of `op` timed by the cost model itself, with relative noise.

    Each row takes the protocol of `protocols` that is fastest at `tuner`'s nominal values (the library's own
    constants choose; default `truth`'s) and the time `truth` gives it. Sizes 8 B .. 512 MiB by 4x at each
    scale, 8 GPUs per node; `run` adds a run_id column.
    """
    from ncbench.model import cost

    params, chooser = cost.nominal(truth), cost.nominal(tuner or truth)
    names = protocols or tuple(cost.PROTOCOLS)
    rows = []
    for p in scales:
        terms = cost.cost(op, algorithm, cost.shape(truth, [p]))
        for n in [8 * 4**i for i in range(14)]:
            priced = [cost.with_protocol(terms, cost.PROTOCOLS[x]) for x in names]
            picked = min(priced, key=lambda t: cost.evaluate(cost.as_tuned(t), chooser, [n])[0, 0])
            t = cost.evaluate(picked, params, [n])[0, 0]
            row = {"op": op, "backend": "nccl", "nranks": p, "nnodes": max(1, p // 8), "ranks_per_node": min(p, 8)}
            row.update(nbytes=n, time_us=t * (1 + noise * rng.standard_normal()), wrong=0)
            rows.append(row if run is None else {"run_id": run, **row})
    return rows


def run_ncbench(*args, cwd=None, timeout=120) -> subprocess.CompletedProcess:
    """Run `python -m ncbench ARGS` (no MPI launcher) in `cwd` (default the repository); return it finished."""
    cmd = [sys.executable, "-m", "ncbench", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, cwd=cwd or ROOT)


def run_mpi(n, *args, env=None, timeout=120, cwd=None) -> subprocess.CompletedProcess:
    """Run `mpiexec -n n python -m ncbench ARGS`; return the finished process (text output)."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    if "NCBENCH_INJECT" not in (env or {}):
        full_env.pop("NCBENCH_INJECT", None)  # a fault set in the caller's shell must not leak into a test
    cmd = [mpiexec(), "-n", str(n), sys.executable, "-m", "ncbench", *map(str, args)]
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, env=full_env, cwd=cwd or ROOT, check=False
    )
