"""One measurement command on every rank: start MPI, agree, measure each --nodes step, keep every row.

argv -> MPI job (thread level chosen on purpose, arguments agreed) -> measure/p2p per node step
-> results/runs/<run_id>.csv + .json (rank 0) and the table on stdout -> exit code.
"""

import os
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from .. import ops, records
from ..errors import EXIT_FAIL, EXIT_OK, EXIT_USAGE, NcbenchError
from . import backends, sysinfo
from . import job as jobs

MEASURE_COMMANDS = (*ops.OPS, "p2p")  # ncbench.ops.OPS names the collectives, once
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

    caught = [
        s
        for s in (signal.SIGTERM, signal.SIGINT)
        if signal.getsignal(s) in (signal.SIG_DFL, signal.default_int_handler)
    ]
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
    timeout_s: float = 120.0  # -T: seconds before a rank that never arrives ends the run (exit 3); 0 = off
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
    provided = {
        MPI.THREAD_SINGLE: "single",
        MPI.THREAD_FUNNELED: "funneled",
        MPI.THREAD_SERIALIZED: "serialized",
        MPI.THREAD_MULTIPLE: "multiple",
    }
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


def preamble(
    label: str,
    sweep_text: str,
    members: list[int],
    job: jobs.Job,
    n: int,
    backend,
    pids: dict,
    devices: list | None = None,
) -> list[str]:
    """Return nccl-tests' preamble lines for one node step (version, sweep, one line per rank).

    `devices[i]` is member i's (CUDA device, bus id, model) on GPU backends; host ranks show their node.
    """
    from .. import __version__

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
    from . import harness
    from .backends import get

    comm = Started.comm
    backend_cls = get(sweep.backend)
    job = describe_job(comm, launch)
    steps = node_steps(launch, job)
    sweep = sweep.every_root(comm.size)
    harness.check_sweep(sweep, min(len(job.ranks_on(n)) for n in steps))
    sweep, left_out = carried_dtypes(sweep, backend_cls, comm.rank)
    options = collective_options(launch, sweep.backend)
    settings = {**asdict(sweep), "timeout_s": launch.timeout_s}  # the sidecar's settings keep the timeout
    need_bytes = harness.rank_bytes(sweep, ops.op(sweep.op), comm.size)
    extra_meta = {"dtypes_left_out": left_out} if left_out else {}
    run = open_run(
        launch,
        job,
        backend_cls,
        options,
        label=sweep.op,
        backend=sweep.backend,
        steps=steps,
        settings=settings,
        need_bytes=need_bytes,
        extra_meta=extra_meta,
    )
    Started.running = True
    for n in steps:
        sub = jobs.split_first_nodes(comm, job, n)
        if sub is not None:
            measure_step(run, sweep, sub, n)
        jobs.idle_until_all_arrive(comm)
    Started.running = False
    code = run.finish(wrong_rows=sum(1 for r in run.rows if (r.get("wrong") or 0) > 0))
    return comm.bcast(code, root=0)


def carried_dtypes(sweep, backend_cls, rank: int):
    """Return (sweep, {dtype: why left out}): -d all narrowed to what the backend carries, said on stderr.

    A dtype named on its own that the backend cannot carry is refused (nccl-tests drops fp8 from -d all likewise).
    """
    left_out = {}
    if sweep.dtypes == tuple(ops.DTYPES):
        reasons = {d: backend_cls.unsupported(ops.DTYPES[d]) for d in ops.DTYPES}
        left_out = {d: why for d, why in reasons.items() if why}
        sweep = replace(sweep, dtypes=tuple(d for d in ops.DTYPES if d not in left_out))
        if left_out and rank == 0:  # said, not silent: stderr, so a csv or json stdout stays clean
            print(
                f"ncbench: -d all on --backend {sweep.backend} leaves out {', '.join(left_out)}: "
                f"{next(iter(left_out.values()))}",
                file=sys.stderr,
                flush=True,
            )
    for name in sweep.dtypes:
        reason = backend_cls.unsupported(ops.dtype(name))
        if reason:
            raise NcbenchError(reason)
    return sweep, left_out


def collective_options(launch: Launch, backend: str) -> dict:
    """Return the backend options of a collective run, after refusing launch flags it cannot honour."""
    if launch.graph_launches < 0:
        raise NcbenchError(f"-G {launch.graph_launches}: the number of CUDA-graph launches must be 0 (off) or more")
    if launch.graph_launches and backend not in backends.supporting("graphs"):
        needs = " or ".join(backends.supporting("graphs"))
        raise NcbenchError(f"--graph (-G) captures NCCL launches in a CUDA graph; it needs --backend {needs}")
    if launch.staged and backend not in backends.supporting("staged"):
        needs = " or ".join(backends.supporting("staged"))
        raise NcbenchError(f"--staged copies GPU buffers through host memory; it needs --backend {needs}")
    if launch.timeout_s < 0:
        raise NcbenchError(f"--timeout {launch.timeout_s:g}: seconds must be >= 0 (0 turns it off)")
    return {
        "graph_launches": launch.graph_launches,
        "staged": launch.staged,
        "assume_cuda_aware": launch.assume_cuda_aware,
    }


