"""`ncbench health` under mpirun: agree on the setup, run the suite, write the verdicts, exit like Nagios.

argv -> MPI job (nodes and rails from hosts and local ranks) -> fabric + baseline checked before any
test -> suite rounds (records.jsonl appended per round) -> verdict.json, ncbench_health.prom,
junit.xml, drain.sh in results/health/<run_id>/ -> drains (only with --drain) -> exit code.
"""

import os
import platform
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from .. import records
from ..errors import EXIT_UNAVAILABLE, EXIT_USAGE, NcbenchError
from ..measure import sysinfo
from ..measure.session import agree
from . import baseline as baselines
from . import outputs, plan
from .judge import Criteria
from .suite import SUITES, Orchestrator, Suite

HEALTH_DIR = Path("results/health")
DEFAULT_CRITERIA = Criteria()


@dataclass(frozen=True)
class Options:
    suite: str = "nightly"
    nbytes: int | None = None  # override the suite's message size
    criteria: Criteria = DEFAULT_CRITERIA
    timeout_s: float = 60.0
    ranks_per_node: int | None = None
    hosts_per_leaf: int | None = None
    leaves_per_pod: int | None = None
    topology: Path | None = None
    adaptive_routing: bool = False
    baseline: Path | None = None
    update_baseline: bool = False
    out: Path | None = None
    prom_dir: Path | None = None
    drain: bool = False
    max_drain_fraction: float = 0.01
    exit_zero: bool = False
    force: bool = False  # --force: replace a non-empty --out
    cluster: str = ""


def check_options(opts: Options) -> None:
    """Raise the one-sentence error for options that cannot work, before MPI does anything."""
    if opts.suite not in SUITES:
        raise NcbenchError(f"unknown suite {opts.suite!r}; choose {' or '.join(SUITES)}", EXIT_USAGE)
    opts.criteria.check()
    if opts.timeout_s <= 0:
        raise NcbenchError(f"--timeout {opts.timeout_s}: a health round needs a deadline (seconds > 0)")
    if opts.nbytes is not None and opts.nbytes < 1:
        raise NcbenchError("--bytes must be at least 1 B")
    for flag, value in (("--hosts-per-leaf", opts.hosts_per_leaf), ("--leaves-per-pod", opts.leaves_per_pod)):
        if value is not None and value < 1:
            raise NcbenchError(f"{flag} must be at least 1, not {value}")
    if opts.update_baseline and opts.baseline is None:
        raise NcbenchError("--update-baseline needs --baseline DIR (where baselines are kept)")
    if opts.drain and shutil.which("scontrol") is None:
        raise NcbenchError(
            "--drain runs scontrol, which is not on PATH here; drop --drain to print the commands instead",
            EXIT_UNAVAILABLE,
        )
    if opts.out is not None:
        records.claim(opts.out, opts.force)


SERIAL_NOTE = (
    "ranks outnumber cores on a host: each round's tests ran one after another, since concurrent "
    "tests would measure the CPU scheduler, not the fabric"
)


def oversubscribed(job) -> bool:
    """Return whether some host runs more ranks than it has cores (emulated nodes on one machine)."""
    return max(job.hosts.count(h) for h in set(job.hosts)) > (os.cpu_count() or 1)


def node_names(job) -> list[str]:
    """Return one name per node: the host, or host#index when ranks stand in for nodes."""
    firsts = [job.hosts[job.node_of.index(n)] for n in range(job.nnodes)]
    return [f"{h}#{n}" for n, h in enumerate(firsts)] if job.emulated else firsts


def fabric_for(opts: Options, nnodes: int, rails: int) -> plan.Fabric:
    """Return the fabric the job's nodes sit on: from a topology file, flags, or one leaf."""
    if opts.topology is not None:
        from ..model import topology

        base = plan.from_topology(topology.load(opts.topology), nnodes, adaptive_routing=opts.adaptive_routing)
        hosts, per_pod = base.hosts_per_leaf, base.leaves_per_pod
    else:
        hosts, per_pod = nnodes, 1
    return plan.Fabric(
        nodes=nnodes,
        rails=rails,
        hosts_per_leaf=opts.hosts_per_leaf or hosts,
        leaves_per_pod=opts.leaves_per_pod or per_pod,
        adaptive_routing=opts.adaptive_routing,
    )


def facts(opts: Options, suite, mpi_library: str, rails: int, fabric: plan.Fabric) -> dict:
    """Return what the baseline's fingerprint is made of: what moves the numbers, not what varies nightly."""
    return {
        "backend": "mpi",
        "mpi_library": mpi_library,
        "cpu": platform.processor() or platform.machine(),
        "ranks_per_node": rails,
        "suite": suite.name,
        "nbytes": suite.nbytes,
        "samples": suite.samples,
        "iters": suite.iters,
        "hosts_per_leaf": fabric.hosts_per_leaf,
        "topology": opts.topology.stem if opts.topology else "",
    }


