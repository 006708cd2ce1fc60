"""Health without MPI: schedules, judging, the orchestrator on a noiseless simulated fabric, outputs, baselines."""

import json
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from ncbench.errors import NcbenchError
from ncbench.health import FAIL, PASS, UNKNOWN, WARN, baseline, history, judge, outputs, plan
from ncbench.health.simulate import Faults, SimRunner
from ncbench.health.suite import SUITES, Orchestrator

FABRIC = plan.Fabric(nodes=64, rails=2, hosts_per_leaf=4, leaves_per_pod=4)  # 16 leaves, 4 pods


# ------------------------------------------------------------------------------------------- plan


def test_matching_pairs_neighbours_on_one_leaf_and_leaves_odd_ones_over():
    alive = np.ones(10, dtype=bool)
    alive[[1, 6, 9]] = False
    fabric = plan.Fabric(nodes=10, hosts_per_leaf=4, leaves_per_pod=4)
    a, b = plan.matching(fabric, alive)
    pairs = sorted(zip(a.tolist(), b.tolist()))
    assert pairs == [(0, 2), (3, 7), (4, 5)]  # leaf 0: 0,2 (+3 odd); leaf 1: 4,5 (+7 odd); leaf 2: 8 alone
    assert plan.unpaired(fabric, alive, a, b).tolist() == [8]
    used = np.concatenate([a, b])
    assert len(set(used.tolist())) == len(used)


def test_confirm_partner_is_known_good_on_the_same_leaf_and_not_the_first_partner():
    good = np.ones(FABRIC.nodes, dtype=bool)
    good[[0, 1]] = False  # the suspects
    chosen = plan.confirm_partners(FABRIC, [0, 1], good, first_partner={0: 1, 1: 0})
    assert chosen == [(0, 2), (1, 3)]
    good[[2, 3]] = False  # nobody good left on leaf 0: the pod, then anyone
    assert plan.confirm_partners(FABRIC, [0], good, {})[0][1] == 4


@pytest.mark.parametrize("kind, offset", plan.shift_rounds(FABRIC))
def test_shift_rounds_are_contention_free_permutations(kind, offset):
    src, dst = plan.shift_flows(FABRIC, np.ones(FABRIC.nodes, dtype=bool), kind, offset)
    assert len(src) == FABRIC.nodes and sorted(dst.tolist()) == list(range(FABRIC.nodes))
    links = plan.flow_links(FABRIC, src, dst, np.zeros(len(src), dtype=np.int64))
    used = links[links >= 0]
    assert len(used) == len(set(used.tolist()))  # every switch link carries at most one flow
    assert (FABRIC.port(src) == FABRIC.port(dst)).all()


def test_flow_links_name_the_hops_of_static_routing():
    f = FABRIC
    same_pod = plan.flow_links(f, np.array([0]), np.array([5]), np.array([1]))[0]  # leaf 0 -> leaf 1, port 1
    assert [plan.describe_link(f, x) for x in same_pod[same_pod >= 0]] == [
        "rail1 leaf0->spine1(pod0)",
        "rail1 spine1(pod0)->leaf1",
    ]
    assert (same_pod[1:3] == -1).all()
    far = plan.flow_links(f, np.array([0]), np.array([16 + 5]), np.array([0]))[0]  # pod 0 -> pod 1, leaf 1, port 1
    names = [plan.describe_link(f, x) for x in far]
    assert names == [
        "rail0 leaf0->spine1(pod0)",
        "rail0 spine1(pod0)->core1.1",
        "rail0 core1.1->spine1(pod1)",
        "rail0 spine1(pod1)->leaf5",
    ]
    assert (plan.flow_links(f, np.array([0]), np.array([1]), np.array([0])) == -1).all()  # one leaf: no switch link


def test_rail_optimised_topology_shares_spines_among_rails():
    from ncbench.model import topology

    fabric = plan.from_topology(topology.load("topologies/colossus-spectrum-x-200k.toml"), 25000)
    assert (fabric.rails, fabric.hosts_per_leaf, fabric.leaves_per_pod) == (8, 64, 8)
    assert len(plan.shift_rounds(fabric)) == 4


# ------------------------------------------------------------------------------------------- judge


