"""The `ncbench` command: flags -> one library call -> exit code.

Measurement commands start MPI before parsing (the thread level is chosen first, and every rank's
arguments are compared); NcbenchError becomes one line and its exit code, in one place (`main`).
"""

import sys
from pathlib import Path
from typing import Annotated

import typer

from . import __version__, ops
from .errors import EXIT_SOFTWARE, EXIT_USAGE, NcbenchError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Measure collective communication (nccl-tests compatible), check fabric health, predict scale.",
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)

COLLECTIVES = tuple(ops.OPS)  # one command per collective, in ncbench.ops.OPS's order
DEFAULT_MAX = "32M"


# Flags shared by every measurement command, declared once (nccl-tests' short names where they exist).
MinBytes = Annotated[str, typer.Option("-b", "--minbytes", help="Smallest size: bytes or K/M/G (binary).")]
MaxBytes = Annotated[str, typer.Option("-e", "--maxbytes", help="Largest size: bytes or K/M/G.")]
StepFactor = Annotated[float, typer.Option("-f", "--stepfactor", help="Multiply the size by this (> 1).")]
Iters = Annotated[int, typer.Option("-n", "--iters", help="Operations per sample (default: fit --time-budget).")]
Warmup = Annotated[int, typer.Option("-w", "--warmup-iters", "--warmup_iters", help="Warm-up operations per size.")]
Check = Annotated[int, typer.Option("-c", "--check", help="Checked operations per size; 0 turns validation off.")]
Timeout = Annotated[
    float,
    typer.Option("-T", "--timeout", help="Seconds before a rank that never arrives ends the run (exit 3); 0 = off."),
]
RanksPerNode = Annotated[
    int, typer.Option("--ranks-per-node", help="Let blocks of this many ranks stand in for nodes.")
]
TimeBudget = Annotated[
    float, typer.Option("--time-budget", help="Seconds per size (and placement or test) that calibrate -n.")
]
Samples = Annotated[int, typer.Option("--samples", help="Timed samples per size (statistics are over these).")]
Out = Annotated[
    Path | None,
    typer.Option("--out", help="Results CSV (default results/runs/<run_id>.csv); never overwritten without --force."),
]
Force = Annotated[
    bool,
    typer.Option("--force", help="Replace an existing --out instead of refusing (ncbench never overwrites otherwise)."),
]
Format = Annotated[
    str, typer.Option("--format", help="stdout: table | csv | json (a measurement: one object per line).")
]
ThreadLevel = Annotated[
    str, typer.Option("--thread-level", help="MPI thread level: auto | single | funneled | serialized | multiple.")
]
BackendName = Annotated[
    str, typer.Option("--backend", help="mpi (host buffers) | nccl (CuPy + NCCL) | cuda-mpi (GPU buffers through MPI).")
]
AssumeCudaAware = Annotated[
    bool, typer.Option("--assume-cuda-aware", help="cuda-mpi: trust an MPI library that cannot say.")
]


def _check_format(fmt: str, choices: tuple[str, ...] = ("table", "csv", "json")) -> None:
    if fmt not in choices:
        raise NcbenchError(f"--format {fmt!r}: choose {', '.join(choices[:-1])} or {choices[-1]}")


def _list(text: str, everything: tuple[str, ...]) -> tuple[str, ...]:
    return everything if text == "all" else tuple(x.strip() for x in text.split(",") if x.strip())