@dataclass
class Run:
    """One measurement run once every rank agreed it can start: job, backend, results file, stdout, rows.

    `open_run` makes it the same way for collectives and p2p; `finish` records how it ended.
    """

    comm: Any
    launch: Launch
    job: jobs.Job
    backend_cls: type
    options: dict  # backend options: its constructor, unavailable and memory_problem take them
    injector: Any
    meta: dict  # the sidecar's metadata (complete on rank 0)
    writer: Any  # records.RunWriter on rank 0, None elsewhere
    watchdog: Any
    out: Any  # what stdout gets: table.Stdout
    rows: list[dict] = field(default_factory=list)  # every row kept (rank 0)
    communicators: list[dict] = field(default_factory=list)  # the sidecar's: one per backend communicator
    versions: dict = field(default_factory=dict)  # the backend libraries' versions (rank 0)

    def emit(self, row: dict, show: bool = True) -> None:
        """Keep a row (rank 0): into the results file and `rows`, and onto stdout if `show`."""
        row["run_id"] = self.writer.path.stem
        self.writer.append(row)
        self.rows.append(row)
        if show:
            self.out.add(row)

    def finish(self, **facts) -> int | None:
        """Record how the run ended, `facts` included, in the sidecar; return the exit code (rank 0, else None)."""
        if self.comm.rank != 0:
            return None
        code = exit_code(self.rows)
        summary = {"rows": len(self.rows), "findings": findings(self.rows), **facts}
        summary.update(communicators=self.communicators, backend_versions=self.versions)
        self.writer.finish(status=records.ending(code), exit_code=code, **summary)
        return code


def open_run(
    launch: Launch,
    job: jobs.Job,
    backend_cls,
    options: dict,
    *,
    label: str,
    backend: str,
    steps: tuple[int, ...],
    settings: dict,
    need_bytes: int,
    can_stage: bool = True,
    extra_meta: dict | None = None,
) -> Run:
    """Agree the backend can run and the buffers fit, then open the results file: what every command does first.

    `label` names the command in the sidecar (and with `backend`, the run id); `need_bytes` is the most
    memory one rank allocates; `can_stage`: the command offers --staged; `extra_meta` joins the sidecar.
    """
    from .guard import Watchdog
    from .inject import from_env
    from .table import Stdout

    comm = Started.comm
    agree(comm, backend_cls.unavailable(can_stage=can_stage, **options))  # every rank fails the same way, or none
    injector = from_env(os.environ, comm.rank)
    agree(comm, backend_cls.memory_problem(need_bytes, list(job.hosts), comm.rank, **options))
    meta = metadata(comm, job, label, backend_cls, settings, steps)
    if comm.rank == 0:
        meta.update(extra_meta or {})
    writer = open_writer(comm, launch, meta, f"{label}-{backend}")
    watchdog = Watchdog(f"rank {comm.rank} on {job.hosts[comm.rank]}", launch.timeout_s)
    out = Stdout(launch.fmt, list(records.RESULT_COLUMNS))
    return Run(comm, launch, job, backend_cls, options, injector, meta, writer, watchdog, out)


def measure_step(run: Run, sweep, sub, n: int) -> None:
    """Measure `sweep` on `sub`, the communicator of the first `n` nodes; keep its rows and communicator in `run`."""
    from mpi4py import MPI

    from . import harness
    from .guard import Guard

    comm, job, launch = run.comm, run.job, run.launch
    members = job.ranks_on(n)
    backend = run.backend_cls(sub, hosts=[job.hosts[r] for r in members], **run.options)
    init_s = sub.allreduce(backend.init_s, op=MPI.MAX)  # ready when the slowest rank is
    step = {"nnodes": n, "nranks": sub.size, "backend": backend.name, "init_s": init_s}
    run.communicators.append(step)
    run.watchdog.on_fire = [backend.abort]
    if comm.rank == 0 and not run.versions:  # only rank 0 writes the sidecar
        run.versions = backend.versions()
    guard = Guard(
        sub,
        comm,
        members,
        [job.hosts[r] for r in members],
        timeout_s=launch.timeout_s,
        watchdog=run.watchdog,
        injector=run.injector,
    )
    ctx = harness.Context(sub, backend, guard, run.injector, members, guard.hosts, n, job.ranks_per_node(n))
    devices = sub.gather(backend.describe_device(), root=0)
    if comm.rank == 0 and any(devices):  # which GPU every rank used: a mixed node shows here
        step["devices"] = [
            {"rank": r, "host": job.hosts[r], "device": d[0], "pci_bus_id": d[1], "model": d[2]}
            for r, d in zip(members, devices, strict=True)
        ]
    if comm.rank == 0:
        pids = {p["rank"]: p["pid"] for p in run.meta["processes"]}
        lines = preamble(sweep.op, sweep_line(sweep, launch.graph_launches), members, job, n, backend, pids, devices)
        lines.append(f"# Timing: {TIMING[backend.timing]}")
        if backend.init_s:
            lines.append(f"# {backend.name} communicator of {sub.size} ranks created in {init_s:.3f} s")
        run.out.begin(lines)
    harness.run(sweep, ctx, run.emit)
    backend.close()
    run.watchdog.on_fire = []
    if comm.rank == 0:
        run.out.end(sweep.op, findings(run.out.rows) + [f"# Results: {run.writer.path}"])
    guard.free()
    sub.Free()