def test_small_classes_compare_with_the_best_and_large_ones_with_a_robust_z():
    few = judge.reference(np.array([10.0, 9.8, np.nan]))
    assert (few.value, few.count) == (10.0, 2) and np.isnan(few.sd)
    crit = judge.Criteria()
    assert judge.strikes(np.array([8.9, 9.5]), few, crit).tolist() == [True, False]
    many = np.r_[np.full(20, 10.0), 8.8]
    ref = judge.reference(many)
    assert ref.value == 10.0 and ref.sd == pytest.approx(0.1)  # MAD 0 is floored at 1 % of the median
    assert judge.strikes(many, ref, crit)[-1]
    wide = np.r_[np.linspace(7, 13, 20), 8.8]  # 0.88 of the median, but well inside a wide spread
    assert not judge.strikes(wide, judge.reference(wide), crit)[-1]


def test_a_dip_inside_the_tests_own_spread_is_no_strike():
    crit = judge.Criteria()
    few = judge.reference(np.array([10.0, 7.5]), spread=np.array([0.02, 0.02]))
    assert judge.strikes(np.array([7.5]), few, crit, np.array([0.02])).tolist() == [True]  # 0.75x, tight samples
    # the same 0.75x from a test whose own samples scattered 12 %: 3 x 12 % below is 0.64x, so no strike
    assert judge.strikes(np.array([7.5]), few, crit, np.array([0.12])).tolist() == [False]
    # ... nor when its peers scattered that much (the class's typical spread is the floor)
    loud = judge.reference(np.array([10.0, 7.5, 9.0]), spread=np.array([0.12, 0.01, 0.12]))
    assert judge.strikes(np.array([7.5]), loud, crit, np.array([0.01])).tolist() == [False]
    # far beyond any noise: a 50x slower test is a strike and beyond its noise
    assert judge.strikes(np.array([0.2]), loud, crit, np.array([0.01])).tolist() == [True]
    assert judge.beyond_noise(np.array([0.2]), loud, crit, np.array([0.01])).tolist() == [True]
    # spread is multiplicative: a pair 250x slower than its peers whose own samples spread 51 % (a loaded VM)
    # is still beyond its noise; a linear cut, 1 - 3 x 0.51, would have called nothing beyond it
    assert judge.beyond_noise(np.array([0.04]), loud, crit, np.array([0.51])).tolist() == [True]
    assert crit.noise_cut(0.01) == pytest.approx(1 - 3 * 0.01, abs=1e-3)  # small spreads: k spreads down


class ScriptedRunner:
    """Eight nodes on one rail whose tests return `value(tests)` GB/s with a fixed own spread; nothing wrong."""

    names = tuple(f"n{i}" for i in range(8))
    node_allreduce = False
    noise_floor = 0.0
    spread = 0.01

    def __init__(self):
        self.unreachable = np.zeros(len(self.names), dtype=bool)

    def round(self, stage, tests):
        from ncbench.health.suite import Results

        n = len(tests)
        return Results(self.value(tests), np.zeros(n, bool), np.zeros(n, bool), np.full(n, self.spread))


def test_a_strike_the_noise_could_explain_is_warn_noisy_never_fail_or_drain():
    class Loud(ScriptedRunner):
        """Every test of node 5 at 0.5x, with samples that scatter 25 %: slow, but not beyond its noise."""

        spread = 0.25

        def value(self, tests):
            return np.where((tests.a == 5) | (tests.b == 5), 5.0, 10.0)

    fabric = plan.Fabric(nodes=8, rails=1, hosts_per_leaf=8, leaves_per_pod=1)
    out = Orchestrator(Loud(), fabric, SUITES["quick"], judge.Criteria(), None).run()
    states = {(e["id"], e["status"], e["code"]) for e in out.entities}
    assert ("n5/rail0", WARN, "NCB-NOISY") in states and not any(s == FAIL for _, s, _ in states), states
    v = outputs.verdict(out, run={"run_id": "r", "suite": "quick"}, names=Loud.names, fabric={"rails": 1}, baseline={})
    assert v["status"] == WARN and outputs.drain_plan(v, max_drain_fraction=0.5, emulated=False)["nodes"] == {}
    assert "within the measurement's noise" in outputs.summary(v, {"note": "", "nodes": {}})[-1]