Stepbytes = Annotated[str, typer.Option("-i", "--stepbytes", help="Add this many bytes when -f <= 1.")]
Datatype = Annotated[
    str,
    typer.Option(
        "-d",
        "--datatype",
        help="int8 uint8 int32 uint32 int64 uint64 half float double bfloat16 f8e4m3 f8e5m2, a comma list, or all.",
    ),
]
Redop = Annotated[str, typer.Option("-o", "--op", help="Reduction: sum prod max min avg, a comma list, or all.")]
Root = Annotated[int, typer.Option("-r", "--root", help="Root rank; -1 runs every root.")]
Cycles = Annotated[int, typer.Option("-N", "--run-cycles", "--run_cycles", help="Repeat the whole sweep.")]
Cudagraph = Annotated[
    int,
    typer.Option(
        "-G",
        "--cudagraph",
        help="nccl: capture each sample's operations in a CUDA graph and launch it N times (nccl-tests -G; 0 = off).",
    ),
]
Graph = Annotated[bool, typer.Option("--graph", help="nccl: the same as -G 1 (no Python launch cost in the figures).")]
Staged = Annotated[
    bool, typer.Option("--staged", help="cuda-mpi: copy through host memory when MPI is not CUDA-aware.")
]
CollectiveNodes = Annotated[
    str, typer.Option("--nodes", help="Node counts to measure on, e.g. 1,2,4 (first N nodes each).")
]


def _sweep(name: str, f: dict):
    """Return what to measure, from a collective command's flags (nccl-tests' names)."""
    from .measure.harness import Sweep
    from .units import parse_size

    return Sweep(
        op=name,
        backend=f["backend"],
        min_bytes=parse_size(f["minbytes"], what="-b"),
        max_bytes=parse_size(f["maxbytes"], what="-e"),
        step_factor=f["stepfactor"],
        step_bytes=parse_size(f["stepbytes"], what="-i"),
        dtypes=tuple(ops.dtype(d).name for d in _list(f["datatype"], tuple(ops.DTYPES))),
        redops=_list(f["redop"] or "sum", ops.REDOPS),
        roots=(f["root"],),  # -r -1 is harness.EVERY_ROOT
        iters=f["iters"] or None,
        warmup=f["warmup"],
        samples=f["samples"],
        time_budget_s=f["time_budget"],
        check=f["check"],
        cycles=f["cycles"],
    )


def _launch(f: dict):
    """Return how to run it, from the same flags."""
    from .measure import session
    from .units import parse_int_list

    return session.Launch(
        nodes=tuple(parse_int_list(f["nodes"], what="--nodes")) if f["nodes"] else None,
        ranks_per_node=f["ranks_per_node"] or None,
        out=f["out"],
        force=f["force"],
        fmt=f["fmt"],
        timeout_s=f["timeout"],
        graph_launches=f["cudagraph"] or int(f["graph"]),
        staged=f["staged"],
        assume_cuda_aware=f["assume_cuda_aware"],
    )


def _collective_command(name: str):
    def command(
        minbytes: MinBytes = "8",
        maxbytes: MaxBytes = DEFAULT_MAX,
        stepfactor: StepFactor = 2.0,
        stepbytes: Stepbytes = "1M",
        iters: Iters = 0,
        warmup: Warmup = 5,
        datatype: Datatype = "float",
        redop: Redop = "",
        root: Root = 0,
        check: Check = 1,
        cycles: Cycles = 1,
        timeout: Timeout = 120.0,
        backend: BackendName = "mpi",
        cudagraph: Cudagraph = 0,
        graph: Graph = False,
        staged: Staged = False,
        assume_cuda_aware: AssumeCudaAware = False,
        nodes: CollectiveNodes = "",
        ranks_per_node: RanksPerNode = 0,
        time_budget: TimeBudget = 0.1,
        samples: Samples = 10,
        out: Out = None,
        force: Force = False,
        fmt: Format = "table",
        thread_level: ThreadLevel = "auto",
    ) -> None:
        flags = dict(locals())  # every flag by its name, as the two translations below read them
        from .measure import session

        _check_format(fmt)  # what the op takes (-o, -r) is measure.check_sweep's to say, on every rank
        Outcome.code = session.run_collective(_sweep(name, flags), _launch(flags))

    command.__name__ = f"{name}_cmd"
    command.__doc__ = f"Measure {name} under mpirun, nccl-tests style: `mpiexec -n 4 ncbench {name} -b 8 -e 128M -f 2`."
    return command


for _name in COLLECTIVES:
    app.command(_name)(_collective_command(_name))