def run_p2p(sweep, launch: Launch) -> int:
    """Measure the OSU trio between the chosen rank pairs; return the exit code (same on every rank)."""
    from mpi4py import MPI

    from . import p2p
    from .backends import get
    from .guard import Guard
    from .table import P2P_HEADER

    comm = Started.comm
    job = describe_job(comm, launch)
    p2p.check_pair_sweep(sweep, comm.size)
    schedule = p2p.rounds(p2p.pairs_for(sweep.pairs, job.node_of), sweep.concurrent)
    backend_cls = get(sweep.backend)
    options = {"assume_cuda_aware": launch.assume_cuda_aware}
    run = open_run(
        launch,
        job,
        backend_cls,
        options,
        label="p2p",
        backend=sweep.backend,
        steps=(job.nnodes,),
        settings=asdict(sweep),
        need_bytes=2 * sweep.max_bytes,
        can_stage=False,
    )
    guard = Guard(
        comm,
        comm,
        list(range(comm.size)),
        list(job.hosts),
        timeout_s=launch.timeout_s,
        watchdog=run.watchdog,
        injector=run.injector,
    )
    Started.running = True
    backend = backend_cls(comm, hosts=list(job.hosts), **run.options)  # one communicator serves every pair
    init_s = comm.allreduce(backend.init_s, op=MPI.MAX)
    run.watchdog.on_fire = [backend.abort]
    run.versions = backend.versions() if comm.rank == 0 else {}
    devices = comm.gather(backend.describe_device(), root=0)
    if comm.rank == 0:
        run.out.begin(p2p_preamble(sweep, job, backend, devices, init_s, comm.size), collective=False)
        run.out.say(P2P_HEADER)
    for i, members in enumerate(schedule):
        measure_round(run, sweep, guard, backend, members, f"p2p round {i + 1} of {len(schedule)}")
    backend.close()
    run.watchdog.on_fire = []
    Started.running = False
    if comm.rank == 0:
        run.out.say(f"# Results: {run.writer.path}")
    run.communicators.append({"nnodes": job.nnodes, "nranks": comm.size, "backend": backend.name, "init_s": init_s})
    code = run.finish()
    guard.free()
    return comm.bcast(code, root=0)


def p2p_preamble(sweep, job: jobs.Job, backend, devices: list, init_s: float, nranks: int) -> list[str]:
    """Return the p2p run's '#' lines: what is timed how, which device every rank uses, the communicator."""
    order = "concurrently in disjoint rounds" if sweep.concurrent else "one pair at a time"
    title = (
        f"# ncbench p2p on {sweep.backend} (timing: {backend.timing}): latency = half the round trip; "
        f"bw/bibw with windows of {sweep.window} messages; pairs: {sweep.pairs}, {order}; thread-level {Started.level}"
    )
    lines = [title] + [f"#  Rank {r:2d} on {job.hosts[r]:>10} {device_text(d)}" for r, d in enumerate(devices) if d]
    if backend.init_s:
        lines.append(f"# {backend.name} communicator of {nranks} ranks created in {init_s:.3f} s")
    if sweep.pairs == "self" and "bibw" in sweep.tests:
        lines.append("# a rank paired with itself has one direction only: no bibw")
    return lines


def measure_round(run: Run, sweep, guard, backend, members: list[tuple[int, int]], what: str) -> None:
    """Measure one round of disjoint pairs, each on its own 2-rank communicator; keep the rows on rank 0."""
    from mpi4py import MPI

    from . import p2p
    from .table import p2p_lines

    comm = run.comm
    guard.checkpoint(what)
    mine = next((pair for pair in members if comm.rank in pair), None)
    pc = comm.Split(members.index(mine) if mine else MPI.UNDEFINED, comm.rank)
    rows = p2p.measure_pair(sweep, pc, mine, run.injector, run.watchdog, run.job, backend) if mine else []
    if mine:
        pc.Free()
    jobs.idle_until_all_arrive(comm)
    gathered = comm.gather(rows, root=0)
    if comm.rank == 0:
        round_rows = [row for part in gathered for row in part]
        for row in round_rows:
            run.emit(row, show=run.launch.fmt != "table")  # the table shows a round as OSU lines, below
        for line in p2p_lines(round_rows, list(run.job.hosts)):
            run.out.say(line)
