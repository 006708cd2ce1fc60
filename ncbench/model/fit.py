"""Fit per-tier latency and bandwidth to measured results (ncbench runs and imported nccl-tests logs).

results DataFrame + nominal Topology -> fitted Topology (saved as topologies/*.fitted.toml) + fit report.
The cost of every row is linear in (base, alpha per tier, 1/bandwidth per tier) once the protocol and the
binding pipeline phase are known (algorithms.linear_rows), so the fit is a regularised least squares on
relative errors, iterated until those choices settle; nominal values are the prior, so parameters the data
do not constrain stay nominal and the file says so. Uncertainty comes from a bootstrap over the rows.
"""

from dataclasses import dataclass, replace

import numpy as np

from ..errors import EXIT_DATAERR, NcbenchError
from . import cost as alg
from . import topology as topo_mod
from .topology import Topology

NOISE = 0.05  # relative measurement noise assumed per row (the data term's scale)
# Nominal values are spec sheets and NCCL's constants for other systems: a factor of 20 either way at 2 sd.
PRIOR_LOG_SD = 1.5
GAUSS_NEWTON_STEPS = 30
RESOLVED = 0.5  # a parameter is "constrained" when the data decide at least half of it (resolution diagonal)
ITERATIONS = 12
DECISIVE = 0.5  # another binding start replaces the nominal one only at half its objective or less (_converge)
SAMPLES = 200
NCCL_BACKENDS = ("nccl",)  # backends whose rows use NCCL's protocols (LL, LL128, Simple)
# NCCL_ALGO and NCCL_PROTO in a run's recorded env (NCCL's parseList in src/graph/tuning.cc: case-insensitive,
# "A,B", "^A" for all but A, "A;allreduce:B" per function). NCCL's names -> the model's; None: not modelled.
NCCL_ALGOS = {
    "Tree": "tree",
    "Ring": "ring",
    "CollNetDirect": "collnet",
    "CollNetChain": None,
    "NVLS": "nvls",
    "NVLSTree": "nvlstree",
    "PAT": "pat",
}
NCCL_PROTOS = {"LL": "ll", "LL128": "ll128", "Simple": "simple"}
# NCCL's function prefixes -> ops; the env governs the collectives only (alltoall and sendrecv are NCCL p2p).
NCCL_FUNCTIONS = {
    "Broadcast": "broadcast",
    "Reduce": "reduce",
    "AllGather": "allgather",
    "ReduceScatter": "reducescatter",
    "AllReduce": "allreduce",
    "SendRecv": None,
}


@dataclass(frozen=True)
class Fit:
    topology: Topology  # the fitted topology; topology.fit is its FitSummary
    parameters: "pd.DataFrame"  # noqa: F821 - name, nominal, value, low, high, constrained
    residuals: "pd.DataFrame"  # noqa: F821 - every row used: measured, predicted, relative error
    left_out: str = ""  # the runs the topology cannot connect, left out of the fit (one line), or ""
    warning: str = ""  # one line when the rows cross fewer tiers than the topology has, or ""
    notes: tuple = ()  # one line per run and op whose NCCL_ALGO names no algorithm the op has (today's rule kept)


@dataclass(frozen=True)
class _Rows:
    constant: np.ndarray  # [R] microseconds the parameters do not scale
    design: np.ndarray  # [R, K] coefficients of theta
    choices: tuple  # what was chosen per row (protocol, binding phase) to detect convergence


def check_scale(results, files: dict | None = None) -> None:
    """Refuse rows whose rank count is unknown (-1: an imported log that did not state it), naming their runs.

    `files` ({run_id: results file}) names the file too; without it the run id (an import's file name) does.
    """
    nranks = results["nranks"].astype(float).fillna(-1).to_numpy()
    unknown = (nranks < 1) & results["op"].isin(alg.OPS).to_numpy()
    if not unknown.any():
        return
    runs = sorted(map(str, results["run_id"][unknown].unique())) if "run_id" in results else ["(no run id)"]
    named = ", ".join(f"{run} ({files[run]})" if files and run in files else run for run in runs)
    raise NcbenchError(
        f"{int(unknown.sum())} rows of run {named} have an unknown rank count (the nccl-tests log did not state it), "
        "so they cannot be fitted at any scale; re-import the log with --ranks N (and --gpus-per-node G)",
        EXIT_DATAERR,
    )