def test_a_confirmed_strike_that_clears_on_a_remeasurement_is_no_failure():
    class Once(ScriptedRunner):
        """Node 3 is slow (50x, tight samples) the first two times it is measured, then fine: a passing burst."""

        seen = 0

        def value(self, tests):
            hit = ((tests.a == 3) | (tests.b == 3)) & (tests.kind != "loopback")
            self.seen += int(hit.any())
            return np.where(hit & (self.seen <= 2), 0.2, 10.0)

    fabric = plan.Fabric(nodes=8, rails=1, hosts_per_leaf=8, leaves_per_pod=1)
    out = Orchestrator(Once(), fabric, SUITES["quick"], judge.Criteria(), None).run()
    assert not [e for e in out.entities if e["status"] == FAIL], out.entities
    confirm = next(s for s in out.stages if s["stage"] == "confirm")
    assert "cleared on a re-measurement" in confirm["note"]


def test_baseline_keeps_a_fleet_wide_drop_from_blaming_peers():
    values = np.r_[np.full(10, 8.0), 7.0]
    ref = judge.reference(values, {"p50": 7.5, "mad": 0.0})
    assert not judge.strikes(values, ref, judge.Criteria())[-1]  # 7.0 is 0.93 of the baseline


def test_localize_links_blames_only_the_single_uncleared_link():
    cleared = np.zeros(10, dtype=bool)
    cleared[[1, 2, 4]] = True
    slow = np.array([[0, 1, -1, -1], [0, 2, -1, -1], [3, 5, -1, -1], [1, 2, 4, -1]])
    found = judge.localize_links(slow, cleared)
    assert found.blamed == {0: 2} and found.ambiguous == [(3, 5)] and found.unexplained == 1


# ------------------------------------------------------------------------------------------- orchestrator


def run(faults: Faults, *, fabric=FABRIC, suite="nightly", unreachable=(), base=None, criteria=None):
    runner = SimRunner(fabric, faults, noise=0.0, rng=np.random.default_rng(0))
    runner.unreachable[list(unreachable)] = True
    return Orchestrator(runner, fabric, SUITES[suite], criteria or judge.Criteria(), base).run()


def by_id(outcome):
    return {e["id"]: e for e in outcome.entities}


def test_clean_fabric_passes_with_no_entities():
    out = run(Faults())
    assert out.entities == [] and out.rounds == 7  # local, pairs, 4 fabric shifts, scale (nothing to confirm)
    assert [s["stage"] for s in out.stages] == ["local", "pairs", "confirm", "retest", "fabric", "scale"]


def test_slow_node_is_confirmed_with_a_known_good_partner():
    out = run(Faults(nodes=(9,)))
    found = by_id(out)
    assert found["node000009"]["status"] == FAIL and found["node000009"]["code"] == "NCB-NODE-SLOW"
    assert len(found) == 1  # its first partner (node 8) passed with someone else
    stages = [e["stage"] for e in found["node000009"]["evidence"]]
    assert stages.count("pairs") == 2 and stages.count("confirm") == 2  # two strikes on each rail


def test_a_rail_slow_only_in_the_confirm_round_is_one_strike():
    from ncbench.health import suite

    class OnlyConfirmSlowOnRail1(SimRunner):
        def round(self, stage, tests):
            res = super().round(stage, tests)
            res.value[(tests.kind == "confirm") & (tests.a == 9) & (tests.rail == 1)] *= 0.5
            return res

    runner = OnlyConfirmSlowOnRail1(
        FABRIC, Faults(nics=(), paths=((8, 9, 0),)), noise=0.0, rng=np.random.default_rng(0)
    )
    out = suite.Orchestrator(runner, FABRIC, SUITES["quick"], judge.Criteria(), None).run()
    states = {(e["id"], e["status"]) for e in out.entities}
    assert ("node000009/rail1", WARN) in states  # slow on rail 1 once: a first strike only
    assert not any(s == FAIL and i.startswith("node000009") for i, s in states)


def test_slow_nic_is_named_with_its_rail_at_the_local_stage():
    out = run(Faults(nics=((20, 1),)))
    e = by_id(out)["node000020/rail1"]
    assert (e["status"], e["code"], e["rail"]) == (FAIL, "NCB-NIC-LOOPBACK", 1)
    assert len(out.entities) == 1


