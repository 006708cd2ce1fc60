"""Plan a nightly check at scale: the real suite's scheduling and attribution on a simulated fabric.

topology file + node count + injected faults (slow nodes, slow NICs, slow switch links) -> the same
Orchestrator the MPI run uses, fed by a Runner that computes each test's bandwidth -> rounds used,
wall time, and what was found, missed or wrongly blamed.
"""

from dataclasses import dataclass

import numpy as np

from .. import records
from . import FAIL, plan
from .judge import Criteria
from .suite import SUITES, Orchestrator, Results, Round

NOMINAL_GBPS = 48.0  # a healthy 400G NIC's send/recv busbw (published.csv: ~48-49 GB/s per rail)


@dataclass(frozen=True)
class Faults:
    nodes: tuple[int, ...] = ()  # slow in every inter-node test (host-side: node-local tests do not see it)
    nics: tuple[tuple[int, int], ...] = ()  # (node, rail): slow in everything on that rail, loopback included
    links: tuple[int, ...] = ()  # switch link ids (plan.flow_links numbering)
    paths: tuple[tuple[int, int, int], ...] = ()  # (a, b, rail): slow only between these two nodes (a bad path)
    factor: float = 0.5  # a faulty element runs at this fraction of its bandwidth


def draw_faults(fabric: plan.Fabric, rng, *, nodes: int, nics: int, links: int, factor: float) -> Faults:
    """Return faults at distinct random places; each link is one on the path of a random fabric flow."""
    bad_nodes = rng.choice(fabric.nodes, size=nodes, replace=False)
    nic_nodes = rng.choice(np.setdiff1d(np.arange(fabric.nodes), bad_nodes), size=nics, replace=False)
    nic_rails = rng.integers(0, fabric.rails, size=nics)
    rounds = plan.shift_rounds(fabric)
    chosen: set[int] = set()
    everyone = np.ones(fabric.nodes, dtype=bool)
    while rounds and len(chosen) < links:
        src, dst = plan.shift_flows(fabric, everyone, *rounds[rng.integers(len(rounds))])
        i = rng.integers(len(src))
        path = plan.flow_links(fabric, src[i : i + 1], dst[i : i + 1], rng.integers(fabric.rails, size=1))[0]
        chosen.add(int(rng.choice(path[path >= 0])))
    return Faults(
        nodes=tuple(int(n) for n in bad_nodes),
        nics=tuple(zip(map(int, nic_nodes), map(int, nic_rails))),
        links=tuple(sorted(chosen)),
        factor=factor,
    )


class SimRunner:
    """Computes each test's busbw from the faults on its path, with log-normal measurement noise."""

    node_allreduce = True
    noise_floor = 0.0

    def __init__(self, fabric: plan.Fabric, faults: Faults, *, noise: float, rng):
        self.fabric, self.faults, self.noise, self.rng = fabric, faults, noise, rng
        self.names = [f"node{n:06d}" for n in range(fabric.nodes)]
        self.unreachable = np.zeros(fabric.nodes, dtype=bool)
        self.slow_node = np.zeros(fabric.nodes, dtype=bool)
        self.slow_node[list(faults.nodes)] = True
        self.slow_nic = np.zeros((fabric.nodes, fabric.rails), dtype=bool)
        for node, rail in faults.nics:
            self.slow_nic[node, rail] = True
        self.slow_link = np.zeros(fabric.rails * 4 * fabric.link_space, dtype=bool)
        self.slow_link[list(faults.links)] = True

    def round(self, stage: str, tests: Round) -> Results:
        n = len(tests)
        hit = np.zeros(n, dtype=bool)
        rail = np.maximum(tests.rail, 0)
        loop = tests.kind == "loopback"
        hit[loop] = self.slow_nic[tests.a[loop], rail[loop]]
        pair = ~loop & (tests.b >= 0)
        a, b, r = tests.a[pair], tests.b[pair], rail[pair]
        path = self.slow_node[a] | self.slow_node[b] | self.slow_nic[a, r] | self.slow_nic[b, r]
        both_ways = tests.kind[pair] != "flow"  # pair tests exchange; fabric flows go one way
        path |= self._crosses_slow_link(a, b, r)
        path[both_ways] |= self._crosses_slow_link(b[both_ways], a[both_ways], r[both_ways])
        for x, y, rail_xy in self.faults.paths:
            path |= (((a == x) & (b == y)) | ((a == y) & (b == x))) & (r == rail_xy)
        hit[pair] = path
        value = NOMINAL_GBPS * np.where(hit, self.faults.factor, 1.0) * np.exp(self.rng.normal(0.0, self.noise, n))
        none = np.zeros(n, dtype=bool)
        return Results(value, none, none.copy(), np.full(n, self.noise))  # own spread ~ the simulated noise

    def _crosses_slow_link(self, src, dst, rail) -> np.ndarray:
        if not self.faults.links:
            return np.zeros(len(src), dtype=bool)
        links = plan.flow_links(self.fabric, src, dst, rail)
        return (self.slow_link[np.maximum(links, 0)] & (links >= 0)).any(axis=1)


def truth_ids(fabric: plan.Fabric, faults: Faults, names: list[str]) -> dict[str, str]:
    """Return entity id -> kind for every injected fault, as the verdict would name it."""
    ids = {names[n]: "node" for n in faults.nodes}
    ids.update({f"{names[n]}/rail{r}": "nic" for n, r in faults.nics})
    ids.update({plan.describe_link(fabric, link): "link" for link in faults.links})
    return ids