def usable(results):
    """Return the rows a fit can use: timed, correct, with at least two ranks."""
    return results.copy()[_usable_mask(results)]


def _usable_mask(frame) -> np.ndarray:
    ok = frame["time_us"].astype(float).gt(0) & frame["nranks"].astype(float).ge(2)
    wrong = frame["wrong"].astype(float).fillna(-1)
    ok &= wrong.le(0) & frame["op"].isin(alg.OPS)
    return ok.to_numpy()


def _algorithm_for(op: str, algorithm: str) -> str:
    names = alg.for_op(op)
    return algorithm if algorithm in names else names[0]


def _nccl_list(value: str, names: dict, what: str, where: str) -> dict:
    """Return {op: set of allowed model names} from an NCCL_ALGO or NCCL_PROTO value; ops not named are absent.

    As NCCL parses it: entries split by ";", the first may apply to every function, the others start with a
    function ("allreduce:tree"); a list starting with "^" allows all but the names in it. `what` names the
    `names` ("algorithms"); `where` ("run R sets NCCL_ALGO='x'") starts the one-sentence refusal (exit 65) of
    anything NCCL would not accept either.
    """
    known = {name.casefold(): model for name, model in names.items()}
    functions = {name.casefold(): op for name, op in NCCL_FUNCTIONS.items()}
    out = {}
    for i, entry in enumerate(e.strip() for e in value.split(";") if e.strip()):
        prefix, _, elems = entry.partition(":") if ":" in entry else ("", "", entry)
        prefix, elems = prefix.strip(), elems.strip()
        if not prefix and i > 0:
            raise NcbenchError(f"{where}, but only its first entry may omit the function ({entry!r})", EXIT_DATAERR)
        if prefix and prefix.casefold() not in functions:
            raise NcbenchError(
                f"{where}, but {prefix!r} is not one of NCCL's functions ({', '.join(NCCL_FUNCTIONS)})", EXIT_DATAERR
            )
        tokens = [t.strip().casefold() for t in elems.lstrip("^").split(",") if t.strip()]
        unknown = [t for t in tokens if t not in known]
        if unknown:
            raise NcbenchError(
                f"{where}, but {unknown[0]!r} is not one of NCCL's {what} ({', '.join(names)})", EXIT_DATAERR
            )
        chosen = {known[t] for t in tokens}
        allowed = set(known.values()) - chosen if elems.startswith("^") else chosen
        ops = [functions[prefix.casefold()]] if prefix else list(functions.values())
        out.update({op: allowed for op in ops if op})
    return out


def _default_protocols(frame, topology: Topology) -> np.ndarray:
    """Return [R, len(PROTOCOLS)]: which protocols each row may use without env (for NCCL rows those the fabric
    runs, its `protocols`; Simple for the others)."""
    nccl = frame["backend"].isin(NCCL_BACKENDS).to_numpy()
    return np.column_stack([(nccl & (name in topology.protocols)) | (name == "simple") for name in alg.PROTOCOLS])


def _env_rule(env: dict, key: str, names: dict, what: str, named: str) -> tuple[dict, str]:
    """Return ({op: allowed model names}, the value) for one of NCCL_ALGO / NCCL_PROTO in a run's env."""
    value = str(env.get(key, "")).strip()
    return (_nccl_list(value, names, what, f"{named} sets {key}={value!r}") if value else {}), value