Tests = Annotated[str, typer.Option("--tests", help="Comma list of latency, bw, bibw (the OSU trio).")]
Pairs = Annotated[
    str,
    typer.Option(
        "--pairs",
        help="neighbours (r, r+1) | first (0 with each) | all-nodes (first rank of each node pair) | all | self (each rank with itself).",
    ),
]
Concurrent = Annotated[bool, typer.Option("--concurrent", help="Measure disjoint pairs at once (shared links show).")]
Window = Annotated[int, typer.Option("--window", "-W", help="Messages in flight for bw and bibw.")]


@app.command("p2p")
def p2p_cmd(
    tests: Tests = "latency,bw,bibw",
    pairs: Pairs = "neighbours",
    concurrent: Concurrent = False,
    minbytes: MinBytes = "1",
    maxbytes: MaxBytes = "4M",
    stepfactor: StepFactor = 2.0,
    window: Window = 64,
    iters: Iters = 0,
    warmup: Warmup = 5,
    check: Check = 1,
    timeout: Timeout = 120.0,
    backend: BackendName = "mpi",
    assume_cuda_aware: AssumeCudaAware = False,
    ranks_per_node: RanksPerNode = 0,
    time_budget: TimeBudget = 0.05,
    samples: Samples = 10,
    out: Out = None,
    force: Force = False,
    fmt: Format = "table",
    thread_level: ThreadLevel = "auto",
) -> None:
    """Measure point-to-point latency and bandwidth between rank pairs (osu_latency, osu_bw, osu_bibw)."""
    from .measure import session
    from .measure.p2p import PairSweep
    from .units import parse_size

    _check_format(fmt)
    sweep = PairSweep(
        tests=tuple(t.strip() for t in tests.split(",") if t.strip()),
        pairs=pairs,
        concurrent=concurrent,
        min_bytes=parse_size(minbytes, what="-b"),
        max_bytes=parse_size(maxbytes, what="-e"),
        step_factor=stepfactor,
        window=window,
        iters=iters or None,
        warmup=warmup,
        samples=samples,
        time_budget_s=time_budget,
        check=check,
        backend=backend,
    )
    launch = session.Launch(
        ranks_per_node=ranks_per_node or None,
        out=out,
        force=force,
        fmt=fmt,
        timeout_s=timeout,
        assume_cuda_aware=assume_cuda_aware,
    )
    Outcome.code = session.run_p2p(sweep, launch)


Logs = Annotated[
    list[Path],
    typer.Argument(
        help="nccl-tests output: text logs (any version), -J JSON files, directories of them, or a quoted glob ('logs/*.log')."
    ),
]
ImportOut = Annotated[
    Path | None,
    typer.Option(
        "--out", help="Results CSV to write (default results/runs/<first log>-import.csv); never overwritten."
    ),
]
Op = Annotated[
    str | None,
    typer.Option(
        "--op",
        help="The operation, when neither the log nor its file name says and the table fits several (e.g. allreduce).",
    ),
]
Ranks = Annotated[
    int | None,
    typer.Option(
        "--ranks",
        help="The job's rank count, when the log has no '# Rank ... device' lines; one the log contradicts is refused.",
    ),
]
GpusPerNode = Annotated[
    int | None,
    typer.Option("--gpus-per-node", help="Ranks (GPUs) per node; the node count follows from the rank count."),
]


@app.command("import")
def import_cmd(
    logs: Logs,
    out: ImportOut = None,
    op: Op = None,
    ranks: Ranks = None,
    gpus_per_node: GpusPerNode = None,
    force: Force = False,
) -> None:
    """Turn nccl-tests output into ncbench records (one results file with a sidecar naming the sources).

    Reads every file of a directory or glob; names each refused one on stderr; fails only if none was read.
    """
    from . import importers

    hints = importers.Hints(op=op, ranks=ranks, gpus_per_node=gpus_per_node)
    done = importers.write_run(logs, out=out, hints=hints, force=force)
    for path, err in done.refused:
        print(f"ncbench: {importers.refusal(path, err)}", file=sys.stderr)
    if done.target is None:
        Outcome.code = done.refused[0][1].exit_code
        return
    for imported in done.parsed:
        print("\n".join(importers.summary_lines(imported)))
        for problem in imported.problems[:5]:
            print(f"  skipped {problem}")
        for note in importers.notes(imported)[:5]:
            print(f"  note: {note}")
    read = f" from {len(done.parsed)} of {len(done.parsed) + len(done.refused)} files" if done.refused else ""
    print(f"wrote {done.rows} rows{read} to {done.target}")


