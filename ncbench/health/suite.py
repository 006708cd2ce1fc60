"""The health suite's stages, one orchestrator for the real run and the simulation.

Runner (executes one round of tests: MPI ranks, or a simulated fabric) + Fabric + Suite + Criteria
+ baseline -> Night (entities with state and reason code, per-stage counts, rounds used).
Stages: local (node-local, attributes for free) -> pairs (per rail, in-leaf matching) -> confirm
(suspects with known-good partners: a second strike) -> retest (pairs neither end explains) ->
fabric (contention-free shifts; tomography names links) -> scale (whole-job collectives vs baseline).
"""

from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np

from . import FAIL, PASS, SKIPPED, UNKNOWN, WARN, judge, plan
from .judge import Criteria, Reference


@dataclass(frozen=True)
class Suite:
    name: str
    nbytes: int  # message size of loopback, pair and flow tests
    scale_bytes: tuple[int, ...] = ()  # whole-job allreduce sizes; () skips the scale stage
    fabric: bool = False  # run the shift rounds that name fabric links
    samples: int = 3  # timed samples per test; the best one counts (a check passes on its best repeat)
    iters: int = 4  # exchanges per sample


SUITES = {
    "quick": Suite("quick", nbytes=256 << 10, samples=5, iters=16),
    "nightly": Suite("nightly", nbytes=4 << 20, scale_bytes=(8, 4 << 20), fabric=True, samples=5, iters=16),
}


KIND = "U9"  # test kinds: loopback allreduce pair confirm retest flow world


@dataclass
class Round:
    """One round: test i runs `kind[i]` between nodes a[i] and b[i] (-1: none) on rail[i] (-1: all)."""

    kind: np.ndarray
    a: np.ndarray
    b: np.ndarray
    rail: np.ndarray
    nbytes: np.ndarray

    @classmethod
    def of(cls, kind, a, b, rail, nbytes) -> "Round":
        n = len(a)
        arr = np.asarray
        full = np.full
        return cls(
            full(n, kind, dtype=KIND) if isinstance(kind, str) else arr(kind, dtype=KIND),
            arr(a, dtype=np.int64),
            arr(b, dtype=np.int64),
            arr(rail, dtype=np.int64),
            full(n, nbytes, dtype=np.int64) if np.isscalar(nbytes) else arr(nbytes, dtype=np.int64),
        )

    def __len__(self) -> int:
        return len(self.a)

    def take(self, pick) -> "Round":
        """Return the tests selected by an index or mask array."""
        return Round(self.kind[pick], self.a[pick], self.b[pick], self.rail[pick], self.nbytes[pick])

    def __add__(self, other: "Round") -> "Round":
        return Round(
            *(np.concatenate([getattr(self, k), getattr(other, k)]) for k in ("kind", "a", "b", "rail", "nbytes"))
        )


@dataclass
class Results:
    value: np.ndarray  # busbw GB/s of each test (the best sample); NaN: no answer
    wrong_a: np.ndarray  # data sent from a arrived wrong
    wrong_b: np.ndarray
    spread: np.ndarray | None = None  # each test's own scatter, 1 - best / median sample; None: not measured

    def __post_init__(self):
        if self.spread is None:
            self.spread = np.zeros(len(self.value))

    @property
    def answered(self) -> np.ndarray:
        return np.isfinite(self.value)

    def take(self, pick) -> "Results":
        return Results(self.value[pick], self.wrong_a[pick], self.wrong_b[pick], self.spread[pick])


class Runner(Protocol):
    names: list[str]  # node names (host names)
    unreachable: np.ndarray  # nodes that stopped answering (bool per node), kept up to date by `round`
    node_allreduce: bool  # nodes hold more than one rank, so an intra-node allreduce means something
    noise_floor: float  # the least noise any test has here (ranks sharing cores: the scheduler's)

    def round(self, stage: str, tests: Round) -> Results: ...