def _choices(frame, topology: Topology, meta: dict | None, algorithm: str, files: dict | None = None):
    """Return (algorithm per row, allowed protocols [R, len(PROTOCOLS)], notes) from --algo and the runs' env.

    Without env: `algorithm` where the op has it (else its first), the fastest of all protocols for NCCL rows
    and Simple for the others. NCCL_ALGO / NCCL_PROTO in an NCCL run's recorded env (`meta`: {run_id: sidecar})
    narrow those choices for its collectives: the first allowed algorithm the op has (in cost.for_op order; if
    none, today's rule and a note), and only the allowed protocols.
    """
    ops = frame["op"].to_numpy()
    algos = np.array([_algorithm_for(op, algorithm) for op in ops], dtype=object)
    allowed = _default_protocols(frame, topology)
    notes = []
    if not meta or "run_id" not in frame:
        return algos, allowed, notes
    nccl = frame["backend"].isin(NCCL_BACKENDS).to_numpy()
    runs = frame["run_id"].astype(str).to_numpy()
    for run in sorted(set(runs[nccl]) & set(meta)):
        env = (meta[run] or {}).get("env") or {}
        named = f"run {run} ({files[run]})" if files and run in files else f"run {run}"
        algo_rule, algo_value = _env_rule(env, "NCCL_ALGO", NCCL_ALGOS, "algorithms", named)
        proto_rule, proto_value = _env_rule(env, "NCCL_PROTO", NCCL_PROTOS, "protocols", named)
        for op in sorted(set(ops[(runs == run) & nccl])):
            rows = (runs == run) & nccl & (ops == op)
            if op in proto_rule and not proto_rule[op]:
                raise NcbenchError(
                    f"{named} sets NCCL_PROTO={proto_value!r}, which allows no protocol for {op}", EXIT_DATAERR
                )
            if op in proto_rule:
                # a run's NCCL_PROTO enables what it names on any path (tuning.cc: only the default, 2, is path-bound)
                allowed[rows] = [name in proto_rule[op] for name in alg.PROTOCOLS]
            fits = [name for name in alg.for_op(op) if name in algo_rule.get(op, ())]
            if op in algo_rule and not fits:
                notes.append(
                    f"{named} sets NCCL_ALGO={algo_value!r}, which allows none of the algorithms the model has for "
                    f"{op} ({', '.join(alg.for_op(op))}); its {op} rows are fitted with {algos[rows][0]}"
                )
            algos[rows] = fits[0] if fits else algos[rows]
    return algos, allowed, notes


def _per_node(frame, topology: Topology) -> np.ndarray:
    """Return each row's ranks per node: its own column, else nranks / nnodes, else the topology's scale-up size."""
    per_node = frame["ranks_per_node"].astype(float).fillna(0).to_numpy()
    nranks = frame["nranks"].astype(float).to_numpy()
    nnodes = frame["nnodes"].astype(float).fillna(0).to_numpy() if "nnodes" in frame else np.zeros(len(frame))
    from_nodes = np.where(nnodes > 0, np.ceil(nranks / np.maximum(nnodes, 1)), topology.gpus_per_domain)
    return np.where(per_node > 0, per_node, from_nodes)


def _layout(topology: Topology, per_node: float) -> Topology:
    return replace(topology, tiers=(replace(topology.tiers[0], size=int(per_node)), *topology.tiers[1:]))


def _most_ranks(topology: Topology, per_node: float) -> int:
    """Return the most ranks the topology connects with `per_node` ranks in each scale-up domain."""
    layout = _layout(topology, per_node)
    return topo_mod.capacity(layout, len(layout.tiers))


@dataclass(frozen=True)
class LeftOut:
    run_id: str
    nranks: tuple  # the communicator sizes left out
    per_node: int
    most_ranks: int  # what the topology connects at that many ranks per node


def describable(results, topology: Topology):
    """Return (results without the usable rows the topology cannot connect, [LeftOut] naming those rows' runs).

    A --nodes run may go beyond a small topology at its largest communicator only; its smaller ones stay.
    """
    per_node = _per_node(results, topology)
    most = {value: _most_ranks(topology, value) for value in np.unique(per_node)}
    limit = np.array([most[value] for value in per_node])
    beyond = _usable_mask(results) & (results["nranks"].astype(float).to_numpy() > limit)
    left = []
    gone = results[beyond].assign(_per_node=per_node[beyond])
    if "run_id" not in gone:  # rows built in Python need no run id
        gone = gone.assign(run_id="(no run id)")
    for (run_id, value), part in gone.groupby(["run_id", "_per_node"], sort=True):
        sizes = tuple(sorted(int(n) for n in part["nranks"].unique()))
        left.append(LeftOut(str(run_id), sizes, int(value), most[value]))
    return results[~beyond], left


def left_out_text(topology: Topology, left: list, files: dict | None = None) -> str:
    """Return one line naming the runs (and their files, when known) whose rows the topology cannot connect."""
    parts = []
    for one in left:
        where = f" in {files[one.run_id]}" if files and one.run_id in files else ""
        ranks = ", ".join(map(str, one.nranks))
        parts.append(f"{one.run_id}{where} ({ranks} ranks at {one.per_node} per node; at most {one.most_ranks})")
    return f"{topology.name} cannot connect the {'run' if len(left) == 1 else 'runs'} " + "; ".join(parts)