RunA = Annotated[Path, typer.Argument(help="Results CSV (or directory): the reference, e.g. a baseline copy of a run.")]
RunB = Annotated[Path, typer.Argument(help="Results CSV (or directory) to judge against it.")]
Threshold = Annotated[
    float, typer.Option("--threshold", help="A regression is significantly slower by more than this many percent.")
]
Alpha = Annotated[float, typer.Option("--alpha", help="Significance level of Welch's t-test on the recorded samples.")]
CompareOp = Annotated[str, typer.Option("--op", help="Only these ops (comma list).")]


@app.command("compare")
def compare_cmd(
    run_a: RunA,
    run_b: RunB,
    threshold: Threshold = 5.0,
    alpha: Alpha = 0.05,
    op: CompareOp = "",
    fmt: Format = "table",
) -> None:
    """Compare two runs per op and size: change in time and busbw, and whether it is significant; exit 2 on a regression."""
    from . import compare, records
    from .errors import EXIT_FAIL

    _check_format(fmt)
    if not 0 < alpha < 1 or threshold < 0:
        raise NcbenchError(f"--alpha {alpha} must be between 0 and 1 and --threshold {threshold} at least 0 (percent)")
    a, b = records.load(run_a), records.load(run_b)
    if op:
        a, b = (f[f["op"].isin(_list(op, ()))] for f in (a, b))
    frame = compare.compare(a, b, threshold_pct=threshold, alpha=alpha)
    print(
        compare.render(frame, fmt, label_a=str(run_a), label_b=str(run_b), threshold_pct=threshold, alpha=alpha), end=""
    )
    Outcome.code = EXIT_FAIL if (frame["verdict"] == "regression").any() else 0


Results = Annotated[list[Path], typer.Argument(help="Results CSV files or directories (runs, imports).")]
ReportOut = Annotated[
    Path,
    typer.Option(
        "--out",
        help="Folder for report.html, report.md and report_files/; must not exist or be empty (or --force).",
    ),
]
TopologyPaths = Annotated[
    list[Path] | None,
    typer.Option("--topology", help="Topology TOML (repeat): fitted ones show the fit, all are predicted."),
]
Predictions = Annotated[
    list[Path] | None,
    typer.Option(
        "--predictions",
        help="Prediction sweep CSV (ncbench predict --format csv), e.g. results/predictions/default-sweep.csv.",
    ),
]
Health = Annotated[
    Path | None, typer.Option("--health", help="A health verdict.json, or a folder of health runs for the trend.")
]
Title = Annotated[str, typer.Option("--title", help="The report's title.")]


@app.command("report")
def report_cmd(
    results: Results,
    out: ReportOut,
    topology_paths: TopologyPaths = None,
    predictions: Predictions = None,
    health: Health = None,
    title: Title = "ncbench report",
    force: Force = False,
) -> None:
    """Write one self-contained HTML report (plots inline, no network needed) and its Markdown twin."""
    from . import report
    from .progress import Progress

    report.check_out(out, force)  # every input is checked before the sections are drawn, the slow part
    step = Progress("report", total=len(report.SECTIONS) + 1)
    step("reading inputs")
    inputs = report.gather(results, topologies=topology_paths or (), predictions=predictions or (), health=health)
    sections = report.build(inputs, progress=step)
    sources = [str(p) for p in [*results, *(topology_paths or ()), *(predictions or ()), *([health] if health else [])]]
    path = report.write(out, sections, title=title, sources=sources, force=force)
    step.done()
    print(f"wrote {path} and {out / 'report.md'}")


health_app = typer.Typer(help="Nightly fabric health: find the slow node, NIC or link.")
app.add_typer(health_app, name="health")