def score(entities: list[dict], truth: dict[str, str]) -> dict:
    """Return found / missed / wrongly blamed: FAIL entities against the injected faults."""
    blamed = {e["id"] for e in entities if e["status"] == FAIL}
    return {
        "found": sorted(blamed & set(truth)),
        "missed": sorted(set(truth) - blamed),
        "wrongly_blamed": sorted(blamed - set(truth)),
        "suspects": sorted({e["id"] for e in entities if e["status"] != FAIL} - set(truth))[:20],
    }


def simulate(
    topology,
    *,
    nodes: int,
    bad_nodes: int,
    bad_links: int,
    bad_nics: int = 0,
    factor: float = 0.5,
    noise: float = 0.02,
    seed: int = 0,
    suite: str = "nightly",
    criteria: Criteria | None = None,
) -> dict:
    """Run the suite once on a simulated fabric; return rounds and the score."""
    from ..errors import NcbenchError

    if nodes < 2:
        raise NcbenchError(f"--nodes {nodes}: a fabric check needs at least 2 nodes")
    if bad_nodes + bad_nics > nodes // 4:
        raise NcbenchError(
            f"{bad_nodes} bad nodes and {bad_nics} bad NICs in {nodes} nodes: keep faults under a quarter of the nodes"
        )
    if not 0 < factor < 1:
        raise NcbenchError(f"--factor {factor}: a faulty element runs at a fraction of its bandwidth, 0 < f < 1")
    fabric = plan.from_topology(topology, nodes)
    rng = np.random.default_rng(seed)
    faults = draw_faults(fabric, rng, nodes=bad_nodes, nics=bad_nics, links=bad_links, factor=factor)
    runner = SimRunner(fabric, faults, noise=noise, rng=rng)
    outcome = Orchestrator(runner, fabric, SUITES[suite], criteria or Criteria(), baseline=None).run()
    return {
        "rounds": outcome.rounds,
        "stages": outcome.stages,
        **score(outcome.entities, truth_ids(fabric, faults, runner.names)),
        "fabric": {
            "nodes": fabric.nodes,
            "rails": fabric.rails,
            "hosts_per_leaf": fabric.hosts_per_leaf,
            "leaves_per_pod": fabric.leaves_per_pod,
            "leaves": fabric.leaves,
            "pods": fabric.pods,
        },
    }


def trials(topology, *, trials: int, seed: int, round_s: float, **kw) -> dict:
    """Run `trials` seeded simulations; return the worst rounds, wall time and every finding, seed-labelled."""
    import time

    runs, t0 = [], time.perf_counter()
    for k in range(trials):
        runs.append({"seed": seed + k, **simulate(topology, seed=seed + k, **kw)})
    label = (lambda r, x: x) if trials == 1 else (lambda r, x: f"seed {r['seed']}: {x}")
    rounds = max(r["rounds"] for r in runs)
    out = {
        "rounds": rounds,
        "wall_s": rounds * round_s,
        "all_pairs_rounds": kw["nodes"] - 1 if kw["nodes"] % 2 == 0 else kw["nodes"],
        "trials": trials,
        "found": [label(r, x) for r in runs for x in r["found"]],
        "missed": [label(r, x) for r in runs for x in r["missed"]],
        "wrongly_blamed": [label(r, x) for r in runs for x in r["wrongly_blamed"]],
        "suspects": sum(len(r["suspects"]) for r in runs),
        "rounds_per_trial": [r["rounds"] for r in runs],
        "faults": {k: kw[k] for k in ("bad_nodes", "bad_links", "bad_nics", "factor", "noise")},
        "fabric": runs[0]["fabric"],
        "stages": runs[-1]["stages"],
        "simulation_s": round(time.perf_counter() - t0, 3),
    }
    return out


def render(result: dict, fmt: str) -> str:
    """Return the simulation as JSON or as the lines a planner reads."""

    if fmt == "json":
        return records.json_text(result, indent=1) + "\n"
    f, fab = result["faults"], result["fabric"]
    lines = [
        (
            f"# simulated fabric: {fab['nodes']:,} nodes x {fab['rails']} rails, {fab['hosts_per_leaf']} nodes per leaf, "
            f"{fab['leaves_per_pod']} leaves per pod per rail ({fab['leaves']:,} leaves, {fab['pods']:,} pods), static D-mod-k routing"
        ),
        (
            f"# faults per trial: {f['bad_nodes']} slow nodes, {f['bad_links']} slow links, {f['bad_nics']} slow NICs at "
            f"{f['factor']:g}x; measurement noise {f['noise']:g} (log sd); {result['trials']} trial(s)"
        ),
        f"rounds            {result['rounds']} (all-pairs sweep: {result['all_pairs_rounds']:,})",
        f"wall time         {result['wall_s']:,.0f} s at {result['wall_s'] / max(result['rounds'], 1):g} s per round",
        f"found             {len(result['found'])}",
        f"missed            {len(result['missed'])}"
        + (f": {', '.join(result['missed'][:5])}" if result["missed"] else ""),
        f"wrongly blamed    {len(result['wrongly_blamed'])}"
        + (f": {', '.join(result['wrongly_blamed'][:5])}" if result["wrongly_blamed"] else ""),
        f"suspects (WARN)   {result['suspects']}",
        f"simulation took   {result['simulation_s']:.2f} s",
    ]
    for s in result["stages"]:
        lines.append(
            f"  stage {s['stage']:<8} {s['status']:<7} {s['tests']:>9,} tests {s['slow']:>6,} slow  {s['note']}"
        )
    return "\n".join(lines) + "\n"
