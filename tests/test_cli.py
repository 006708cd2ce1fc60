"""The command line without MPI: help works anywhere, usage errors exit 64, never a traceback."""

import subprocess
import sys


def ncbench(*args):
    return subprocess.run(
        [sys.executable, "-m", "ncbench", *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_help_needs_no_mpi():
    done = ncbench("--help")
    assert done.returncode == 0
    for command in ("allreduce", "allgather", "reducescatter", "broadcast", "reduce", "alltoall", "sendrecv", "p2p"):
        assert command in done.stdout
    assert ncbench("allreduce", "--help").returncode == 0
    assert "--maxbytes" in ncbench("allreduce", "-h").stdout


def test_version():
    assert ncbench("version").stdout.startswith("ncbench ")


def test_unknown_command_is_usage_error():
    done = ncbench("allreduse")
    assert done.returncode == 64 and "Traceback" not in done.stderr