@dataclass(frozen=True)
class Agreed:
    """What every rank agreed before any test: the job, its node names, the fabric, the suite, the facts."""

    job: object  # measure.session's description of the MPI job
    names: list[str]  # one per node
    fabric: plan.Fabric
    suite: Suite
    facts: dict  # what the baseline's fingerprint is made of


def setup(comm, opts: Options) -> Agreed:
    """Return the job, its node names, fabric, suite and facts, once every rank agreed the run can start."""
    from dataclasses import replace

    from mpi4py import MPI

    from ..measure.session import Launch, describe_job

    error, prepared = None, None
    try:
        check_options(opts)
        job = describe_job(comm, Launch(ranks_per_node=opts.ranks_per_node))
        rails = job.ranks_per_node()
        if rails < 1:
            raise NcbenchError(
                "nodes hold different numbers of ranks; launch the same number on every node "
                "(--ntasks-per-node), or use --ranks-per-node"
            )
        suite = SUITES[opts.suite] if opts.nbytes is None else replace(SUITES[opts.suite], nbytes=opts.nbytes)
        fabric = fabric_for(opts, job.nnodes, rails)
        prepared = (job, node_names(job), fabric, suite)
    except NcbenchError as err:
        error = err
    agree(comm, error)
    job, names, fabric, suite = prepared
    library = MPI.Get_library_version().strip().splitlines()[0].strip()
    return Agreed(job, names, fabric, suite, facts(opts, suite, library, fabric.rails, fabric))


def load_baseline(comm, opts: Options, fp_id: str, fp: dict) -> tuple[dict, str]:
    """Return (baseline classes, note) on rank 0; a missing, corrupt or foreign file stops every rank."""
    error, classes, note = None, {}, "none (judged against peers only)"
    if comm.rank == 0 and opts.baseline is not None:
        try:
            classes, note = baselines.load(opts.baseline, fp_id, fp, update=opts.update_baseline)
        except NcbenchError as err:
            error = err
    agree(comm, error)
    return classes, note


def run(opts: Options) -> int:
    """Run the health suite on every rank; return the exit code (the same on every rank, or the job aborts)."""
    from ..measure import session
    from ..measure.inject import from_env
    from .live import Where, serve

    comm = session.Started.comm
    agreed = setup(comm, opts)
    fp_id = baselines.fingerprint(agreed.facts)
    classes, note = load_baseline(comm, opts, fp_id, agreed.facts)
    node_comm = comm.Split(agreed.job.node_of[comm.rank], comm.rank)  # before any rank can stall
    where = Where(comm, node_comm, from_env(os.environ, comm.rank), opts.timeout_s, agreed.suite)
    session.Started.running = True
    if comm.rank != 0:
        code = serve(where)
        session.Started.running = False
        return code
    return _lead(opts, where, agreed, fp_id, classes, note)


def _lead(opts: Options, where, agreed: Agreed, fp_id: str, classes: dict, note: str) -> int:
    """Rank 0: run the suite, write the verdicts, drain, print the summary; stop the other ranks; return the code."""
    from .live import MPIRunner

    job, names, fabric, suite = agreed.job, agreed.names, agreed.fabric, agreed.suite
    run_id = records.new_run_id(job.hosts[0], f"health-{suite.name}")
    out_dir = _out_dir(opts, run_id)
    started = records.now_iso()
    log = open(out_dir / "records.jsonl", "x")  # noqa: SIM115 - appended per round for the whole run
    serial = oversubscribed(job)
    runner = MPIRunner(where, job, names, fabric.rails, serial=serial, record=_recorder(log, run_id, names))
    _announce(opts, agreed, out_dir, serial)
    outcome = Orchestrator(runner, fabric, suite, opts.criteria, classes).run()
    log.close()
    verdict = outputs.verdict(
        outcome,
        run=_run_facts(opts, agreed, run_id, started, fp_id, serial),
        names=names,
        fabric=_fabric_facts(fabric),
        baseline={"note": note, "classes": classes, "path": str(opts.baseline) if opts.baseline else None},
    )
    drains = _drains(opts, verdict, job.emulated)
    verdict["baseline"]["update"] = _update_baseline(opts, verdict, fp_id, agreed.facts, outcome.classes)
    files = outputs.write_all(out_dir, verdict, drains, names, prom_dir=opts.prom_dir)
    for text in outputs.summary(verdict, drains) + drains.get("executed", []):
        print(text, flush=True)
    print(f"# verdict: {files['verdict']}", flush=True)
    code = 0 if opts.exit_zero else verdict["exit_code"]
    _stop(where.comm, runner, code)
    return code