def _groups(frame, topology: Topology, algorithm: str, algos=None):
    """Yield (row indices, Terms) per ranks-per-node layout, op and algorithm: the costs the fit's iterations reuse.

    `algos` (one per row, `_choices`) overrides `algorithm` (the op's first where it lacks it).
    """
    g = _per_node(frame, topology)
    nranks = frame["nranks"].astype(float).to_numpy()
    ops = frame["op"].to_numpy()
    if algos is None:
        algos = np.array([_algorithm_for(op, algorithm) for op in ops], dtype=object)
    for value in np.unique(g):
        layout = _layout(topology, value)
        most = _most_ranks(topology, value)
        for op in np.unique(ops[g == value]):
            rows = np.flatnonzero((g == value) & (ops == op))
            if nranks[rows].max() > most:
                raise NcbenchError(
                    f"results span {nranks[rows].max():.0f} ranks at {value:.0f} per node, but {topology.name} "
                    f"connects at most {most}; use a larger topology",
                    EXIT_DATAERR,
                )
            shape = alg.shape(layout, nranks[rows], g=int(value))
            for name in sorted(set(algos[rows])):
                chosen = np.flatnonzero(algos[rows] == name)
                part = shape if chosen.size == rows.size else alg.shape(layout, nranks[rows[chosen]], g=int(value))
                yield rows[chosen], alg.cost(op, name, part)


def _linearise(frame, topology: Topology, theta: np.ndarray, groups, allowed, tuner: np.ndarray) -> _Rows:
    """Return the rows' linear coefficients at theta, each under the allowed protocol NCCL's tuner picks.

    `allowed` [R, len(PROTOCOLS)] says which protocols each row may use (`_choices`); by default all for
    NCCL rows and Simple for the others. `tuner`: the parameters the library chooses with (its own constants,
    cost.tuner; docs/cost-model.md, "The tuner chooses, the hardware pays"): the fastest protocol there,
    whatever the fitted theta would make fastest.
    """
    params = alg.Params.from_vector(theta, len(topology.tiers))
    tuned = alg.Params.from_vector(tuner, len(topology.tiers))
    nbytes = frame["nbytes"].astype(float).to_numpy()
    if allowed is None:
        allowed = _default_protocols(frame, topology)
    constant = np.zeros(len(frame))
    design = np.zeros((len(frame), theta.size))
    choices = []
    for rows, terms in groups:
        best_time = np.full(rows.size, np.inf)
        usable = allowed[rows] & np.array([name in terms.protocols for name in alg.PROTOCOLS])
        usable[~usable.any(axis=1), list(alg.PROTOCOLS).index("simple")] = True  # NCCL_PROTO left it none: Simple
        for j, (name, protocol) in enumerate(alg.PROTOCOLS.items()):
            if not usable[:, j].any():
                continue
            priced = alg.with_protocol(terms, protocol)
            c, a = alg.linear_rows(priced, params, nbytes[rows])
            c0, a0 = alg.linear_rows(alg.as_tuned(priced), tuned, nbytes[rows])
            time = c0 + a0 @ tuner
            better = usable[:, j] & (time < best_time)
            best_time = np.where(better, time, best_time)
            constant[rows[better]] = c[better]
            design[rows[better]] = a[better]
            choices.append((name, tuple(np.flatnonzero(better))))
    return _Rows(constant, design, tuple(choices))