Suite = Annotated[
    str,
    typer.Option("--suite", help="quick (local, pairs, confirm) | nightly (+ fabric shifts, whole-job allreduce)."),
]
Baseline = Annotated[
    Path | None, typer.Option("--baseline", help="Baseline JSON, or a directory of them keyed by fingerprint.")
]
UpdateBaseline = Annotated[
    bool, typer.Option("--update-baseline", help="Add a clean night to the baseline (starts one after an upgrade).")
]
HealthOut = Annotated[
    Path | None,
    typer.Option("--out", help="Directory for records, verdict, textfile, JUnit (default results/health/<run_id>/)."),
]
PromDir = Annotated[
    Path | None,
    typer.Option("--prom-dir", help="Also write ncbench_health.prom here (node_exporter textfile directory)."),
]
Drain = Annotated[bool, typer.Option("--drain", help="Run the Slurm drain commands (default: print them).")]
MaxDrain = Annotated[
    float,
    typer.Option("--max-drain", help="Drain nothing when more than this share of nodes fails (a shared cause)."),
]
Nbytes = Annotated[
    str, typer.Option("--bytes", help="Message size of loopback, pair and flow tests (default: the suite's).")
]
SlowRatio = Annotated[
    float, typer.Option("--slow-ratio", help="A test is a strike below this share of its peers (and baseline).")
]
Z = Annotated[
    float, typer.Option("--z", help="... and this many robust sd below the peers (when there are 5 or more).")
]
MaxNoise = Annotated[
    float,
    typer.Option(
        "--max-noise",
        help="A test whose own or peers' samples spread more (1 - best/median) is too noisy to judge: WARN NCB-NOISY, never FAIL.",
    ),
]
HealthTimeout = Annotated[
    float, typer.Option("-T", "--timeout", help="Seconds a round may take; ranks silent longer are UNKNOWN.")
]
HostsPerLeaf = Annotated[
    int,
    typer.Option("--hosts-per-leaf", help="Nodes per leaf switch, in launch order (default: topology, else all)."),
]
LeavesPerPod = Annotated[
    int, typer.Option("--leaves-per-pod", help="Leaves per spine group (default: topology, else all).")
]
TopologyPath = Annotated[Path | None, typer.Option("--topology", help="Topology TOML giving leaf and pod sizes.")]
AdaptiveRouting = Annotated[bool, typer.Option("--adaptive-routing", help="Paths are not fixed: skip link tomography.")]
ExitZero = Annotated[bool, typer.Option("--exit-zero", help="Exit 0 whatever the verdict (it is in the files).")]
Cluster = Annotated[
    str,
    typer.Option("--cluster", help="Cluster name in the verdict (default $SLURM_CLUSTER_NAME or the first host)."),
]


@health_app.callback(invoke_without_command=True)
def health_cmd(
    ctx: typer.Context,
    suite: Suite = "nightly",
    baseline: Baseline = None,
    update_baseline: UpdateBaseline = False,
    out: HealthOut = None,
    prom_dir: PromDir = None,
    drain: Drain = False,
    max_drain: MaxDrain = 0.01,
    nbytes: Nbytes = "",
    slow_ratio: SlowRatio = 0.90,
    z: Z = 6.0,
    max_noise: MaxNoise = 0.18,
    timeout: HealthTimeout = 60.0,
    ranks_per_node: RanksPerNode = 0,
    hosts_per_leaf: HostsPerLeaf = 0,
    leaves_per_pod: LeavesPerPod = 0,
    topology_path: TopologyPath = None,
    adaptive_routing: AdaptiveRouting = False,
    exit_zero: ExitZero = False,
    force: Force = False,
    cluster: Cluster = "",
    thread_level: ThreadLevel = "auto",
) -> None:
    """Run the health suite under mpirun: `mpiexec -n N ncbench health --suite nightly --baseline results/baselines/`.

    Exit codes: 0 OK, 1 WARN, 2 FAIL, 3 UNKNOWN (ranks silent), 64 usage, 65 bad baseline, 66 missing baseline.
    """
    if ctx.invoked_subcommand:
        return
    from .health import command
    from .health.judge import Criteria
    from .units import parse_size

    opts = command.Options(
        suite=suite,
        nbytes=parse_size(nbytes, what="--bytes") if nbytes else None,
        criteria=Criteria(slow_ratio=slow_ratio, z_slow=z, max_noise=max_noise),
        timeout_s=timeout,
        ranks_per_node=ranks_per_node or None,
        hosts_per_leaf=hosts_per_leaf or None,
        leaves_per_pod=leaves_per_pod or None,
        topology=topology_path,
        adaptive_routing=adaptive_routing,
        baseline=baseline,
        update_baseline=update_baseline,
        out=out,
        prom_dir=prom_dir,
        drain=drain,
        max_drain_fraction=max_drain,
        exit_zero=exit_zero,
        cluster=cluster,
        force=force,
    )
    Outcome.code = command.run(opts)