def test_slow_path_between_two_good_nodes_is_the_pair_not_either_node():
    out = run(Faults(paths=((4, 5, 0),)))
    assert list(by_id(out)) == ["node000004<->node000005/rail0"]
    assert out.entities[0]["status"] == FAIL and out.entities[0]["code"] == "NCB-PAIR-SLOW"
    v = verdict(out)
    assert v["node_status"] == {} and v["summary_nodes"]["PASS"] == 64 and v["exit_code"] == 2


def test_slow_switch_link_is_named_by_the_shift_rounds():
    links = plan.flow_links(FABRIC, np.array([0]), np.array([16 + 5]), np.array([1]))[0]
    out = run(Faults(links=(int(links[1]),)))  # spine1(pod0) -> core1.1 on rail 1
    assert list(by_id(out)) == ["rail1 spine1(pod0)->core1.1"]
    assert out.entities[0]["status"] == FAIL and out.entities[0]["slow_flows"] == 2


def test_one_node_has_nothing_to_pair_and_is_not_unknown():
    out = run(Faults(), fabric=plan.Fabric(nodes=1, rails=2, hosts_per_leaf=4, leaves_per_pod=4), suite="quick")
    assert out.entities == [] and {s["stage"]: s["status"] for s in out.stages}["confirm"] == "SKIPPED"


def test_adaptive_routing_skips_tomography_and_says_why():
    fabric = plan.Fabric(nodes=64, rails=2, hosts_per_leaf=4, leaves_per_pod=4, adaptive_routing=True)
    out = run(Faults(), fabric=fabric)
    fabric_stage = next(s for s in out.stages if s["stage"] == "fabric")
    assert fabric_stage["status"] == "SKIPPED" and "adaptive" in fabric_stage["note"]


def test_unreachable_node_is_unknown_and_left_out():
    out = run(Faults(), unreachable=(3,))
    e = by_id(out)["node000003"]
    assert (e["status"], e["code"]) == (UNKNOWN, "NCB-UNREACHABLE") and out.unknown_nodes == 1
    assert next(s for s in out.stages if s["stage"] == "scale")["status"] == UNKNOWN


def test_a_whole_rail_failing_is_one_shared_cause_not_many_bad_nodes():
    out = run(Faults(nics=tuple((n, 1) for n in range(0, 64, 2))), suite="quick")  # every even node, rail 1
    assert [(e["kind"], e["id"], e["code"]) for e in out.entities] == [("group", "rail1", "NCB-SHARED-CAUSE")]


def test_one_slow_pair_of_two_does_not_drag_the_fleet_below_its_baseline():
    fabric = plan.Fabric(nodes=4, rails=1, hosts_per_leaf=4, leaves_per_pod=1)
    out = run(Faults(paths=((2, 3, 0),)), fabric=fabric, suite="quick", base={"pairs.intra_leaf": {"p50": 48.0}})
    assert [e["code"] for e in out.entities] == ["NCB-PAIR-SLOW"]  # no NCB-SHARED-CAUSE from a 2-test median


def test_fleet_below_its_baseline_is_a_shared_cause_and_drains_nobody():
    base = {"pairs.intra_leaf": {"p50": 60.0}, "local.loopback": {"p50": 48.0}}
    out = run(Faults(), suite="quick", base=base)  # tonight everything runs at 48: pairs are 0.8 of baseline
    assert [(e["id"], e["code"]) for e in out.entities] == [("pairs.intra_leaf", "NCB-SHARED-CAUSE")]
    v = verdict(out)
    assert v["status"] == FAIL and outputs.drain_plan(v, max_drain_fraction=0.01, emulated=False)["nodes"] == {}


# ------------------------------------------------------------------------------------------- outputs


def verdict(outcome, fabric=FABRIC):
    names = [f"node{n:06d}" for n in range(fabric.nodes)]
    run_facts = {
        "run_id": "r1",
        "suite": "nightly",
        "started": "2026-12-01T02:00:00+00:00",
        "finished": "2026-12-01T02:01:00+00:00",
    }
    return outputs.verdict(
        outcome, run=run_facts, names=names, fabric={"rails": fabric.rails}, baseline={"classes": {}}
    )


def test_verdict_exit_codes_follow_nagios():
    assert verdict(run(Faults()))["exit_code"] == 0
    assert verdict(run(Faults(nodes=(9,))))["exit_code"] == 2
    assert verdict(run(Faults(), unreachable=(3,)))["exit_code"] == 3


