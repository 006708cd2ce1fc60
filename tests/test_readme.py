"""Every command README.md shows, run as written in README order in a fresh copy of the repository.

The commands are read from the README itself (its ```bash blocks and the `$ ` lines of its transcripts),
so a command added there without a row here fails `test_every_readme_command_has_a_case`. A row gives
the exit code the README documents and a piece of what the command must print; `run` replaces the
command only where, as written, it would sweep for minutes (the README says so beside it), and then
only by adding small sizes. A row that cannot run here says why, and that reason is checked to hold.
"""

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ROOT, requires_mpi

pytestmark = [requires_mpi, pytest.mark.mpi]
VENV = ROOT / ".venv"
SMALL = " -e 64K --time-budget 0.01"  # added to sweeps that take minutes as written


@dataclass(frozen=True)
class Case:
    code: int | tuple[int, ...] = 0  # the exit code the README documents (a tuple: any of these)
    says: str = ""  # text the output (stdout and stderr) must contain
    run: str = ""  # what runs instead: the command with small sizes added; "" runs it as written
    skip: str = ""  # a key of SKIPS: why it may not run here (it runs wherever that does not hold)
    timeout_s: int = 300


def _no_gpu() -> bool:
    from ncbench.measure.backends import gpu

    return gpu.unavailable() is not None


SKIPS = {  # reason -> whether it holds here (a row is skipped only while it does)
    "runs this test suite": lambda: True,
    "installs CuPy for a GPU machine into the shared .venv": lambda: True,
    "needs Slurm's srun": lambda: shutil.which("srun") is None,
    "needs no GPU here (scripts/gpu-proof runs it on a GPU)": lambda: not _no_gpu(),
}
NO_GPU = Case(64, "needs cupy, which is not installed")  # without a GPU: one sentence and exit 64 (its documented code)
GPU = "needs no GPU here (scripts/gpu-proof runs it on a GPU)"
A = "results/runs/20261123T123944Z-vm-allreduce-mpi-11815.csv"
B = "results/runs/20261123T124037Z-vm-allreduce-mpi-11955.csv"