def _out_dir(opts: Options, run_id: str) -> Path:
    """Return the run's results folder, made (--force first removes an old run's files, all together)."""
    out_dir = opts.out or HEALTH_DIR / run_id
    if opts.force and out_dir.is_dir():
        shutil.rmtree(out_dir)  # --force: the old run's files go together
    out_dir.mkdir(parents=True, exist_ok=True)
    return out_dir


def _announce(opts: Options, agreed: Agreed, out_dir: Path, serial: bool) -> None:
    """Print the run's opening lines: what is tested, the deadline, where results go (and why tests run serially)."""
    job, fabric, suite = agreed.job, agreed.fabric, agreed.suite
    print(
        f"# ncbench health {suite.name}: {job.nnodes} nodes x {fabric.rails} rail(s), {fabric.leaves} leaf/leaves; "
        f"timeout {opts.timeout_s:g} s per round; results in {out_dir}",
        flush=True,
    )
    if serial:
        print(f"# {SERIAL_NOTE}", flush=True)


def _run_facts(opts: Options, agreed: Agreed, run_id: str, started: str, fp_id: str, serial: bool) -> dict:
    """Return the verdict's facts about the run itself; it finished now."""
    job = agreed.job
    return {
        "run_id": run_id,
        "cluster": opts.cluster or os.environ.get("SLURM_CLUSTER_NAME", job.hosts[0]),
        "suite": agreed.suite.name,
        "started": started,
        "finished": records.now_iso(),
        "fingerprint_id": fp_id,
        "fingerprint": agreed.facts,
        "nodes_emulated": job.emulated,
        "tests_serialized": SERIAL_NOTE if serial else "",
        "env": sysinfo.recorded_env(os.environ),
        "criteria": asdict(opts.criteria),
        "timeout_s": opts.timeout_s,
    }


def _fabric_facts(fabric: plan.Fabric) -> dict:
    """Return the verdict's facts about the fabric the nodes sit on."""
    return {
        "nodes": fabric.nodes,
        "rails": fabric.rails,
        "hosts_per_leaf": fabric.hosts_per_leaf,
        "leaves": fabric.leaves,
        "pods": fabric.pods,
        "adaptive_routing": fabric.adaptive_routing,
    }


def _drains(opts: Options, verdict: dict, emulated: bool) -> dict:
    """Return the drain plan; with --drain (and real nodes), drain them now and say so in the verdict."""
    drains = outputs.drain_plan(verdict, max_drain_fraction=opts.max_drain_fraction, emulated=emulated)
    if opts.drain and drains["nodes"] and not emulated:
        drains["executed"] = outputs.execute_drains(drains)
        verdict["drain_executed"] = True
    return drains


def _recorder(log, run_id: str, names: list[str]):
    """Return the callback that appends each round's tests to records.jsonl, flushed (nothing lost)."""

    def record(stage, round_no, tests, results):
        for i in range(len(tests)):
            a, b = int(tests.a[i]), int(tests.b[i])
            log.write(
                records.json_text(
                    {
                        "run_id": run_id,
                        "stage": stage,
                        "round": round_no,
                        "kind": str(tests.kind[i]),
                        "a": names[a] if a >= 0 else "",
                        "b": names[b] if b >= 0 else "",
                        "rail": int(tests.rail[i]),
                        "nbytes": int(tests.nbytes[i]),
                        "busbw_GBps": round(float(results.value[i]), 6),
                        "spread": round(float(results.spread[i]), 4),
                        "wrong_from_a": bool(results.wrong_a[i]),
                        "wrong_from_b": bool(results.wrong_b[i]),
                    }
                )
                + "\n"
            )  # json_text writes NaN, a test with no answer, as null
        log.flush()

    return record


def _update_baseline(opts: Options, verdict: dict, fp_id: str, fp: dict, classes: dict) -> str:
    """Add tonight to the baseline if it was a clean, complete night; say what happened."""
    if not opts.update_baseline:
        return "not asked (--update-baseline)"
    if verdict["status"] not in (outputs.PASS, outputs.WARN) or verdict["coverage"]["unknown"]:
        return f"refused: tonight was {verdict['status']} with {verdict['coverage']['unknown']} unknown nodes"
    path = baselines.update(opts.baseline, fp_id, fp, classes, verdict["run_id"], verdict["finished"])
    return f"added tonight to {path}"


def _stop(comm, runner, code: int) -> None:
    """Tell every rank that still answers to stop; a rank that stopped answering can only be ended by abort."""
    for r in range(1, comm.size):
        if not runner.unreachable[runner.job.node_of[r]]:
            comm.send(("stop", code), dest=r, tag=7101)
    if runner.unreachable.any():
        from ..measure.guard import abort_job

        abort_job(comm, code)  # MPI_Finalize would wait for the stalled rank forever (abort_job flushes)