def test_prometheus_textfile_is_well_formed():
    text = outputs.prometheus(verdict(run(Faults(nodes=(9,)))), 1796140373.25)
    sample = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-z_]+="([^"\\]|\\.)*",?)*\})? -?[0-9.e+]+$')
    for line in text.splitlines():
        assert line.startswith(("# HELP ", "# TYPE ")) or sample.match(line), line
    assert (
        'ncbench_health_status{entity="node",id="node000009",node="node000009",rail="",code="NCB-NODE-SLOW"} 2' in text
    )
    assert "ncbench_health_last_run_timestamp_seconds 1796140373" in text  # to the second
    assert "last_success" not in text  # only a passing run sets it


def test_junit_maps_fail_to_failure_and_unknown_to_error():
    v = verdict(run(Faults(nodes=(9,)), unreachable=(3,)))
    root = ET.fromstring(outputs.junit(v, [f"node{n:06d}" for n in range(64)]))
    nodes = root.find("testsuite[@name='ncbench.health.nodes']")
    assert (nodes.get("tests"), nodes.get("failures"), nodes.get("errors")) == ("64", "1", "1")
    assert nodes.find("testcase[@name='node000009']/failure").get("type") == "NCB-NODE-SLOW"


def test_drain_plan_needs_a_confirmed_failure_and_respects_the_cap():
    v = verdict(run(Faults(nodes=(9, 30))))
    plan_ = outputs.drain_plan(v, max_drain_fraction=0.05, emulated=False)  # cap 3 of 64
    assert sorted(plan_["nodes"]) == ["node000009", "node000030"]
    assert all(r.startswith("ncbench: NCB-NODE-SLOW") for r in plan_["nodes"].values())
    assert outputs.drain_commands(plan_)[0].startswith("scontrol update NodeName=node000009 State=DRAIN Reason=")
    held = outputs.drain_plan(v, max_drain_fraction=0.01, emulated=False)  # cap 1
    assert held["nodes"] == {} and held["held_back"]
    path_only = verdict(run(Faults(paths=((4, 5, 0),))))
    assert outputs.drain_plan(path_only, max_drain_fraction=0.5, emulated=False)["nodes"] == {}  # a path is no node


def test_drains_leave_nodes_a_person_took_out_alone():
    calls = []

    class Done:
        def __init__(self, out="", code=0):
            self.stdout, self.stderr, self.returncode = out, "", code

    def fake(cmd):
        calls.append(cmd)
        return Done("drained|operator: bad fan") if cmd[0] == "sinfo" and "a" in cmd else Done("idle|")

    got = outputs.execute_drains({"nodes": {"a": "ncbench: X", "b": "ncbench: Y"}}, run=fake)
    assert "left alone" in got[0] and got[1] == "b: drained (ncbench: Y)"
    assert ["scontrol", "update", "NodeName=b", "State=DRAIN", "Reason=ncbench: Y"] in calls
    assert not any(c[0] == "scontrol" and "NodeName=a" in c for c in calls)


# ------------------------------------------------------------------------------------------- baselines, history


FACTS = {"backend": "mpi", "suite": "quick", "mpi_library": "MPICH 4.3"}


def test_baseline_round_trip_and_rolling_window(tmp_path):
    fp = baseline.fingerprint(FACTS)
    assert fp == baseline.fingerprint(dict(reversed(list(FACTS.items())))) and len(fp) == 16
    for night in range(20):
        baseline.update(tmp_path, fp, FACTS, {"pairs.intra_leaf": 10.0 + night}, f"run{night}", "2026-12-01")
    classes, note = baseline.load(tmp_path, fp, FACTS, update=False)
    assert classes["pairs.intra_leaf"]["nights"] == baseline.WINDOW_NIGHTS
    assert classes["pairs.intra_leaf"]["p50"] == pytest.approx(np.median(np.arange(6, 20) + 10.0))
    assert "14 night(s)" in note