@dataclass
class Night:
    """What one night of the suite found: every entity with its state and code, per-stage counts, rounds used."""

    entities: list[dict] = field(default_factory=list)
    stages: list[dict] = field(default_factory=list)
    rounds: int = 0
    classes: dict[str, float] = field(default_factory=dict)  # class key -> tonight's peer reference busbw
    nodes: int = 0
    unknown_nodes: int = 0


@dataclass(frozen=True)
class PairFindings:
    """What the pairs stage found, handed to confirm and then to retest (nothing kept on the orchestrator)."""

    ref: Reference  # the intra-leaf pairs' peer reference, which confirm and retest judge against too
    suspects: np.ndarray  # (node, rail): slow in the pairs round
    slow: "Round"  # the slow pair tests ...
    slow_values: np.ndarray  # ... their values (GB/s) ...
    slow_spreads: np.ndarray  # ... and their own spreads
    unpaired: np.ndarray  # nodes the matching left without a partner
    first_partner: dict[int, int]  # node -> its partner in the pairs round
    confirm_tested: np.ndarray | None = None  # (node, rail) measured (and answered) in confirm; None before it


@dataclass(frozen=True)
class FlowFindings:
    """What fabric shift rounds found, one round's or several added in order, handed to link attribution."""

    slow_rows: tuple[np.ndarray, ...]  # per round: the links each slow flow crossed (flows x 4, -1: none)
    cleared: np.ndarray  # links a good flow crossed (bool per link)
    noisy_links: frozenset[int]  # links on a slow flow too noisy to judge
    evidence: dict[int, list[dict]]  # link -> the evidence of the slow flows across it, in round order
    counts: np.ndarray  # tests, slow, unanswered

    @classmethod
    def none(cls, links: int) -> "FlowFindings":
        """Return what no round found yet: nothing slow, no link cleared, over `links` link ids."""
        return cls((), np.zeros(links, dtype=bool), frozenset(), {}, np.zeros(3, dtype=np.int64))

    def __add__(self, later: "FlowFindings") -> "FlowFindings":
        evidence = dict(self.evidence)
        for link, ev in later.evidence.items():
            evidence[link] = evidence.get(link, []) + ev
        return FlowFindings(
            self.slow_rows + later.slow_rows,
            self.cleared | later.cleared,
            self.noisy_links | later.noisy_links,
            evidence,
            self.counts + later.counts,
        )


