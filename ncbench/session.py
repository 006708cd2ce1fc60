"""One measurement command on every rank: start MPI, agree, measure each --nodes step, keep every row.

argv -> MPI job (thread level chosen on purpose, arguments agreed) -> measure/p2p per node step
-> results/runs/<run_id>.csv + .json (rank 0) and the table on stdout -> exit code.
"""

import os
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from . import job as jobs
from . import records, sysinfo
from .errors import EXIT_FAIL, EXIT_OK, EXIT_USAGE, NcbenchError

MEASURE_COMMANDS = ("allreduce", "allgather", "reducescatter", "broadcast", "reduce", "alltoall", "sendrecv", "p2p")
SLOWEST_SHARE = 0.25  # the summary names a slow rank only if it was late in this share of measurements


def needs_mpi(argv: list[str]) -> bool:
    """Return whether this command line runs under MPI (measurements and the health run, not its planning)."""
    if not argv or {"-h", "--help"} & set(argv):
        return False
    if argv[0] == "health":
        return not any(a in ("simulate", "history") for a in argv[1:])
    return argv[0] in MEASURE_COMMANDS


class Started:
    """The MPI side of this process once `start` ran (module state: one MPI job per process)."""

    comm = None
    level = ""
    reason = ""
    running = False  # True once ranks may be inside collectives: errors then abort the job


def thread_level_arg(argv: list[str]) -> str:
    """Return the --thread-level value from argv before Typer parses it (MPI must start first)."""
    for i, arg in enumerate(argv):
        if arg == "--thread-level" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--thread-level="):
            return arg.split("=", 1)[1]
    return os.environ.get("NCBENCH_THREAD_LEVEL", "auto")


def start(argv: list[str]):
    """Start MPI at a chosen thread level and check every rank got the same arguments."""
    level, reason = jobs.choose_thread_level(thread_level_arg(argv), os.environ, os.cpu_count() or 1)
    comm = jobs.start_mpi(level)
    Started.comm, Started.level, Started.reason = comm, level, reason
    jobs.check_same_args(comm, argv)
    _record_termination()
    return comm


def _record_termination() -> None:
    """On SIGTERM or SIGINT (scancel, a Slurm time limit, Ctrl-C), mark open runs `aborted` and exit 128 + signal.

    A Python handler runs only when the main thread leaves MPI, and by then the launcher has killed this rank
    (another rank died of the same signal at once): so the C-level handler's wakeup byte wakes a thread that
    acts at once, and a rank with no open run gives rank 0 a moment to write before it exits.
    """
    import signal
    import threading
    import time

    caught = [s for s in (signal.SIGTERM, signal.SIGINT) if signal.getsignal(s) in (signal.SIG_DFL, signal.default_int_handler)]
    if not caught or threading.current_thread() is not threading.main_thread():
        return
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    for sig in caught:
        signal.signal(sig, lambda *_: None)  # the thread below does the work; the main thread carries on until then
    signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)

    def watch() -> None:
        signum = os.read(read_end, 1)[0]
        if not records.end_open_runs(128 + signum, f"ended by {signal.Signals(signum).name}"):
            time.sleep(0.3)  # no run of ours here: let rank 0 write its sidecar before the launcher reacts
        sys.stdout.flush()
        os._exit(128 + signum)

    threading.Thread(target=watch, name="ncbench-signals", daemon=True).start()


@dataclass(frozen=True)
class Launch:
    """How to run a measurement, beyond what to measure."""

    nodes: tuple[int, ...] | None = None  # node counts to measure on; None: every node once
    ranks_per_node: int | None = None  # make blocks of this many ranks stand in for nodes
    out: Path | None = None  # results CSV; default results/runs/<run_id>.csv
    force: bool = False  # --force: replace an existing --out (and its sidecar) instead of refusing
    fmt: str = "table"  # what stdout gets: table | csv | json
    timeout_s: float = 120.0
    graph_launches: int = 0  # GPU: capture a sample's operations in a CUDA graph, launch it N times (nccl-tests -G N)
    staged: bool = False  # cuda-mpi: copy through host memory when MPI is not CUDA-aware
    assume_cuda_aware: bool = False  # cuda-mpi: trust the library where it cannot say