CASES = {
    "scripts/run": Case(0, "# Results:", run="scripts/run -e 64K"),
    "scripts/test": Case(skip="runs this test suite"),
    "source .venv/bin/activate": Case(0),
    "mpiexec -n 4 ncbench allreduce -b 8 -e 128M -f 2": Case(
        0, "# Results:", run="mpiexec -n 4 ncbench allreduce -b 8 -e 1M -f 2"
    ),
    "mpiexec -n 4 ncbench reduce -r -1 -d all -o all -c 1": Case(
        0,
        "leaves out bfloat16",
        run="mpiexec -n 4 ncbench reduce -r -1 -d all -o all -c 1 -e 16 --time-budget 0.002 --samples 2",
    ),
    "mpiexec -n 8 ncbench allgather --nodes 1,2,4,8 --ranks-per-node 1": Case(
        0, "# Results:", run="mpiexec -n 8 ncbench allgather --nodes 1,2,4,8 --ranks-per-node 1" + SMALL
    ),
    "mpiexec -n 4 ncbench p2p --pairs all-nodes --ranks-per-node 2": Case(
        0, "# Results:", run="mpiexec -n 4 ncbench p2p --pairs all-nodes --ranks-per-node 2" + SMALL
    ),
    "mpiexec -n 4 ncbench alltoall --format json | jq .busbw_GBps": Case(
        0, "\n", run="mpiexec -n 4 ncbench alltoall --format json -e 1M | jq .busbw_GBps"
    ),
    "ncbench import tests/data/nccl-tests/all_reduce_v2.19_2x2.log tests/data/nccl-tests/alltoall.json --out results/runs/cluster-a-2026-11.csv": Case(
        0, "wrote 8 rows to results/runs/cluster-a-2026-11.csv"
    ),
    "ncbench import 'tests/data/nccl-tests/*.log' --out results/imports/cluster-b.csv": Case(
        0, "ncbench: tests/data/nccl-tests/not_nccl_tests.log: no nccl-tests result rows"
    ),
    "ncbench import tests/data/nccl-tests/job64_allgather_8x8_v2.19.log --ranks 64 --gpus-per-node 8 --out results/imports/pasted.csv": Case(
        0, "64 ranks (given) on 8 node(s)"
    ),
    "ncbench import tests/data/osu/ tests/data/imb/imb-2021.11_mpi1_n4.txt --out results/imports/osu-imb.csv": Case(
        0, "rows of alltoall (IMB 2021.11, 4 ranks"
    ),
    "NCBENCH_INJECT=delay:rank=1:us=2000 mpiexec -n 4 ncbench allreduce": Case(
        0, "Slowest rank: 1", run="NCBENCH_INJECT=delay:rank=1:us=2000 mpiexec -n 4 ncbench allreduce -e 64K"
    ),
    "NCBENCH_INJECT=corrupt:rank=1 mpiexec -n 4 ncbench allgather": Case(
        2, "came from rank(s) 1", run="NCBENCH_INJECT=corrupt:rank=1 mpiexec -n 4 ncbench allgather" + SMALL
    ),
    "NCBENCH_INJECT=stall:rank=1 mpiexec -n 4 ncbench allreduce -T 10": Case(3, "did not arrive", timeout_s=120),
    "mpiexec -n 32 ncbench health --suite nightly --baseline results/baselines/ --update-baseline": Case(
        (0, 1), "ncbench health nightly:"
    ),
    "srun ncbench health --topology topologies/colossus-spectrum-x-200k.toml --prom-dir /var/lib/node_exporter/textfile_collector": Case(
        (0, 1, 2, 3), "ncbench health nightly:", skip="needs Slurm's srun"
    ),
    "mpiexec -n 4 ncbench health --suite quick --ranks-per-node 1": Case((0, 1), "ncbench health quick:"),
    "ncbench health history": Case(0, "run_id"),
    "ncbench health history results/health --node 'vm#1'": Case(0, "node_status"),
    "ncbench health simulate --nodes 125k --bad-nodes 10 --bad-links 3": Case(0, "wrongly"),
    "scripts/health-nightly": Case((0, 1), "ncbench health exit code:"),
    "ncbench report results/runs --topology topologies/this-machine.fitted.toml --topology topologies/colossus-spectrum-x-200k.toml --predictions results/predictions/default-sweep.csv --health results/health --out results/reports/mine/": Case(
        0, "report.html"
    ),
    f"ncbench compare {A} {B}": Case(2, "8 regression"),
    f"ncbench compare {A} {B} --threshold 10 --format csv": Case(2, "regression"),
    "pip install -e '.[mpich,gpu]'": Case(skip="installs CuPy for a GPU machine into the shared .venv"),
    "mpirun -n 16 ncbench allreduce --backend nccl -b 8 -e 8G": Case(NO_GPU.code, NO_GPU.says, skip=GPU),
    "mpirun -n 8 ncbench allreduce --backend nccl -G 1": Case(NO_GPU.code, NO_GPU.says, skip=GPU),
    "mpirun -n 8 ncbench allreduce --backend nccl -d all -o all": Case(NO_GPU.code, NO_GPU.says, skip=GPU),
    "mpirun -n 8 ncbench p2p --backend nccl --pairs all": Case(NO_GPU.code, NO_GPU.says, skip=GPU),
    "mpirun -n 1 ncbench p2p --backend nccl --pairs self": Case(NO_GPU.code, NO_GPU.says, skip=GPU),
    "mpirun -n 8 ncbench alltoall --backend cuda-mpi": Case(NO_GPU.code, NO_GPU.says, skip=GPU),
    "mpirun -n 8 ncbench alltoall --backend cuda-mpi --staged": Case(NO_GPU.code, NO_GPU.says, skip=GPU),
    "ncbench topo show topologies/colossus-1m-2plane.toml --gpus 1M": Case(0, "switches"),
    "ncbench fit results/runs/ --topology topologies/this-machine.toml --op allreduce,sendrecv --force": Case(
        0, "this-machine.fitted.toml"
    ),
    "ncbench predict --topology topologies/colossus-1m-4tier.toml --op allreduce --gpus 200k,400k,600k,800k,1M --bytes 8,1M,1G --algo auto --format json --out p.json": Case(
        0, '"op": "allreduce"'
    ),
    "ncbench predict --format csv --out results/predictions/default-sweep.csv --force": Case(
        0, "topology,op,algorithm"
    ),
    ".venv/bin/python scripts/extrapolate.py": Case(0, "median |error|"),
    ".venv/bin/python scripts/bench_predict.py": Case(0, "default sweep"),
    ".venv/bin/python scripts/bench_health_sim.py --trials 100": Case(
        0, "125,000", run=".venv/bin/python scripts/bench_health_sim.py --trials 1"
    ),
    ".venv/bin/python scripts/bench_report.py --repeat 3": Case(
        0, "median", run=".venv/bin/python scripts/bench_report.py --repeat 1"
    ),
}