class Orchestrator:
    """Runs the stages in order over one Runner, keeping what each stage learned."""

    def __init__(self, runner: Runner, fabric: plan.Fabric, suite: Suite, criteria: Criteria, baseline: dict | None):
        self.runner, self.fabric, self.suite, self.criteria = runner, fabric, suite, criteria
        self.baseline = baseline or {}
        self.failed = np.zeros((fabric.nodes, fabric.rails), dtype=bool)  # confirmed bad (node, rail): left out after
        self.out = Night(nodes=fabric.nodes)
        self.refs: dict[str, Reference] = {}  # class key -> tonight's reference, with its noise

    # ------------------------------------------------------------------------------------ plumbing

    def _round(self, stage: str, tests: Round) -> Results:
        results = self.runner.round(stage, tests)
        self.out.rounds += 1
        return results

    def _reference(self, key: str, res: Results) -> Reference:
        ref = judge.reference(res.value, self.baseline.get(key), res.spread)
        ref = replace(ref, noise=max(ref.noise, self.runner.noise_floor))
        if ref.count:  # the peer reference, not a plain median: with 2 tests, one slow pair must not halve it
            self.out.classes[key] = ref.value
            self.refs[key] = ref
        return ref

    def _evidence(self, value, ref: Reference, spread=float("nan"), **where) -> dict:
        return judge.evidence(value, ref, spread, self.criteria, **where)

    @staticmethod
    def _noisy(evidence) -> bool:
        """A finding with a strike its own noise could explain: too noisy to judge (WARN NCB-NOISY, no drain)."""
        return not all(e.get("beyond_noise", True) for e in evidence)

    def _entity(self, kind, ident, status, code, *, node=None, rail=None, evidence=(), noisy=False, **extra) -> None:
        if noisy and status in (FAIL, WARN):  # too noisy to judge: never a confirmed FAIL, never a drain
            status, code, extra = WARN, "NCB-NOISY", {**extra, "suspected": code}
        entry = {"kind": kind, "id": ident, "status": status, "code": code}
        if node is not None:
            entry["node"] = self.runner.names[node]
        if rail is not None:
            entry["rail"] = int(rail)
        self.out.entities.append({**entry, **extra, "evidence": list(evidence)})

    def _stage(self, name: str, tests: int, slow: int, unanswered: int, status: str = PASS, note: str = "") -> None:
        self.out.stages.append(
            {
                "stage": name,
                "tests": int(tests),
                "slow": int(slow),
                "unanswered": int(unanswered),
                "status": status,
                "note": note,
            }
        )

    def alive(self) -> np.ndarray:
        return ~self.runner.unreachable

    def _corrupt(self, stage: str, tests: Round, res: Results) -> None:
        for end, wrong in (("a", res.wrong_a), ("b", res.wrong_b)):
            for i in np.flatnonzero(wrong):
                node = int(getattr(tests, end)[i])
                rail = int(tests.rail[i])
                self._entity(
                    "nic",
                    f"{self.runner.names[node]}/rail{rail}",
                    FAIL,
                    "NCB-DATA-CORRUPT",
                    node=node,
                    rail=rail,
                    evidence=[{"stage": stage, "test": str(tests.kind[i]), "from": self.runner.names[node]}],
                )
                if rail >= 0:
                    self.failed[node, rail] = True

    def _unreachable(self, stage: str) -> None:
        # nodes already named unreachable; an unanswered pair (both ends alive) names no node
        known = {e["node"] for e in self.out.entities if e["code"] == "NCB-UNREACHABLE" and "node" in e}
        for node in np.flatnonzero(self.runner.unreachable):
            if self.runner.names[node] not in known:
                self._entity(
                    "node",
                    self.runner.names[node],
                    UNKNOWN,
                    "NCB-UNREACHABLE",
                    node=node,
                    evidence=[{"stage": stage, "note": "no answer within the round's deadline"}],
                )
                self.failed[node, :] = True

    # ------------------------------------------------------------------------------------ stages

    def local(self) -> None:
        """Loopback per (node, rail), and an allreduce inside each node: attribution needs no partner.

        A strike is re-measured alone in a second round before it counts: two strikes, as for pairs.
        """
        nodes = np.flatnonzero(self.alive())
        R = self.fabric.rails
        tests = Round.of(
            "loopback", np.repeat(nodes, R), np.repeat(nodes, R), np.tile(np.arange(R), len(nodes)), self.suite.nbytes
        )
        if self.runner.node_allreduce:
            tests = tests + Round.of(
                "allreduce", nodes, np.full(len(nodes), -1), np.full(len(nodes), -1), self.suite.nbytes
            )
        res = self._round("local", tests)
        self._unreachable("local")
        refs, slow = {}, np.zeros(len(tests), dtype=bool)
        for kind, key in (("loopback", "local.loopback"), ("allreduce", "local.allreduce")):
            pick = tests.kind == kind
            if pick.any():
                refs[kind] = self._reference(key, res.take(pick))
                slow[pick] = judge.strikes(res.value[pick], refs[kind], self.criteria, res.spread[pick])
        self._corrupt("local", tests, res)
        cleared = 0
        if slow.any():
            again = tests.take(slow)
            second = self._round("local retest", again)
            self._unreachable("local retest")
            for j, i in enumerate(np.flatnonzero(slow)):
                ref = refs[str(tests.kind[i])]
                if not judge.strikes(second.value[j : j + 1], ref, self.criteria, second.spread[j : j + 1])[0]:
                    cleared += 1
                    continue
                node, rail = int(tests.a[i]), int(tests.rail[i])
                ev = [
                    self._evidence(res.value[i], ref, res.spread[i], stage="local", test=str(tests.kind[i])),
                    self._evidence(
                        second.value[j], ref, second.spread[j], stage="local retest", test=str(tests.kind[i])
                    ),
                ]
                noisy = self._noisy(ev)
                if rail >= 0:
                    self._entity(
                        "nic",
                        f"{self.runner.names[node]}/rail{rail}",
                        FAIL,
                        "NCB-NIC-LOOPBACK",
                        node=node,
                        rail=rail,
                        evidence=ev,
                        noisy=noisy,
                    )
                    self.failed[node, rail] = not noisy
                else:
                    self._entity(
                        "node", self.runner.names[node], FAIL, "NCB-NODE-LOCAL", node=node, evidence=ev, noisy=noisy
                    )
                    self.failed[node, :] = not noisy
        note = f"{cleared} strike(s) cleared on a second measurement" if cleared else ""
        self._stage("local", len(tests), int(slow.sum()) - cleared, int((~res.answered).sum()), note=note)

    def _pair_tests(self, kind: str, a, b, rails=None) -> Round:
        """Round for node pairs on every rail neither end has failed on (or on the given rails)."""
        R = self.fabric.rails
        a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
        rail = np.tile(np.arange(R), len(a)) if rails is None else np.asarray(rails, dtype=np.int64)
        if rails is None:
            a, b = np.repeat(a, R), np.repeat(b, R)
        keep = ~self.failed[a, rail] & ~self.failed[b, rail]
        return Round.of(kind, a[keep], b[keep], rail[keep], self.suite.nbytes)

    def pairs(self) -> "PairFindings":
        """Round 1: every healthy node with a neighbour on its leaf, every rail at once; return what it found."""
        usable = self.alive() & ~self.failed.all(axis=1)
        a, b = plan.matching(self.fabric, usable)
        tests = self._pair_tests("pair", a, b)
        unpaired = plan.unpaired(self.fabric, usable, a, b)
        partner = {**{int(x): int(y) for x, y in zip(a, b)}, **{int(y): int(x) for x, y in zip(a, b)}}
        suspects = np.zeros_like(self.failed)
        if len(tests) == 0:
            self._stage("pairs", 0, 0, 0, SKIPPED, "fewer than two healthy nodes")
            none = Round.of("pair", [], [], [], 0)
            return PairFindings(
                judge.reference(np.array([])), suspects, none, np.array([]), np.array([]), unpaired, partner
            )
        res = self._round("pairs", tests)
        self._unreachable("pairs")
        ref = self._reference("pairs.intra_leaf", res)
        slow = judge.strikes(res.value, ref, self.criteria, res.spread)
        suspects[tests.a[slow], tests.rail[slow]] = True
        suspects[tests.b[slow], tests.rail[slow]] = True
        self._corrupt("pairs", tests, res)
        self._record_unanswered("pairs", tests, res)
        self._stage("pairs", len(tests), int(slow.sum()), int((~res.answered).sum()))
        return PairFindings(ref, suspects, tests.take(slow), res.value[slow], res.spread[slow], unpaired, partner)

    def _record_unanswered(self, stage: str, tests: Round, res: Results) -> None:
        """A test that timed out between two ends that both still answer: the path, UNKNOWN."""
        for i in np.flatnonzero(~res.answered):
            a, b = int(tests.a[i]), int(tests.b[i])
            if self.runner.unreachable[a] or (b >= 0 and self.runner.unreachable[b]):
                continue
            self._entity(
                "pair",
                f"{self.runner.names[a]}<->{self.runner.names[b]}/rail{tests.rail[i]}",
                UNKNOWN,
                "NCB-UNREACHABLE",
                rail=tests.rail[i],
                evidence=[{"stage": stage, "note": "test timed out"}],
            )

    def confirm(self, found: "PairFindings") -> "PairFindings":
        """Round 2: each suspect (and the node the matching left out) with a distinct known-good partner."""
        chosen = self._confirm_partners(found)
        if not chosen:
            return found
        s_arr, g_arr = np.array([c[0] for c in chosen]), np.array([c[1] for c in chosen])
        tests = self._pair_tests("confirm", s_arr, g_arr)
        res = self._round("confirm", tests)
        self._unreachable("confirm")
        slow = judge.strikes(res.value, found.ref, self.criteria, res.spread)
        second = slow & found.suspects[tests.a, tests.rail]  # slow again on the rail it was slow on: two strikes
        third, again = self._remeasure("confirm retest", tests, second, found.ref)  # and once more before it can FAIL
        for node in np.unique(tests.a[slow]):
            mine = np.flatnonzero((tests.a == node) & slow)
            ev = self._first_strike(node, found) + self._partner_evidence("confirm", tests, res, found.ref, mine)
            ev += self._partner_evidence("confirm retest", tests, again, found.ref, [i for i in mine if third[i]])
            noisy = self._noisy(ev)
            for status, pick in ((FAIL, third), (WARN, slow & ~second)):  # one strike (a new rail, or unpaired): WARN
                self._blame_rails(node, status, np.unique(tests.rail[(tests.a == node) & pick]), ev, noisy)
        self._corrupt("confirm", tests, res)
        self._record_unanswered("confirm", tests, res)
        tested = np.zeros_like(self.failed)
        tested[tests.a[res.answered], tests.rail[res.answered]] = True
        cleared = int((second & ~third).sum())
        note = f"{cleared} second strike(s) cleared on a re-measurement" if cleared else ""
        self._stage("confirm", len(tests), int(slow.sum()) - cleared, int((~res.answered).sum()), note=note)
        return replace(found, confirm_tested=tested)

    def _confirm_partners(self, found: "PairFindings") -> list[tuple[int, int]]:
        """Return (suspect, known-good partner) pairs to confirm with; none (and the stage recorded) if nothing to run.

        A candidate no partner was left for is flagged here, unconfirmed.
        """
        alive = self.alive()
        if alive.sum() < 2:
            self._stage("confirm", 0, 0, 0, SKIPPED, "one node: nobody to pair with")
            return []
        good = alive & ~found.suspects.any(axis=1) & ~self.failed.any(axis=1)
        suspect_nodes = np.flatnonzero(found.suspects.any(axis=1) & alive)
        candidates = list(suspect_nodes) + [int(n) for n in found.unpaired if alive[n]]
        if not candidates:
            self._stage("confirm", 0, 0, 0, SKIPPED, "no suspects")
            return []
        chosen = plan.confirm_partners(self.fabric, candidates, good, found.first_partner)
        partnered = {s for s, _ in chosen}
        for s in candidates:
            if s not in partnered:
                self._flag_unconfirmed(s, "no known-good partner was left to confirm with", found)
        if not chosen:
            self._stage("confirm", 0, 0, 0, WARN, "no known-good partners")
        return chosen

    def _partner_evidence(self, stage: str, tests: Round, res: Results, ref: Reference, picked) -> list[dict]:
        """Return the evidence of the picked tests (indices into `tests` and `res`), each naming its partner and rail."""
        return [
            self._evidence(
                res.value[i],
                ref,
                res.spread[i],
                stage=stage,
                partner=self.runner.names[tests.b[i]],
                rail=int(tests.rail[i]),
            )
            for i in picked
        ]

    def _blame_rails(self, node: int, status: str, rails: np.ndarray, ev: list[dict], noisy: bool) -> None:
        """Name a node slow on these rails: the whole node when it is every rail, else each rail's NIC.

        A FAIL that is not too noisy to judge leaves those (node, rail)s out of every later stage.
        """
        if not len(rails):
            return
        if len(rails) == self.fabric.rails:
            self._entity(
                "node",
                self.runner.names[node],
                status,
                "NCB-NODE-SLOW",
                node=node,
                evidence=ev,
                rails=[int(r) for r in rails],
                noisy=noisy,
            )
        else:
            for r in rails:
                self._entity(
                    "nic",
                    f"{self.runner.names[node]}/rail{r}",
                    status,
                    "NCB-RAIL-SLOW",
                    node=node,
                    rail=r,
                    evidence=[e for e in ev if e.get("rail") == r],
                    noisy=noisy,
                )
        if status == FAIL and not noisy:
            self.failed[node, rails] = True

    def _remeasure(self, stage: str, tests: "Round", pick: np.ndarray, ref: Reference) -> tuple[np.ndarray, Results]:
        """Measure the picked tests again, later; return (which are slow again, the new results by test index)."""
        again = Results(
            np.full(len(tests), np.nan),
            np.zeros(len(tests), dtype=bool),
            np.zeros(len(tests), dtype=bool),
            np.full(len(tests), np.nan),
        )
        if not pick.any():
            return np.zeros(len(tests), dtype=bool), again
        idx = np.flatnonzero(pick)
        res = self._round(stage, tests.take(idx))
        self._unreachable(stage)
        again.value[idx], again.spread[idx] = res.value, res.spread
        self._corrupt(stage, tests.take(idx), res)
        still = np.zeros(len(tests), dtype=bool)
        still[idx] = judge.strikes(res.value, ref, self.criteria, res.spread)
        return still, again

    def _first_strike(self, node: int, found: "PairFindings") -> list[dict]:
        sp = found.slow
        mine = np.flatnonzero((sp.a == node) | (sp.b == node))
        return [
            self._evidence(
                found.slow_values[i],
                found.ref,
                found.slow_spreads[i],
                stage="pairs",
                rail=int(sp.rail[i]),
                partner=self.runner.names[sp.b[i] if sp.a[i] == node else sp.a[i]],
            )
            for i in mine
        ]

    def _flag_unconfirmed(self, node: int, why: str, found: "PairFindings") -> None:
        if found.suspects[node].any():
            ev = self._first_strike(node, found)
            self._entity(
                "node",
                self.runner.names[node],
                WARN,
                "NCB-NODE-SLOW",
                node=node,
                noisy=self._noisy(ev),
                evidence=ev + [{"stage": "confirm", "note": why}],
            )
        else:
            self._entity(
                "node",
                self.runner.names[node],
                UNKNOWN,
                "NCB-SETUP",
                node=node,
                evidence=[{"stage": "pairs", "note": f"left without a partner; {why}"}],
            )

    def retest(self, found: "PairFindings") -> None:
        """Round 3 (only when needed): slow pairs neither of whose ends was slow with a known-good node."""
        sp = found.slow
        tested = found.confirm_tested if found.confirm_tested is not None else np.zeros_like(self.failed)
        cleared_a = tested[sp.a, sp.rail] & ~self.failed[sp.a, sp.rail]
        cleared_b = tested[sp.b, sp.rail] & ~self.failed[sp.b, sp.rail]
        pick = np.flatnonzero(cleared_a & cleared_b & self.alive()[sp.a] & self.alive()[sp.b])
        if not len(pick):
            why = "every slow pair was explained by a slow node" if len(sp) else "no slow pairs"
            self._stage("retest", 0, 0, 0, SKIPPED, why)
            return
        tests = Round.of("retest", sp.a[pick], sp.b[pick], sp.rail[pick], self.suite.nbytes)
        res = self._round("retest", tests)
        self._unreachable("retest")
        slow = judge.strikes(res.value, found.ref, self.criteria, res.spread)
        for j, i in enumerate(pick):
            a, b, r = int(sp.a[i]), int(sp.b[i]), int(sp.rail[i])
            if not res.answered[j]:
                continue
            ev = [
                self._evidence(found.slow_values[i], found.ref, found.slow_spreads[i], stage="pairs", rail=r),
                self._evidence(res.value[j], found.ref, res.spread[j], stage="retest", rail=r),
            ]
            noisy = self._noisy(ev)
            if slow[j]:
                self._entity(
                    "pair",
                    f"{self.runner.names[a]}<->{self.runner.names[b]}/rail{r}",
                    FAIL,
                    "NCB-PAIR-SLOW",
                    rail=r,
                    ends=[self.runner.names[a], self.runner.names[b]],
                    evidence=ev,
                    noisy=noisy,
                )
        self._record_unanswered("retest", tests, res)
        cleared = int((res.answered & ~slow).sum())
        note = f"{cleared} slow pair(s) cleared: fast on retest, and both ends fast with others" if cleared else ""
        self._stage("retest", len(tests), int(slow.sum()), int((~res.answered).sum()), note=note)

    def fabric_rounds(self) -> None:
        """Contention-free shift rounds; a link is named when it alone explains slow flows."""
        rounds = plan.shift_rounds(self.fabric)
        if not rounds:
            self._stage("fabric", 0, 0, 0, SKIPPED, "one leaf: no switch-to-switch link to test")
            return
        if self.fabric.adaptive_routing:
            self._stage(
                "fabric", 0, 0, 0, SKIPPED, "adaptive routing: paths are not fixed, tomography cannot name links"
            )
            return
        flows = FlowFindings.none(self.fabric.rails * 4 * self.fabric.link_space)
        for kind, offset in rounds:
            flows += self._shift_round(kind, offset)
        found = judge.localize_links(np.concatenate(flows.slow_rows), flows.cleared)
        self._name_links(found, flows)
        note = (
            f"{found.unexplained} slow flow(s) every link of which also carried a good flow"
            if found.unexplained
            else ""
        )
        self._stage("fabric", *flows.counts, note=note)

    def _shift_round(self, kind: str, offset: int) -> FlowFindings:
        """Run one shift round among the nodes still answering; return the links its slow and good flows crossed."""
        src, dst = plan.shift_flows(self.fabric, self.alive(), kind, offset)
        tests = self._pair_tests("flow", src, dst)
        res = self._round(f"fabric {kind} +{offset}", tests)
        self._unreachable("fabric")
        ref = self._reference(f"fabric.{kind}", res)
        slow = judge.strikes(res.value, ref, self.criteria, res.spread)
        noisy = ~judge.beyond_noise(res.value, ref, self.criteria, res.spread)  # a link FAILs on two slow flows
        links = plan.flow_links(self.fabric, tests.a, tests.b, tests.rail)
        cleared = np.zeros(self.fabric.rails * 4 * self.fabric.link_space, dtype=bool)
        good = links[res.answered & ~slow].ravel()
        cleared[good[good >= 0]] = True
        evidence: dict[int, list[dict]] = {}
        for i in np.flatnonzero(slow):
            for link in links[i][links[i] >= 0]:
                evidence.setdefault(int(link), []).append(
                    self._evidence(
                        res.value[i],
                        ref,
                        res.spread[i],
                        stage="fabric",
                        round=f"{kind} +{offset}",
                        flow=f"{self.runner.names[tests.a[i]]}->{self.runner.names[tests.b[i]]}",
                    )
                )
        self._corrupt("fabric", tests, res)
        return FlowFindings(
            (links[slow],),
            cleared,
            frozenset(int(x) for row in links[slow & noisy] for x in row[row >= 0]),
            evidence,
            np.array([len(tests), int(slow.sum()), int((~res.answered).sum())], dtype=np.int64),
        )

    def _name_links(self, found: judge.Localized, flows: FlowFindings) -> None:
        """Name each link the slow flows blame (FAIL on two flows), and each set of links one of which must be bad."""
        for link, count in found.blamed.items():
            name = plan.describe_link(self.fabric, link)
            self._entity(
                "link",
                name,
                FAIL if count >= 2 else WARN,
                "NCB-LINK-SLOW",
                rail=link // (4 * self.fabric.link_space),
                evidence=flows.evidence.get(link, [])[:4],
                slow_flows=count,
                noisy=link in flows.noisy_links,
            )
        for candidates in found.ambiguous[:100]:
            names = [plan.describe_link(self.fabric, c) for c in candidates]
            self._entity(
                "link",
                " | ".join(names),
                WARN,
                "NCB-LINK-SUSPECT",
                evidence=flows.evidence.get(candidates[0], [])[:2],
                candidates=names,
                noisy=set(candidates) <= flows.noisy_links,
            )

    def scale(self) -> None:
        """Whole-job allreduce at the suite's sizes, judged against the baseline (there are no peers)."""
        if self.runner.unreachable.any():
            self._stage("scale", 0, 0, 0, UNKNOWN, "ranks stopped answering: a whole-job collective would hang")
            return
        sizes = self.suite.scale_bytes
        tests = Round.of(
            "world", np.full(len(sizes), -1), np.full(len(sizes), -1), np.full(len(sizes), -1), list(sizes)
        )
        res = self._round("scale", tests)
        slow_count = 0
        for i, nbytes in enumerate(sizes):
            key = f"scale.allreduce.{nbytes}"
            ref = self._reference(key, res.take(slice(i, i + 1)))
            if judge.strikes(res.value[i : i + 1], ref, self.criteria, res.spread[i : i + 1])[0]:
                slow_count += 1
                noise = max(float(judge.noise_of(ref, res.spread[i : i + 1])[0]), ref.baseline_noise)
                noisy = res.value[i] >= self.criteria.noise_cut(noise) * ref.baseline_p50  # within the noise
                self._entity(
                    "job",
                    f"allreduce {nbytes} B",
                    WARN,
                    "NCB-SCALE-SLOW",
                    noisy=noisy,
                    evidence=[self._evidence(res.value[i], ref, stage="scale", nbytes=int(nbytes))],
                )
        note = (
            "" if any(f"scale.allreduce.{n}" in self.baseline for n in sizes) else "no baseline: recorded, not judged"
        )
        self._stage("scale", len(tests), slow_count, int((~res.answered).sum()), note=note)

    # ------------------------------------------------------------------------------------ shared causes

    def shared_causes(self) -> None:
        """Fleet below its baseline, or a rail or leaf failing together: one shared cause, not many bad nodes."""
        for key, tonight in self.out.classes.items():
            p50 = self.baseline.get(key, {}).get("p50")
            if not p50 or key.startswith("scale."):
                continue
            ref = self.refs[key]
            noise = max(ref.noise, ref.baseline_noise)  # tonight's scatter, and the baseline's from night to night
            if tonight < self.criteria.ratio(noise) * p50:
                self._entity(
                    "fleet",
                    key,
                    FAIL,
                    "NCB-SHARED-CAUSE",
                    drain=False,
                    noisy=tonight >= self.criteria.noise_cut(noise) * p50,
                    evidence=[
                        {
                            "class": key,
                            "peer_ref_tonight": round(tonight, 4),
                            "baseline_p50": p50,
                            "ratio_to_baseline": round(tonight / p50, 4),
                            "spread": round(ref.noise, 4),
                            "peer_spread": round(ref.baseline_noise, 4),
                        }
                    ],
                )
        failing = [e for e in self.out.entities if e["status"] == FAIL and e["kind"] in ("node", "nic") and "node" in e]
        groups: dict[str, tuple[int, list[dict]]] = {}  # key -> (nodes in the group, its failing entities)
        index = {name: n for n, name in enumerate(self.runner.names)} if failing else {}
        H = self.fabric.hosts_per_leaf
        for e in failing:
            leaf = self.fabric.leaf(index[e["node"]])
            for r in [e["rail"]] if "rail" in e else range(self.fabric.rails):
                groups.setdefault(f"rail{r}", (self.fabric.nodes, []))[1].append(e)
                groups.setdefault(f"rail{r} leaf{leaf}", (min(H, self.fabric.nodes - leaf * H), []))[1].append(e)
        grouped: set[int] = set()
        for key, (members, entries) in sorted(groups.items(), key=lambda kv: len(kv[0])):  # rails before leaves
            nodes = {e["node"] for e in entries}
            if len(nodes) >= max(self.criteria.shared_min, self.criteria.shared_fraction * members):
                if all(id(e) in grouped for e in entries):
                    continue
                self._entity(
                    "group",
                    key,
                    FAIL,
                    "NCB-SHARED-CAUSE",
                    drain=False,
                    members=sorted(nodes)[:10],
                    evidence=[{"failing_nodes": len(nodes), "members": members}],
                )
                grouped.update(id(e) for e in entries)
        self.out.entities = [e for e in self.out.entities if id(e) not in grouped]

    def run(self) -> Night:
        self.local()
        self.retest(self.confirm(self.pairs()))
        if self.suite.fabric:
            self.fabric_rounds()
        if self.suite.scale_bytes:
            self.scale()
        self.shared_causes()
        self.out.unknown_nodes = int(self.runner.unreachable.sum())
        return self.out