Folder = Annotated[Path, typer.Argument(help="Directory of health runs.")]
Node = Annotated[str, typer.Option("--node", help="One node's trend (its name as the verdict gives it).")]
Last = Annotated[int, typer.Option("--last", help="Only the last N nights.")]
Fmt = Annotated[str, typer.Option("--format", help="table | json (one object per night).")]


@health_app.command("history")
def health_history_cmd(
    folder: Folder = Path("results/health"),
    node: Node = "",
    last: Last = 30,
    fmt: Fmt = "table",
) -> None:
    """Show the fleet's (or one node's) health over nights from the stored verdicts."""
    from .health import history

    _check_format(fmt, ("table", "json"))
    print(history.render(history.rows(history.load(folder), node or None)[-max(last, 1) :], fmt), end="")


Nodes = Annotated[str, typer.Option("--nodes", help="Nodes (scale-up domains) in the fabric, e.g. 25000 or 125k.")]
BadNodes = Annotated[int, typer.Option("--bad-nodes", help="Nodes slow in every inter-node test.")]
BadLinks = Annotated[int, typer.Option("--bad-links", help="Slow switch-to-switch links.")]
BadNics = Annotated[int, typer.Option("--bad-nics", help="Slow NICs (one rail of one node, loopback included).")]
HealthSimulateTopologyPath = Annotated[
    Path, typer.Option("--topology", help="Topology TOML: leaf, pod and rail counts.")
]
Trials = Annotated[int, typer.Option("--trials", help="Independent seeded trials (seed, seed+1, ...).")]
Seed = Annotated[int, typer.Option("--seed", help="First random seed.")]
Factor = Annotated[float, typer.Option("--factor", help="A faulty element runs at this share of its bandwidth.")]
Noise = Annotated[float, typer.Option("--noise", help="Log-normal measurement noise (sd) of every test.")]
RoundS = Annotated[float, typer.Option("--round-s", help="Wall time per round, for the estimate (seconds).")]
HealthSimulateSuite = Annotated[str, typer.Option("--suite", help="quick | nightly.")]
HealthSimulateFmt = Annotated[str, typer.Option("--format", help="table | json.")]


@health_app.command("simulate")
def health_simulate_cmd(
    nodes: Nodes = "25000",
    bad_nodes: BadNodes = 5,
    bad_links: BadLinks = 3,
    bad_nics: BadNics = 0,
    topology_path: HealthSimulateTopologyPath = Path("topologies/colossus-spectrum-x-200k.toml"),
    trials: Trials = 1,
    seed: Seed = 0,
    factor: Factor = 0.5,
    noise: Noise = 0.02,
    round_s: RoundS = 10.0,
    suite: HealthSimulateSuite = "nightly",
    fmt: HealthSimulateFmt = "table",
) -> None:
    """Plan at scale: the suite's scheduling and attribution on a simulated fabric with injected faults."""
    from .health import simulate
    from .health import suite as suites
    from .model.topology import load
    from .units import parse_int_list

    _check_format(fmt, ("table", "json"))
    if suite not in suites.SUITES:
        raise NcbenchError(f"unknown suite {suite!r}; choose {' or '.join(suites.SUITES)}")
    if trials < 1:
        raise NcbenchError(f"--trials must be at least 1, not {trials}")
    design = load(topology_path)
    count = parse_int_list(nodes, what="--nodes")[0]
    result = simulate.trials(
        design,
        trials=trials,
        seed=seed,
        round_s=round_s,
        nodes=count,
        bad_nodes=bad_nodes,
        bad_links=bad_links,
        bad_nics=bad_nics,
        factor=factor,
        noise=noise,
        suite=suite,
    )
    print(simulate.render(result, fmt), end="")


