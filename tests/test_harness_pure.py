"""Harness decisions that need no MPI: sweeps, iteration plans, late ranks, faults, jobs, pairs."""

import numpy as np
import pytest

from ncbench.errors import NcbenchError
from ncbench.measure import harness, inject, job, p2p


def test_sizes_follow_nccl_tests():
    assert harness.Sweep(op="allreduce", min_bytes=8, max_bytes=128).sizes() == [8, 16, 32, 64, 128]
    linear = harness.Sweep(op="allreduce", min_bytes=100, max_bytes=400, step_factor=1, step_bytes=100)
    assert linear.sizes() == [100, 200, 300, 400]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"min_bytes": 1024, "max_bytes": 8}, "larger than maximum"),
        ({"min_bytes": 6}, "whole number of float"),
        ({"op": "allgather", "redops": ("max",)}, "takes no reduction"),
        ({"op": "allreduce", "roots": (1,)}, "has no root"),
        ({"op": "broadcast", "roots": (4,)}, "root 4 does not exist"),
        ({"redops": ("mulsum",)}, "unknown reduction op"),
        ({"min_bytes": 0}, "cannot start at 0"),
        ({"samples": 0}, "--samples must be at least 1"),
    ],
)
def test_impossible_sweeps_are_refused(kwargs, message):
    sweep = harness.Sweep(**{"op": "allreduce", **kwargs})
    with pytest.raises(NcbenchError, match=message):
        harness.check_sweep(sweep, 4)


def test_iteration_plan_fits_the_budget_and_never_grows_with_size():
    sweep = harness.Sweep(op="allreduce", time_budget_s=0.1, samples=10)
    iters, samples, _ = harness._decide(sweep, est_s=1e-6, previous_iters=None)
    assert (iters, samples) == (10000, 10)
    assert harness._decide(sweep, est_s=1e-7, previous_iters=iters)[0] == iters  # monotone, IMB's rule
    iters, samples, _ = harness._decide(sweep, est_s=0.05, previous_iters=None)
    assert (iters, samples) == (1, harness.MIN_SAMPLES)  # one op outlasts the budget: keep 3 samples
    fixed = harness.Sweep(op="allreduce", iters=20)
    assert harness._decide(fixed, est_s=1.0, previous_iters=None)[:2] == (20, 10)


def test_late_rank_is_named_only_when_consistent():
    rng = np.random.default_rng(0)
    in_op = 100e-6 + rng.normal(0, 1e-6, size=(4, 16))
    assert harness.find_late_rank(in_op) == (-1, 0.0)  # noise: nobody
    in_op[2] -= 80e-6  # rank 2 arrives 80 us late: it waits least
    rank, late_us = harness.find_late_rank(in_op)
    assert rank == 2 and late_us == pytest.approx(80, rel=0.1)
    assert harness.find_late_rank(in_op[:1]) == (-1, 0.0)


def test_fault_syntax():
    faults = inject.parse("delay:rank=1:us=500; corrupt:rank=2;stall:rank=3:after=10;delay:rank=0:us=5:peer=3")
    assert [f.kind for f in faults] == ["delay", "corrupt", "stall", "delay"]
    one = inject.Injector(faults, 1)
    assert one.delay_us == 500 and not one.corrupt and one.pre_op() is not None
    assert inject.Injector(faults, 2).corrupt and inject.Injector(faults, 2).pre_op() is None
    three = inject.Injector(faults, 3)
    assert three.stall_after == 10 and not three.stall_at_checkpoint
    assert inject.Injector(faults, 0).pre_p2p(3) is not None and inject.Injector(faults, 0).pre_p2p(1) is None
    assert inject.parse("") == ()


@pytest.mark.parametrize("bad", ["slow:rank=1", "delay:rank=1", "delay:rank=x:us=5", "corrupt:rank=1:us=3"])
def test_bad_fault_syntax_says_so(bad):
    with pytest.raises(NcbenchError, match="NCBENCH_INJECT"):
        inject.parse(bad)


def test_delay_takes_the_time_asked():
    import time

    start = time.perf_counter()
    inject.sleep_us(300)
    assert 300e-6 <= time.perf_counter() - start < 5e-3


def test_thread_level_is_chosen_on_purpose():
    assert job.choose_thread_level("auto", {"MPI_LOCALNRANKS": "2"}, cores=2)[0] == "funneled"
    assert job.choose_thread_level("auto", {"OMPI_COMM_WORLD_LOCAL_SIZE": "4"}, cores=2)[0] == "multiple"
    assert job.choose_thread_level("serialized", {}, cores=2) == ("serialized", "requested with --thread-level")
    with pytest.raises(NcbenchError, match="thread level"):
        job.choose_thread_level("fast", {}, cores=2)


def test_nodes_from_hosts_or_stand_ins():
    real = job.describe(["b", "b", "a", "a"], None)
    assert real.node_of == (0, 0, 1, 1) and real.nnodes == 2 and not real.emulated
    assert real.ranks_on(1) == [0, 1] and real.ranks_per_node() == 2
    stand_in = job.describe(["vm"] * 6, 2)
    assert stand_in.node_of == (0, 0, 1, 1, 2, 2) and stand_in.emulated
    assert job.describe(["a", "a", "b"], None).ranks_per_node() == -1
    with pytest.raises(NcbenchError, match="does not divide"):
        job.describe(["vm"] * 6, 4)


def test_pairs_and_disjoint_rounds():
    node_of = (0, 0, 1, 1, 2, 2)
    assert p2p.pairs_for("neighbours", node_of) == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]
    assert p2p.pairs_for("first", node_of)[:2] == [(0, 1), (0, 2)]
    assert p2p.pairs_for("all-nodes", node_of) == [(0, 2), (0, 4), (2, 4)]
    assert len(p2p.pairs_for("all", node_of)) == 15
    for members in p2p.rounds(p2p.pairs_for("all", node_of), concurrent=True):
        ranks = [r for pair in members for r in pair]
        assert len(ranks) == len(set(ranks))  # no rank in two pairs at once
    assert all(len(r) == 1 for r in p2p.rounds(p2p.pairs_for("all", node_of), concurrent=False))
    with pytest.raises(NcbenchError, match="2 or more nodes"):
        p2p.pairs_for("all-nodes", (0, 0))


def test_summary_names_a_slow_rank_only_when_it_is_late_across_the_sweep():
    from ncbench.measure.session import findings

    row = {"slowest_rank": -1, "slowest_host": "", "lateness_us": 0.0, "wrong": 0, "wrong_sources": ""}
    rows = [dict(row) for _ in range(8)]
    rows[3].update(slowest_rank=1, slowest_host="h1", lateness_us=3000.0)  # one hiccup
    assert findings(rows) == []
    for r in rows[:4]:
        r.update(slowest_rank=2, slowest_host="h2", lateness_us=500.0)
    assert findings(rows) == ["# Slowest rank: 2 (h2) arrived last in 4 of 8 measurements, by a median of 500.0 us"]