def _solve(rows: _Rows, measured: np.ndarray, theta0: np.ndarray, free: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (theta, resolution diagonal): MAP of relative errors, log-normal prior at the nominal values.

    Parameters are scales (latency, 1/bandwidth), so the prior is on log(theta / nominal) and the fit is a
    few Gauss-Newton steps in those logs; a parameter can never turn negative.
    """
    fixed = rows.constant + rows.design[:, ~free] @ theta0[~free]
    design = rows.design[:, free] * theta0[free]  # d time / d (theta / nominal)
    k = design.shape[1]
    u = np.zeros(k)
    for _ in range(GAUSS_NEWTON_STEPS):
        scale = np.exp(u)
        predicted = fixed + design @ scale
        jacobian = design * scale / measured[:, None] / NOISE
        residual = (measured - predicted) / measured / NOISE
        a = np.vstack([jacobian, np.eye(k) / PRIOR_LOG_SD])
        b = np.concatenate([residual, -u / PRIOR_LOG_SD])
        step, *_ = np.linalg.lstsq(a, b, rcond=None)
        u += np.clip(step, -1.0, 1.0)  # damped: one e-fold per step at most
        if np.max(np.abs(step)) < 1e-6:
            break
    scale = np.exp(u)
    jacobian = design * scale / measured[:, None] / NOISE
    data = jacobian.T @ jacobian
    resolution = np.diag(np.linalg.solve(data + np.eye(k) / PRIOR_LOG_SD**2, data))
    theta = theta0.copy()
    theta[free] = theta0[free] * scale
    return theta, resolution


def fit(
    results,
    topology: Topology,
    *,
    algorithm="ring",
    sources=(),
    files=None,
    meta=None,
    where="",
    samples=SAMPLES,
    seed=0,
) -> Fit:
    """Fit base latency, and latency and bandwidth per tier, to `results`; keep unconstrained ones nominal.

    Rows of unknown scale are refused by name (`files`: {run_id: results file} names their files); runs the
    topology cannot connect are left out and named in `Fit.left_out`. `sources` (the files or folders the rows
    came from) is recorded in the summary beside the run ids, which is how a report matches a fit to results.
    `meta` ({run_id: sidecar}, records.runs_of) lets an NCCL run's recorded NCCL_ALGO / NCCL_PROTO choose its
    rows' algorithm and protocols (`_choices`). `where` names the topology in messages (its file).
    `Fit.warning` says when the rows cross fewer tiers than the topology has.
    """
    check_scale(results, files)
    results, left = describable(results, topology)
    note = left_out_text(topology, left, files) if left else ""
    frame = usable(results).reset_index(drop=True)
    if frame.empty and note:
        raise NcbenchError(
            f"nothing left to fit: {where or topology.name}: {note}; use a larger topology", EXIT_DATAERR
        )
    if frame.empty:
        raise NcbenchError(
            "no usable rows to fit: every row was untimed, wrong, or had fewer than 2 ranks", EXIT_DATAERR
        )
    measured = frame["time_us"].astype(float).to_numpy()
    theta0 = alg.nominal(topology).vector()
    algos, allowed, notes = _choices(frame, topology, meta, algorithm, files)
    groups = list(_groups(frame, topology, algorithm, algos))
    tuner = alg.tuner(topology)  # the design's values, also when `topology` is itself a fitted file
    rows, used, resolution = _converge(frame, topology, measured, theta0, groups, allowed, tuner)
    constrained = np.zeros(theta0.size, bool)
    constrained[np.flatnonzero(used)[resolution > RESOLVED]] = True
    theta, _ = _solve(rows, measured, theta0, constrained)  # the others stay exactly nominal
    theta, carried, shift = _carry_up(theta, theta0, constrained, used, len(topology.tiers))
    boot = _bootstrap(rows, measured, theta0, constrained, theta, samples, seed)
    predicted = rows.constant + rows.design @ theta
    names = alg.parameter_names(topology)
    table = _parameter_table(names, tuner, theta, constrained, boot, carried)  # nominal: the tuner's values
    per_doubling = _extrapolation_error(rows, measured, frame["nranks"].astype(float).to_numpy(), theta0, constrained)
    info = _summary(frame, measured, predicted, table, used, boot, algorithm, sources, *per_doubling)
    residuals = frame[["op", "nranks", "ranks_per_node", "nbytes", "time_us"]].copy()
    residuals["predicted_us"] = predicted
    residuals["error_pct"] = 100 * (predicted / measured - 1)
    warning = _reach_warning(frame, topology, table, names[shift[0]] if shift else "", shift[1] if shift else 0.0)
    fitted = _fitted_topology(topology, theta, constrained, info, carried)
    return Fit(fitted, table, residuals, note, warning, tuple(notes))


def _carry_up(theta, theta0, constrained, used, ntiers: int):
    """Return (theta, carried mask, (source index, change) or None): untouched network tiers above the data
    take the fitted latency change of the highest fitted network tier.

    A network step's cost is mostly the endpoints' (proxy, NIC, PCIe), which every tier shares: NCCL's tuner
    charges one network latency whatever the tier. The nominal differences between tiers are the switch hops
    the data cannot see, so an untouched tier s above the highest fitted network tier k keeps its nominal
    difference to k: alpha_s = alpha_s0 + (alpha_k - alpha_k0), never below alpha_k (docs/cost-model.md,
    "Tiers the data do not reach"). Bandwidths are not carried: on Summit's tree, carrying either the top
    fitted tier's or the NIC tier's ratio made the large scales worse.
    """
    out, carried = theta.copy(), np.zeros(theta.size, bool)
    fitted = [s for s in range(1, ntiers) if constrained[1 + s]]
    if not fitted:
        return out, carried, None
    k = 1 + fitted[-1]
    for i in range(k + 1, 1 + ntiers):
        if not (used[i] or constrained[i]):  # a tier the rows touch stays what the solve left it
            out[i], carried[i] = max(theta0[i] + theta[k] - theta0[k], theta[k]), True
    return out, carried, ((k, float(theta[k] - theta0[k])) if carried.any() else None)


def _reach_warning(frame, topology: Topology, table, source: str = "", change_us: float = 0.0) -> str:
    """Return one line when the rows cross fewer tiers than the topology has, else "".

    The line names the tiers the rows reach (cost.Shape.top at each row's ranks per node), the tiers that stay
    nominal, and the parameters the fit moved (the constrained ones).
    """
    per_node = _per_node(frame, topology)
    nranks = frame["nranks"].astype(float).to_numpy()
    top = max(
        int(alg.shape(_layout(topology, value), nranks[per_node == value], g=int(value)).top.max())
        for value in np.unique(per_node)
    )
    names = [tier.name for tier in topology.tiers]
    if top >= len(names) - 1:
        return ""
    moved = table.loc[table["constrained"], "parameter"].tolist()
    above, one = ", ".join(names[top + 1 :]), top + 2 == len(names)
    if not source:
        kept = f"{above} {'keeps its' if one else 'keep their'} nominal parameters"
    else:  # _carry_up moved their latencies by the change fitted on `source`
        kept = (
            f"{above} {'keeps its' if one else 'keep their'} nominal bandwidths and "
            f"{'takes' if one else 'take'} {source.split('.')[0]}'s fitted latency change ({change_us:+.2f} us)"
        )
    return (
        f"the rows (at most {nranks.max():.0f} ranks) reach only {', '.join(names[: top + 1])} of "
        f"{topology.name}'s {len(names)} tiers; {kept}; the fit moved {', '.join(moved) if moved else 'no parameter'}"
    )


def _converge(frame, topology: Topology, measured, theta0, groups, allowed, tuner):
    """Return (rows, parameters the rows touch, resolution) once the binding-phase choices settle.

    A pipelined cost is the max of its phases, so the fit could stay with the phase that binds at the nominal
    values (NVLink, say) and bend latencies to explain a slower network it never frees. It starts once from
    the nominal values and once with each network tier's bandwidth made the binding one. Another start wins
    only when its settled fit at least halves the nominal start's `_objective` (DECISIVE): with a handful of
    rows, a binding that explains them slightly better is as likely an overfit as the truth.
    """
    best = None
    for start in _starts(theta0, topology):
        rows = _linearise(frame, topology, start, groups, allowed, tuner)
        for _ in range(ITERATIONS):
            used = np.any(rows.design != 0, axis=0)
            theta, resolution = _solve(rows, measured, theta0, used)
            again = _linearise(frame, topology, theta, groups, allowed, tuner)
            # settled: the same binding phases and floors (the same coefficients in use); the protocols are the
            # tuner's, the same at every theta
            settled = np.array_equal(again.design != 0, rows.design != 0)
            rows = again
            if settled:
                break
        score = _objective(rows, measured, theta0, theta)
        if best is None or score < DECISIVE * best[0]:
            best = (score, rows, used, resolution)
    return best[1:]


def _starts(theta0: np.ndarray, topology: Topology) -> list[np.ndarray]:
    """Return the nominal values, then one start per network tier with its 1/bandwidth 10x (so it binds)."""
    ntiers = len(topology.tiers)
    starts = [theta0]
    for tier in range(1, ntiers):
        start = theta0.copy()
        start[1 + ntiers + tier] *= 10.0
        starts.append(start)
    return starts


def _objective(rows: _Rows, measured, theta0, theta) -> float:
    """Return what _solve minimises: squared relative misfit over NOISE, plus the log-normal prior."""
    predicted = rows.constant + rows.design @ theta
    misfit = np.sum(((measured - predicted) / measured / NOISE) ** 2)
    return float(misfit + np.sum((np.log(theta / theta0) / PRIOR_LOG_SD) ** 2))


def _parameter_table(names, nominal, theta, constrained, boot, carried):
    import pandas as pd

    low, high = np.percentile(boot, [2.5, 97.5], axis=0)
    return pd.DataFrame(
        {
            "parameter": names,
            "nominal": nominal,
            "value": theta,
            "low": np.where(constrained, low, theta),  # unconstrained: as the file had it, or carried up
            "high": np.where(constrained, high, theta),
            "constrained": constrained,
            "carried": carried,
        }
    )


def _summary(
    frame, measured, predicted, table, used, boot, algorithm, sources, per_doubling, scales
) -> topo_mod.FitSummary:
    """Return the FitSummary of a fit: quality, covariance of the constrained parameters, what it came from."""
    constrained = table["constrained"].to_numpy()
    logs = np.log(boot[:, constrained])
    cov = np.atleast_2d(np.cov(logs.T) if constrained.sum() > 1 else np.var(logs, axis=0, keepdims=True))
    log_error = np.log(measured / predicted)
    relative = np.abs(np.expm1(-log_error))
    per = {
        r.parameter: topo_mod.ParameterFit(
            float(r.nominal), float(r.value), float(r.low), float(r.high), bool(r.constrained)
        )
        for r in table.itertuples()
    }
    names = table["parameter"].tolist()
    return topo_mod.FitSummary(
        algorithm=algorithm,
        points=len(frame),
        residual_log_sd=float(np.sqrt(np.mean(log_error**2))),
        median_abs_error_pct=float(100 * np.median(relative)),
        max_abs_error_pct=float(100 * np.max(relative)),
        parameters=tuple(n for n, c in zip(names, constrained, strict=True) if c),
        log_covariance=tuple(tuple(map(float, row)) for row in cov) if constrained.any() else (),
        unconstrained=tuple(n for n, c, u in zip(names, constrained, used, strict=True) if not c and u),
        max_gpus=int(frame["nranks"].max()),
        extrapolation_log_sd_per_doubling=per_doubling,
        extrapolation_scales=scales,
        runs=tuple(sorted(map(str, frame["run_id"].unique()))) if "run_id" in frame else (),
        results=tuple(map(str, sources)),
        parameter=per,
    )


def model_times(results, topology: Topology, *, algorithm: str = "ring", meta: dict | None = None):
    """Return the usable rows with the topology's own model time for each (predicted_us, error_pct).

    `meta` ({run_id: sidecar}) applies the runs' NCCL_ALGO / NCCL_PROTO as `fit` does. NcbenchError (65) when
    no row is one the model describes, or the rows exceed what the topology connects.
    """
    frame = usable(results).reset_index(drop=True)
    if frame.empty:
        raise NcbenchError(
            f"{topology.name} describes none of these results: no timed, correct, multi-rank row of a modelled "
            f"op ({', '.join(alg.OPS)})",
            EXIT_DATAERR,
        )
    theta = alg.nominal(topology).vector()
    algos, allowed, _ = _choices(frame, topology, meta, algorithm)
    groups = list(_groups(frame, topology, algorithm, algos))
    rows = _linearise(frame, topology, theta, groups, allowed, alg.tuner(topology))
    out = frame[["run_id", "op", "backend", "nranks", "ranks_per_node", "nbytes", "time_us"]].copy()
    out["predicted_us"] = rows.constant + rows.design @ theta
    out["error_pct"] = 100 * (out["predicted_us"] / out["time_us"] - 1)
    return out


def _extrapolation_error(rows: _Rows, measured, nranks, theta0, free) -> tuple[float, int]:
    """Return how wrong the model is per doubling of scale beyond its data, measured on the data itself,
    and how many forward-chained predictions that rests on.

    Forward chaining: fit the scales below each one and predict it. Errors of a model whose form is wrong
    grow with the distance extrapolated; their variance per doubling widens `predict`'s band beyond max_gpus.
    """
    scales = np.unique(nranks)
    ratios = []
    for j in range(2, scales.size):
        below = nranks < scales[j]
        at = nranks == scales[j]
        sub = _Rows(rows.constant[below], rows.design[below], ())
        theta, _ = _solve(sub, measured[below], theta0, free & np.any(rows.design[below] != 0, axis=0))
        error = np.log(measured[at] / (rows.constant[at] + rows.design[at] @ theta))
        ratios.append(np.mean(error**2) / np.log2(scales[j] / scales[j - 1]))
    return (float(np.sqrt(np.mean(ratios))) if ratios else 0.0), len(ratios)


def _bootstrap(rows: _Rows, measured, theta0, free, theta, samples: int, seed: int) -> np.ndarray:
    """Return parameter draws [samples, K] from a residual bootstrap.

    The scales and sizes were chosen by whoever measured, so the design stays fixed and the relative
    residuals are resampled onto the fitted times (resampling rows would leave some draws with one scale).
    """
    from ..progress import Progress

    rng = np.random.default_rng(seed)
    fitted = rows.constant + rows.design @ theta
    residuals = np.log(measured / fitted)
    out = []
    step = Progress("fit: bootstrap", samples)
    for _ in range(samples):
        synthetic = fitted * np.exp(rng.choice(residuals, residuals.size))
        out.append(_solve(rows, synthetic, theta0, free)[0])
        step()
    step.done()
    return np.array(out)


def _fitted_topology(topology: Topology, theta, constrained, info: topo_mod.FitSummary, carried=None) -> Topology:
    ntiers = len(topology.tiers)
    params = alg.Params.from_vector(theta, ntiers)
    shared = alg.shared(topology)
    carried = np.zeros(theta.size, bool) if carried is None else carried  # latencies only (_carry_up)
    tiers = []
    for i, tier in enumerate(topology.tiers):
        sources = dict(tier.sources)
        changes = {}
        how = "ncbench fit, carried up from the highest fitted tier" if carried[1 + i] else "ncbench fit"
        if constrained[1 + i] or carried[1 + i]:
            changes["latency_us"] = float(params.alpha_us[i])
            sources["latency_us"] = f"{how} (nominal {tier.latency_us}: {sources.get('latency_us', '')})"
        for j, (rate, eff) in enumerate((("bandwidth_GBps", "efficiency"), ("bandwidth_GBps", "reduction_efficiency"))):
            if not constrained[1 + ntiers * (1 + j) + i]:
                continue
            achieved = shared[i] / params.inv_GBps[ntiers * j + i]
            fraction = achieved / tier.bandwidth_GBps
            if fraction > 1:  # faster than the nominal line rate: the nominal was wrong, say so
                changes[rate] = float(achieved)
                sources[rate] = f"ncbench fit exceeded the nominal {tier.bandwidth_GBps} GB/s; set to the fitted rate"
                fraction = 1.0
            changes[eff] = float(fraction)
            sources[eff] = f"ncbench fit (nominal {getattr(tier, eff)})"
        tiers.append(replace(tier, **changes, sources=sources))
    base = float(params.base_us) if constrained[0] else topology.base_latency_us
    top_sources = dict(topology.sources)
    if constrained[0]:
        top_sources["base_latency_us"] = f"ncbench fit (nominal {topology.base_latency_us})"
    return replace(
        topology,
        name=f"{topology.name}.fitted",
        tiers=tuple(tiers),
        base_latency_us=base,
        sources=top_sources,
        fit=info,
    )


def summary(result: Fit) -> str:
    """Return the fit as text: quality, then every parameter with its band and whether data constrained it."""
    info = result.topology.fit
    lines = [
        (
            f"fit of {result.topology.name} ({info.algorithm}): {info.points} points, median |error| "
            f"{info.median_abs_error_pct:.1f} %, max {info.max_abs_error_pct:.1f} %"
        ),
        f"{'parameter':<36} {'nominal':>11} {'fitted':>11} {'low':>11} {'high':>11}  constrained",
    ]
    for row in result.parameters.itertuples():
        name, value, nominal_, low, high = row.parameter, row.value, row.nominal, row.low, row.high
        if name.endswith(("inverse_GBps", "inverse_reduction_GBps")):  # print bandwidths, not inverses
            name = name.replace("inverse_reduction_GBps", "reduction_GBps").replace("inverse_GBps", "bandwidth_GBps")
            value, nominal_, low, high = 1 / value, 1 / nominal_, 1 / high, 1 / low
        mark = "yes" if row.constrained else "no (carried up)" if row.carried else "no (kept)"
        lines.append(f"{name:<36} {nominal_:>11.4g} {value:>11.4g} {low:>11.4g} {high:>11.4g}  {mark}")
    return "\n".join(lines) + "\n"