def readme_commands(text: str) -> list[str]:
    """Return the commands README.md shows: ```bash lines (continuations joined) and `$ ` transcript lines."""
    commands = []
    for lang, body in re.findall(r"```(\w*)\n(.*?)```", text, re.DOTALL):
        lines = body.replace("\\\n", " ").splitlines()
        if lang != "bash":
            lines = [line[2:] for line in lines if line.startswith("$ ")]
        for line in lines:
            line = re.sub(r"\s+#(\s.*)?$", "", line).strip()  # a trailing comment (never `vm#1`)
            if line:
                commands.append(re.sub(r"\s+", " ", line))
    return commands


COMMANDS = readme_commands((ROOT / "README.md").read_text())


def test_every_readme_command_has_a_case():
    assert len(COMMANDS) == len(set(COMMANDS)), "a command shown twice: one row cannot tell them apart"
    assert set(COMMANDS) == set(CASES), {
        "new in README": set(COMMANDS) - set(CASES),
        "gone": set(CASES) - set(COMMANDS),
    }


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """A copy of the files git tracks, as the working tree has them, mtimes kept, sharing .venv.

    Untracked files stay out: they are what a newcomer's own runs of the README left behind (`p.json`, a new
    run in results/runs), and the README's commands must find a repository as a fresh clone has it.
    """
    if not (VENV / "bin" / "ncbench").exists():
        pytest.skip("needs the .venv that scripts/setup makes")
    where = tmp_path_factory.mktemp("readme") / "ncbench"
    listed = (
        subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    )
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (where / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, where / name)
    (where / ".venv").symlink_to(VENV)
    return where


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command(clone, command):
    case = CASES[command]
    if case.skip and SKIPS[case.skip]():  # skipped only while the reason holds; then it runs like any other
        pytest.skip(case.skip)
    if "| jq" in command and shutil.which("jq") is None:
        pytest.skip("needs jq (scripts/test installs Debian's jq)")
    env = {**os.environ, "PATH": f"{VENV / 'bin'}{os.pathsep}{os.environ['PATH']}", "VIRTUAL_ENV": str(VENV)}
    env.pop("NCBENCH_INJECT", None)
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", case.run or command],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=case.timeout_s,
        check=False,
    )
    output = done.stdout + done.stderr
    codes = case.code if isinstance(case.code, tuple) else (case.code,)
    assert done.returncode in codes, f"{command}: exit {done.returncode}\n{output[-3000:]}"
    assert case.says in output, f"{command}: no {case.says!r} in\n{output[-3000:]}"
    assert "Traceback" not in output, output[-3000:]
    if "ncbench health" in command and "history" not in command and "simulate" not in command:
        assert "FAIL (exit 2)" not in output and "scontrol update" not in output, output  # a clean machine
    print(f"{command}: exit {done.returncode}", file=sys.stderr)