topo_app = typer.Typer(help="Fabric designs: topologies/*.toml.", no_args_is_help=True)
app.add_typer(topo_app, name="topo")


TopologyFile = Annotated[Path, typer.Argument(help="A topology TOML file.")]
Gpus = Annotated[
    str, typer.Option("--gpus", help="Size the fabric for this many GPUs (200k, 1M); default: the file's gpus.")
]
Extend = Annotated[
    bool, typer.Option("--extend", help="Add copies of the outermost tier when the design is too small.")
]


@topo_app.command("show")
def topo_show(
    path: TopologyFile,
    gpus: Gpus = "",
    extend: Extend = False,
) -> None:
    """Print the fabric sized for N GPUs: tiers needed, switches, links, transceivers and network power."""
    from .model import topology
    from .units import parse_int_list

    design = topology.load(path)
    count = parse_int_list(gpus, what="--gpus")[0] if gpus else design.gpus
    if count < 1:
        raise NcbenchError(f"{path}: say how many GPUs to size for (--gpus 200k); the file sets none")
    print(topology.describe(design, count, extend=extend), end="")


FitResults = Annotated[
    list[Path], typer.Argument(help="Results CSV files or directories (ncbench runs, ncbench import).")
]
FitTopologyPath = Annotated[Path, typer.Option("--topology", help="The nominal topology TOML the fit starts from.")]
Algo = Annotated[
    str,
    typer.Option("--algo", help="Algorithm behind the measurements (ring, tree, ...); ops without it use their own."),
]
FitOp = Annotated[str, typer.Option("--op", help="Fit only these ops (comma list); default every op in the results.")]
FitOut = Annotated[
    Path | None, typer.Option("--out", help="Fitted topology to write (default topologies/<name>.fitted.toml).")
]


@app.command("fit")
def fit_cmd(
    results: FitResults,
    topology_path: FitTopologyPath,
    algo: Algo = "ring",
    op: FitOp = "",
    out: FitOut = None,
    force: Force = False,
) -> None:
    """Fit per-tier latency and bandwidth to measurements; write a fitted topology with its uncertainty."""
    from . import records
    from .model import fit, topology

    nominal = topology.load(topology_path)
    target = records.claim(
        out or topology_path.with_name(f"{topology_path.stem}.fitted.toml"), force
    )  # before the work
    frame = records.load(*results)
    if op:
        frame = frame[frame["op"].isin(_list(op, ()))]
    meta, files = records.runs_of(results)
    result = fit.fit(frame, nominal, algorithm=algo, sources=results, files=files, meta=meta, where=str(topology_path))
    for note in result.notes:
        print(f"ncbench fit: note: {note}", file=sys.stderr)
    if result.warning:
        print(f"ncbench fit: warning: {result.warning}", file=sys.stderr)
    if result.left_out:
        print(f"ncbench fit: left out: {result.left_out}", file=sys.stderr)
    fitted = result.topology
    topology.save(fitted, target)
    print(fit.summary(result), end="")
    print(f"wrote {target}")


