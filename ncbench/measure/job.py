"""The MPI job: start MPI at a chosen thread level, find hosts and nodes, agree on arguments.

environment + argv -> (comm, Job); Job -> sub-communicators spanning the first N nodes.
"""

from dataclasses import dataclass

from ..errors import EXIT_USAGE, NcbenchError

THREAD_LEVELS = ("single", "funneled", "serialized", "multiple")
# Launchers say how many ranks share this node before MPI starts (the thread level must be
# chosen before MPI_Init): MPICH hydra, Open MPI, MVAPICH, Intel MPI / PMI, Cray PALS.
LOCAL_SIZE_VARS = (
    "MPI_LOCALNRANKS",
    "OMPI_COMM_WORLD_LOCAL_SIZE",
    "MV2_COMM_WORLD_LOCAL_SIZE",
    "PMI_LOCAL_SIZE",
    "MPI_LOCALNPROCS",
    "PALS_LOCAL_SIZE",
)


def local_size_from_env(environ: dict) -> int | None:
    """Return the number of ranks on this node as the launcher announced it, if it did."""
    for name in LOCAL_SIZE_VARS:
        value = environ.get(name, "")
        if value.isdigit():
            return int(value)
    return None


def choose_thread_level(requested: str, environ: dict, cores: int) -> tuple[str, str]:
    """Return (level, reason): funneled unless the node is oversubscribed (then multiple)."""
    if requested != "auto":
        if requested not in THREAD_LEVELS:
            raise NcbenchError(f"thread level {requested!r} is not one of auto, {', '.join(THREAD_LEVELS)}")
        return requested, "requested with --thread-level"
    local = local_size_from_env(environ)
    if local is not None and local > cores:
        # measured on MPICH: 4 ranks on 2 cores took 8 ms per 8 B allreduce at single/funneled
        # (ranks busy-poll through whole scheduler slices) and 18 us at multiple, which yields
        return "multiple", f"{local} ranks share {cores} cores; funneled busy-polling would take ms per op"
    # mpi4py's default, multiple, was measured 4-7x slower for small MPICH allreduce
    return "funneled", "funneled: multiple costs 4-7x on small messages (measured with MPICH; docs/methodology.md)"


def start_mpi(level: str):
    """Initialise MPI at `level` and return MPI.COMM_WORLD."""
    import mpi4py

    mpi4py.rc.thread_level = level
    from mpi4py import MPI

    return MPI.COMM_WORLD


@dataclass(frozen=True)
class Job:
    """Who is where: one entry per rank of the communicator it was built from."""

    hosts: tuple[str, ...]
    node_of: tuple[int, ...]  # node index of each rank, nodes numbered in order of their lowest rank
    emulated: bool  # nodes stand in for hosts (--ranks-per-node on fewer hosts)

    @property
    def nnodes(self) -> int:
        return max(self.node_of) + 1

    def ranks_on(self, first_nodes: int) -> list[int]:
        """Return the ranks that live on the first `first_nodes` nodes."""
        return [r for r, node in enumerate(self.node_of) if node < first_nodes]

    def ranks_per_node(self, first_nodes: int | None = None) -> int:
        """Return ranks per node, or -1 when nodes hold different numbers of ranks."""
        n = self.nnodes if first_nodes is None else first_nodes
        counts = {self.node_of.count(node) for node in range(n)}
        return counts.pop() if len(counts) == 1 else -1


def describe(hosts: list[str], ranks_per_node: int | None) -> Job:
    """Return the Job for these per-rank host names; `ranks_per_node` makes blocks of ranks nodes."""
    if ranks_per_node is not None:
        if ranks_per_node < 1:
            raise NcbenchError(f"--ranks-per-node must be at least 1, not {ranks_per_node}")
        if len(hosts) % ranks_per_node:
            raise NcbenchError(f"--ranks-per-node {ranks_per_node} does not divide the {len(hosts)} ranks of this job")
        node_of = tuple(r // ranks_per_node for r in range(len(hosts)))
        return Job(tuple(hosts), node_of, emulated=len(set(hosts)) < max(node_of) + 1)
    order: dict[str, int] = {}
    for host in hosts:
        order.setdefault(host, len(order))
    return Job(tuple(hosts), tuple(order[h] for h in hosts), emulated=False)


def check_same_args(comm, argv: list[str]) -> None:
    """Raise NcbenchError on every rank if any rank was started with other arguments than rank 0."""
    everyone = comm.allgather(list(argv))
    odd = [r for r, args in enumerate(everyone) if args != everyone[0]]
    if odd:
        shown = ", ".join(f"rank {r}: {' '.join(everyone[r])!r}" for r in odd[:4])
        more = f" and {len(odd) - 4} more" if len(odd) > 4 else ""
        raise NcbenchError(
            f"ranks were launched with different arguments: rank 0 has {' '.join(everyone[0])!r} but "
            f"{shown}{more}; launch every rank with the same command",
            EXIT_USAGE,
        )


def split_first_nodes(comm, job: Job, nnodes: int):
    """Return a communicator of the ranks on the first `nnodes` nodes (None on the other ranks)."""
    from mpi4py import MPI

    member = job.node_of[comm.rank] < nnodes
    sub = comm.Split(0 if member else MPI.UNDEFINED, comm.rank)
    return sub if member else None


def idle_until_all_arrive(comm, poll_s: float = 1e-3) -> None:
    """Wait at a barrier without busy-polling, so idle ranks leave the cores to those measuring."""
    import time

    request = comm.Ibarrier()
    while not request.Test():
        time.sleep(poll_s)


def hostname() -> str:
    """Return this rank's host name as MPI reports it."""
    from mpi4py import MPI

    return MPI.Get_processor_name()