def agree(comm, error: "str | NcbenchError | None") -> None:
    """Raise the same NcbenchError, with its exit code, on every rank if any rank found one (rank order decides).

    `error` is a sentence (exit 64) or an NcbenchError (its own code), or None where this rank found nothing.
    """
    found = (str(error), error.exit_code) if isinstance(error, NcbenchError) else (error, EXIT_USAGE) if error else None
    first = next((f for f in comm.allgather(found) if f), None)
    if first:
        raise NcbenchError(*first)


def node_steps(launch: Launch, job: jobs.Job) -> tuple[int, ...]:
    """Return the node counts to measure, after checking the job has that many nodes."""
    steps = launch.nodes or (job.nnodes,)
    too_many = [n for n in steps if n > job.nnodes or n < 1]
    if too_many:
        hosts = ", ".join(dict.fromkeys(job.hosts))
        raise NcbenchError(
            f"--nodes {','.join(map(str, steps))}: this job has {job.nnodes} node(s) ({hosts}); "
            f"ask for 1-{job.nnodes}, or use --ranks-per-node so ranks stand in for nodes"
        )
    return tuple(steps)


def describe_job(comm, launch: Launch) -> jobs.Job:
    hosts = comm.allgather(jobs.hostname())
    return jobs.describe(hosts, launch.ranks_per_node)


def metadata(comm, job: jobs.Job, label: str, backend_cls, settings: dict, steps) -> dict:
    """Return the run's sidecar metadata (gathers every rank's process info; complete on rank 0)."""
    from mpi4py import MPI

    processes = comm.gather({"rank": comm.rank, **sysinfo.process_info()}, root=0)
    if comm.rank != 0:
        return {}
    provided = {MPI.THREAD_SINGLE: "single", MPI.THREAD_FUNNELED: "funneled",
                MPI.THREAD_SERIALIZED: "serialized", MPI.THREAD_MULTIPLE: "multiple"}  # fmt: skip
    cores = os.cpu_count() or 1
    rpn = job.ranks_per_node()
    return {
        "date": records.now_iso(),
        "argv": [os.path.basename(sys.argv[0]), *sys.argv[1:]],
        "command": label,
        "settings": settings,
        "nranks": comm.size,
        "hosts": list(dict.fromkeys(job.hosts)),
        "nnodes": job.nnodes,
        "ranks_per_node": rpn,
        "nodes_emulated": job.emulated,
        "node_steps": list(steps),
        "mpi_thread_level": {
            "requested": Started.level,
            "provided": provided.get(MPI.Query_thread(), "?"),
            "reason": Started.reason,
        },
        "time_reduction": (
            "max over ranks per sample, then mean over samples (time_us); percentiles over samples of the per-sample max"
        ),
        "buffers": {"allocation": getattr(backend_cls, "allocation", ""), "alignment_bytes": 2 << 20},
        "oversubscribed": rpn > cores,
        "machine": sysinfo.machine(),
        "processes": processes,
        "versions": sysinfo.versions(MPI),
        "env": sysinfo.recorded_env(os.environ),
    }


def open_writer(comm, launch: Launch, meta: dict, label: str):
    """Create the results file on rank 0; every rank raises the same error if that fails."""
    writer, error = None, None
    if comm.rank == 0:
        run_id = records.new_run_id(meta["hosts"][0], label)
        path = launch.out or records.RUNS_DIR / f"{run_id}.csv"
        try:
            writer = records.RunWriter(Path(path), {"run_id": Path(path).stem, **meta}, force=launch.force)
        except NcbenchError as err:
            error = str(err)
    agree(comm, error)
    return writer


def exit_code(rows: list[dict]) -> int:
    """Return 2 (a failed check) if any row has wrong data, else 0."""
    return EXIT_FAIL if any((r.get("wrong") or 0) > 0 for r in rows) else EXIT_OK


def preamble(label: str, sweep_text: str, members: list[int], job: jobs.Job, n: int, backend, pids: dict,
             devices: list | None = None) -> list[str]:
    """Return nccl-tests' preamble lines for one node step (version, sweep, one line per rank).

    `devices[i]` is member i's (CUDA device, bus id, model) on GPU backends; host ranks show their node.
    """
    from . import __version__

    lines = [
        f"# ncbench version {__version__} backend {backend.name} thread-level {Started.level}",
        f"# Collective test starting: {label}",
        sweep_text,
        "#",
        f"# Using devices (nodes: {n}{' emulated' if job.emulated else ''}, ranks: {len(members)})",
    ]
    for i, world_rank in enumerate(members):
        device = devices[i] if devices else None
        where = (
            f"{device_text(device)} [node {job.node_of[world_rank]}]"
            if device
            else f"device {job.node_of[world_rank]:2d} [node {job.node_of[world_rank]}] {backend.timing} buffers"
        )
        lines.append(f"#  Rank {i:2d} Group  0 Pid {pids.get(world_rank, 0):6d} on {job.hosts[world_rank]:>10} {where}")
    return lines