PredictTopologyPaths = Annotated[
    list[Path] | None, typer.Option("--topology", help="Topology TOML (repeat); default every topologies/*.toml.")
]
PredictOp = Annotated[str, typer.Option("--op", help="Comma list of ops, or all.")]
PredictGpus = Annotated[str, typer.Option("--gpus", help="GPU counts, e.g. 200k,400k,600k,800k,1M.")]
PredictNbytes = Annotated[
    str, typer.Option("--bytes", help="Sizes, e.g. 8,1M,1G (binary K/M/G); default 8 B to 16 GiB by 2x.")
]
PredictAlgo = Annotated[
    str, typer.Option("--algo", help="auto (as NCCL's tuner picks), all, or a comma list (ring,tree,nvls,...).")
]
PredictOut = Annotated[
    Path | None,
    typer.Option(
        "--out", help="Also write the predictions here (format from --format); never overwritten without --force."
    ),
]


@app.command("predict")
def predict_cmd(
    topology_paths: PredictTopologyPaths = None,
    op: PredictOp = "all",
    gpus: PredictGpus = "200k,400k,600k,800k,1M",
    nbytes: PredictNbytes = "",
    algo: PredictAlgo = "auto",
    fmt: Format = "table",
    out: PredictOut = None,
    force: Force = False,
) -> None:
    """Predict every collective at scale for each fabric design, with a band from the fit's uncertainty."""
    from . import ops as ops_mod
    from . import records
    from .model import predict, topology
    from .units import parse_int_list, parse_size

    _check_format(fmt)
    if out:
        records.claim(out, force)
    paths = topology_paths or topology.shipped()
    if not paths:
        raise NcbenchError("no topology given and none in topologies/; pass --topology FILE")
    ops = _list(op, tuple(ops_mod.OPS))
    counts = parse_int_list(gpus, what="--gpus")
    sizes = [parse_size(x, what="--bytes") for x in nbytes.split(",")] if nbytes else list(predict.DEFAULT_BYTES)
    designs = [topology.load(path) for path in paths]
    frame = predict.sweep(designs, ops=ops, gpus=counts, nbytes=sizes, algorithms=_list(algo, ("all",)))
    text = predict.render(frame, fmt)
    if out:
        try:
            records.write_atomic(out, text)
        except OSError as err:
            raise NcbenchError(f"cannot write the predictions to {out}: {err.strerror}") from None
    print(text, end="")


@app.command("version")
def version_cmd() -> None:
    """Print the ncbench version."""
    print(f"ncbench {__version__}")


class Outcome:
    """The exit code a command chose; click's standalone mode exits 0 after any command returns."""

    code = 0


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; under MPI, a failure on any rank ends the whole job instead of hanging it."""
    from . import records
    from .measure import session

    argv = sys.argv[1:] if argv is None else argv
    Outcome.code = 0  # a second call in one process (tests, a Python user) starts clean
    comm = None
    try:
        if session.needs_mpi(argv):
            comm = session.start(argv)
        quiet = comm is not None and comm.rank != 0
        try:
            if quiet:  # every rank parsed the same argv; one copy of a usage message is enough
                sys.stderr = open("/dev/null", "w")  # noqa: SIM115 - lives as long as the process
            app(args=argv, prog_name="ncbench", standalone_mode=True)
        finally:
            sys.stderr = sys.__stderr__
    except NcbenchError as err:
        _fail(comm, f"ncbench: {err}", err.exit_code)
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        if code == 2 and Outcome.code != 2:
            code = EXIT_USAGE  # click's usage errors exit 2, which our verdicts reserve for failed checks
        sys.exit(code or Outcome.code)
    except Exception:
        if comm is None or not session.Started.running:
            records.end_open_runs(EXIT_SOFTWARE, "ncbench failed (a bug)")
            raise
        import traceback

        from .measure.guard import abort_job

        traceback.print_exc()
        abort_job(comm, EXIT_SOFTWARE)  # a rank that dies alone would leave the others waiting forever
    sys.exit(Outcome.code)


def _fail(comm, message: str, code: int) -> None:
    from . import records
    from .measure import session

    if comm is not None and session.Started.running:
        from .measure.guard import abort_job

        print(f"{message} (rank {comm.rank})", file=sys.stderr, flush=True)
        abort_job(comm, code, message)
    if comm is None or comm.rank == 0:
        records.end_open_runs(code, message)
        print(message, file=sys.stderr, flush=True)
    sys.exit(code)