def test_baseline_errors_are_one_sentence_with_the_right_code(tmp_path):
    fp = baseline.fingerprint(FACTS)
    with pytest.raises(NcbenchError, match="does not exist") as missing:
        baseline.load(tmp_path / "b.json", fp, FACTS, update=False)
    assert missing.value.exit_code == 66
    path = baseline.update(tmp_path, fp, FACTS, {"k": 1.0}, "r", "d")
    other = {**FACTS, "mpi_library": "Open MPI 5.0"}
    with pytest.raises(NcbenchError, match="mpi_library: 'MPICH 4.3' -> 'Open MPI 5.0'") as foreign:
        baseline.load(path, baseline.fingerprint(other), other, update=False)
    assert foreign.value.exit_code == 65
    before = path.read_text()
    path.write_text("{not json")
    with pytest.raises(NcbenchError, match="not a readable baseline") as corrupt:
        baseline.load(path, fp, FACTS, update=False)
    assert corrupt.value.exit_code == 65 and before != path.read_text()  # we read it; we never rewrote it
    classes, note = baseline.load(tmp_path, baseline.fingerprint(other), other, update=False)
    assert classes == {} and "1 other fingerprint" in note  # a directory after an upgrade: peers only


def test_history_reads_nights_and_rejects_a_damaged_file(tmp_path):
    for i, status in enumerate([PASS, WARN]):
        d = tmp_path / f"run{i}"
        d.mkdir()
        v = {
            "schema": outputs.SCHEMA,
            "run_id": f"run{i}",
            "started": f"2026-12-0{i + 1}",
            "status": status,
            "summary_nodes": {"PASS": 3},
            "classes": {"pairs.intra_leaf": 9.5},
            "node_status": {"n1": status},
            "entities": [{"node": "n1", "code": "NCB-NODE-SLOW", "evidence": [{"ratio_to_peers": 0.4}]}] if i else [],
        }
        (d / "verdict.json").write_text(json.dumps(v))
    rows = history.rows(history.load(tmp_path), node="n1")
    assert [(r["status"], r["node_status"], r["ratio_to_peers"]) for r in rows] == [
        (PASS, PASS, None),
        (WARN, WARN, 0.4),
    ]
    assert "pairs.intra_leaf_GBps" in history.render(history.rows(history.load(tmp_path)), "table")
    (tmp_path / "run1" / "verdict.json").write_text("{")
    with pytest.raises(NcbenchError, match="damaged verdict") as bad:
        history.load(tmp_path)
    assert bad.value.exit_code == 65


def test_history_of_a_node_no_night_tested_is_one_sentence_with_the_nearest_names(tmp_path):
    for i, nodes in enumerate([["gpu001", "gpu002"], ["gpu001", "gpu003"]]):
        d = tmp_path / f"run{i}"
        d.mkdir()
        v = {
            "schema": outputs.SCHEMA,
            "run_id": f"run{i}",
            "started": f"2026-12-0{i + 1}",
            "status": PASS,
            "summary_nodes": {"PASS": 2},
            "classes": {},
            "node_status": {},
            "entities": [],
            "nodes": nodes,
        }
        (d / "verdict.json").write_text(json.dumps(v))
    nights = history.load(tmp_path)
    with pytest.raises(NcbenchError, match=r"tested a node named 'gpu00x'; nearest: gpu00") as unknown:
        history.rows(nights, node="gpu00x")
    assert unknown.value.exit_code == 64
    assert [r["node_status"] for r in history.rows(nights, node="gpu002")] == [PASS, "not tested"]


def test_a_timed_out_pair_then_a_node_lost_later_is_named_not_a_crash():
    """A pair test that times out while both ends answer is UNKNOWN; a node lost in a later round still gets named."""

    class PairTimesOutThenNodeDies(SimRunner):
        def round(self, stage, tests):
            res = super().round(stage, tests)
            if stage == "pairs":
                res.value[(tests.a == 4) & (tests.rail == 0)] = np.nan  # both ends still answer
            if stage.startswith("fabric"):
                self.unreachable[11] = True
            return res

    runner = PairTimesOutThenNodeDies(FABRIC, Faults(), noise=0.0, rng=np.random.default_rng(0))
    out = Orchestrator(runner, FABRIC, SUITES["nightly"], judge.Criteria(), None).run()
    codes = {(e["kind"], e["code"]) for e in out.entities}
    assert ("pair", "NCB-UNREACHABLE") in codes and ("node", "NCB-UNREACHABLE") in codes
    assert by_id(out)["node000011"]["status"] == UNKNOWN