def device_text(device: tuple[int, str, str]) -> str:
    """Return nccl-tests' 'device N [bus id] model' for a rank's (CUDA device, bus id, model)."""
    return f"device {device[0]:2d} [{device[1]}] {device[2]}"


def sweep_line(sweep, graph_launches: int = 0) -> str:
    iters = sweep.iters if sweep.iters is not None else f"auto({sweep.time_budget_s:g}s)"
    step = f"{sweep.step_factor:g}(factor)" if sweep.step_factor > 1 else f"{sweep.step_bytes}(bytes)"
    return (
        f"# nThread 1 nGpus 1 minBytes {sweep.min_bytes} maxBytes {sweep.max_bytes} step: {step} "
        f"warmup iters: {sweep.warmup} iters: {iters} agg iters: 1 validation: {sweep.check} graph: {graph_launches} "
        f"samples: {sweep.samples}"
    )


def findings(rows: list[dict]) -> list[str]:
    """Return '#' lines naming late ranks and the sources of wrong data, for the table's end."""
    notes = []
    late: dict[tuple[int, str], list[float]] = {}
    for r in rows:
        if r.get("slowest_rank", -1) >= 0:
            late.setdefault((r["slowest_rank"], r["slowest_host"]), []).append(r["lateness_us"])
    for (rank, host), lateness in sorted(late.items(), key=lambda kv: -len(kv[1])):
        if len(lateness) < SLOWEST_SHARE * len(rows):
            continue  # late in a few sizes only: scheduler noise, not a slow rank (each row still says so)
        median = sorted(lateness)[len(lateness) // 2]
        notes.append(
            f"# Slowest rank: {rank} ({host}) arrived last in {len(lateness)} of {len(rows)} measurements, "
            f"by a median of {median:.1f} us"
        )
    wrong = [r for r in rows if (r.get("wrong") or 0) > 0]
    if wrong:
        sources = sorted({s for r in wrong for s in r["wrong_sources"].split(";") if s})
        notes.append(
            f"# Wrong data in {len(wrong)} of {len(rows)} measurements; it came from rank(s) "
            f"{', '.join(sources) or '? (not isolated)'}"
        )
    return notes


TIMING = {
    "host": "host wall clock (MPI_Wtime) around back-to-back operations; MPI calls on host memory are synchronous",
    "host+events": "host wall clock around back-to-back launches, stream synchronised (nccl-tests); "
    "device time from CUDA events per sample in device_time_us",
    "graph": "each sample launches a CUDA graph of the timed operations -G times (nccl-tests -G); "
    "host time / operations, device time from CUDA events",
    "host, CUDA-aware MPI": "host wall clock around back-to-back MPI calls on device buffers (CUDA-aware MPI)",
    "host, staged through host memory": "host wall clock; every operation copies device -> host, runs MPI on "
    "host buffers, copies host -> device (staged, not CUDA-aware)",
}


def run_collective(sweep, launch: Launch) -> int:
    """Measure `sweep` on every --nodes step; return the exit code (the same on every rank)."""
    from mpi4py import MPI

    from . import measure, ops
    from .backends import get
    from .guard import Guard, Watchdog
    from .inject import from_env
    from .table import Stdout

    comm = Started.comm
    backend_cls = get(sweep.backend)
    job = describe_job(comm, launch)
    steps = node_steps(launch, job)
    measure.check_sweep(sweep, min(len(job.ranks_on(n)) for n in steps))
    left_out = {}
    if sweep.dtypes == tuple(ops.DTYPES):  # -d all: what this backend can carry (nccl-tests drops fp8 likewise)
        reasons = {d: backend_cls.unsupported(ops.DTYPES[d]) for d in ops.DTYPES}
        left_out = {d: why for d, why in reasons.items() if why}
        sweep = replace(sweep, dtypes=tuple(d for d in ops.DTYPES if d not in left_out))
        if left_out and comm.rank == 0:  # said, not silent: stderr, so a csv or json stdout stays clean
            print(f"ncbench: -d all on --backend {sweep.backend} leaves out {', '.join(left_out)}: "
                  f"{next(iter(left_out.values()))}", file=sys.stderr, flush=True)  # fmt: skip
    for name in sweep.dtypes:
        reason = backend_cls.unsupported(ops.dtype(name))
        if reason:
            raise NcbenchError(reason)
    options = {"graph_launches": launch.graph_launches, "staged": launch.staged,
               "assume_cuda_aware": launch.assume_cuda_aware}  # fmt: skip
    if launch.graph_launches < 0:
        raise NcbenchError(f"-G {launch.graph_launches}: the number of CUDA-graph launches must be 0 (off) or more")
    if launch.graph_launches and sweep.backend != "nccl":
        raise NcbenchError("--graph (-G) captures NCCL launches in a CUDA graph; it needs --backend nccl")
    if launch.staged and sweep.backend != "cuda-mpi":
        raise NcbenchError("--staged copies GPU buffers through host memory; it needs --backend cuda-mpi")
    agree(comm, backend_cls.unavailable(**options))  # every rank fails the same way, or none does
    injector = from_env(os.environ, comm.rank)
    operation = ops.op(sweep.op)
    need = measure.rank_bytes(sweep, operation, comm.size)
    agree(comm, backend_cls.memory_problem(need, list(job.hosts), comm.rank, **options))
    meta = metadata(comm, job, sweep.op, backend_cls, asdict(sweep), steps)
    if comm.rank == 0 and left_out:
        meta["dtypes_left_out"] = left_out
    writer = open_writer(comm, launch, meta, f"{sweep.op}-{sweep.backend}")
    watchdog = Watchdog(f"rank {comm.rank} on {job.hosts[comm.rank]}", launch.timeout_s)
    out = Stdout(launch.fmt, list(records.RESULT_COLUMNS))
    all_rows: list[dict] = []
    communicators: list[dict] = []
    versions: dict = {}

    def emit(row: dict) -> None:
        row["run_id"] = writer.path.stem
        writer.append(row)
        all_rows.append(row)
        out.add(row)

    Started.running = True
    for n in steps:
        sub = jobs.split_first_nodes(comm, job, n)
        if sub is not None:
            members = job.ranks_on(n)
            backend = backend_cls(sub, hosts=[job.hosts[r] for r in members], **options)
            init_s = sub.allreduce(backend.init_s, op=MPI.MAX)  # ready when the slowest rank is
            step = {"nnodes": n, "nranks": sub.size, "backend": backend.name, "init_s": init_s}
            communicators.append(step)
            watchdog.on_fire = [backend.abort]
            if comm.rank == 0 and not versions:  # only rank 0 writes the sidecar
                versions = backend.versions()
            guard = Guard(sub, comm, members, [job.hosts[r] for r in members],
                          timeout_s=launch.timeout_s, watchdog=watchdog, injector=injector)  # fmt: skip
            ctx = measure.Context(sub, backend, guard, injector, members, guard.hosts, n, job.ranks_per_node(n))
            devices = sub.gather(backend.describe_device(), root=0)
            if comm.rank == 0 and any(devices):  # which GPU every rank used: a mixed node shows here
                step["devices"] = [{"rank": r, "host": job.hosts[r], "device": d[0], "pci_bus_id": d[1], "model": d[2]}
                                   for r, d in zip(members, devices, strict=True)]  # fmt: skip
            if comm.rank == 0:
                pids = {p["rank"]: p["pid"] for p in meta["processes"]}
                lines = preamble(sweep.op, sweep_line(sweep, launch.graph_launches), members, job, n, backend, pids, devices)
                lines.append(f"# Timing: {TIMING[backend.timing]}")
                if backend.init_s:
                    lines.append(f"# {backend.name} communicator of {sub.size} ranks created in {init_s:.3f} s")
                out.begin(lines)
            measure.run(sweep, ctx, emit)
            backend.close()
            watchdog.on_fire = []
            if comm.rank == 0:
                out.end(sweep.op, findings(out.rows) + [f"# Results: {writer.path}"])
            guard.free()
            sub.Free()
        jobs.idle_until_all_arrive(comm)
    Started.running = False
    code = exit_code(all_rows) if comm.rank == 0 else None
    if comm.rank == 0:
        writer.finish(status=records.ending(code), rows=len(all_rows), exit_code=code, findings=findings(all_rows),
                      wrong_rows=sum(1 for r in all_rows if (r.get("wrong") or 0) > 0),
                      communicators=communicators, backend_versions=versions)  # fmt: skip
    return comm.bcast(code, root=0)


def run_p2p(sweep, launch: Launch) -> int:
    """Measure the OSU trio between the chosen rank pairs; return the exit code (same on every rank)."""
    from mpi4py import MPI

    from . import p2p
    from .backends import get
    from .guard import Guard, Watchdog
    from .inject import from_env
    from .table import P2P_HEADER, Stdout, p2p_lines

    comm = Started.comm
    job = describe_job(comm, launch)
    p2p.check_pair_sweep(sweep, comm.size)
    schedule = p2p.rounds(p2p.pairs_for(sweep.pairs, job.node_of), sweep.concurrent)
    backend_cls = get(sweep.backend)
    options = {"assume_cuda_aware": launch.assume_cuda_aware}
    agree(comm, backend_cls.unavailable(can_stage=False, **options))
    agree(comm, backend_cls.memory_problem(2 * sweep.max_bytes, list(job.hosts), comm.rank, **options))
    injector = from_env(os.environ, comm.rank)
    meta = metadata(comm, job, "p2p", backend_cls, asdict(sweep), (job.nnodes,))
    writer = open_writer(comm, launch, meta, f"p2p-{sweep.backend}")
    watchdog = Watchdog(f"rank {comm.rank} on {job.hosts[comm.rank]}", launch.timeout_s)
    guard = Guard(comm, comm, list(range(comm.size)), list(job.hosts),
                  timeout_s=launch.timeout_s, watchdog=watchdog, injector=injector)  # fmt: skip
    out = Stdout(launch.fmt, list(records.RESULT_COLUMNS))
    all_rows: list[dict] = []
    Started.running = True
    backend = backend_cls(comm, hosts=list(job.hosts), **options)  # one communicator serves every pair
    init_s = comm.allreduce(backend.init_s, op=MPI.MAX)
    watchdog.on_fire = [backend.abort]
    versions = backend.versions() if comm.rank == 0 else {}
    devices = comm.gather(backend.describe_device(), root=0)
    if comm.rank == 0:
        order = "concurrently in disjoint rounds" if sweep.concurrent else "one pair at a time"
        title = (
            f"# ncbench p2p on {sweep.backend} (timing: {backend.timing}): latency = half the round trip; "
            f"bw/bibw with windows of {sweep.window} messages; pairs: {sweep.pairs}, {order}; thread-level {Started.level}"
        )
        lines = [title] + [f"#  Rank {r:2d} on {job.hosts[r]:>10} {device_text(d)}" for r, d in enumerate(devices) if d]
        if backend.init_s:
            lines.append(f"# {backend.name} communicator of {comm.size} ranks created in {init_s:.3f} s")
        if sweep.pairs == "self" and "bibw" in sweep.tests:
            lines.append("# a rank paired with itself has one direction only: no bibw")
        out.begin(lines, collective=False)
        out.say(P2P_HEADER)
    for i, members in enumerate(schedule):
        guard.checkpoint(f"p2p round {i + 1} of {len(schedule)}")
        mine = next((pair for pair in members if comm.rank in pair), None)
        pc = comm.Split(members.index(mine) if mine else MPI.UNDEFINED, comm.rank)
        rows = p2p.measure_pair(sweep, pc, mine, injector, watchdog, job, backend) if mine else []
        if mine:
            pc.Free()
        jobs.idle_until_all_arrive(comm)
        gathered = comm.gather(rows, root=0)
        if comm.rank == 0:
            round_rows = [row for part in gathered for row in part]
            for row in round_rows:
                row["run_id"] = writer.path.stem
                writer.append(row)
                if launch.fmt != "table":
                    out.add(row)
            all_rows += round_rows
            for line in p2p_lines(round_rows, list(job.hosts)):
                out.say(line)
    backend.close()
    watchdog.on_fire = []
    Started.running = False
    code = exit_code(all_rows) if comm.rank == 0 else None
    if comm.rank == 0:
        out.say(f"# Results: {writer.path}")
        communicators = [{"nnodes": job.nnodes, "nranks": comm.size, "backend": backend.name, "init_s": init_s}]
        writer.finish(status=records.ending(code), rows=len(all_rows), exit_code=code, findings=findings(all_rows),
                      communicators=communicators, backend_versions=versions)  # fmt: skip
    guard.free()
    return comm.bcast(code, root=0)
