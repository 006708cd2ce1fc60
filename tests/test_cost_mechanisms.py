"""NCCL's per-size mechanisms in the cost model (NCCL v2.30.7; docs/cost-model.md, "NCCL's per-size rules").

Each test pins a number the source gives: treeCorrectionFactor (src/graph/tuning.cc:623-642), the ring plateau
(tuning.cc:647-650), the chunk per protocol (src/enqueue.cc:2222-2227, 2276-2294, 2321; src/transport/nvls.cc:160,
229), and that `fit`'s linear rows solve exactly what `predict` evaluates.
"""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ncbench.model import cost as alg
from ncbench.model import topology as topo

ROOT = Path(__file__).resolve().parents[1]
SUPERPOD = ROOT / "topologies" / "dgx-h100-superpod-ndr.toml"  # 8 GPUs and (one port per GPU) 8 ports per domain
MiB, GiB = 1 << 20, 1 << 30


def _design():
    return topo.load(SUPERPOD)


def _terms(algorithm, protocol, gpus, op="allreduce", design=None):
    shape = alg.shape(design or _design(), gpus)
    return alg.with_protocol(alg.cost(op, algorithm, shape), alg.PROTOCOLS[protocol])


# ------------------------------------------------------------------------------------------- the protocol table


def test_protocol_chunks_are_what_calccollchunking_computes_for_a_tree():
    # Simple: 4 MiB / NCCL_STEPS; LL: 512 KiB / 8 / 2; LL128: 4,915,200 / 8 x 15 / 16
    assert alg.PROTOCOLS["simple"].chunk_bytes == 524_288
    assert alg.PROTOCOLS["ll"].chunk_bytes == 32_768
    assert alg.PROTOCOLS["ll128"].chunk_bytes == 576_000
    assert [alg.PROTOCOLS[p].grain_bytes for p in ("ll", "ll128", "simple")] == [16, 1920, 512]
    assert all(name == p.name for name, p in alg.PROTOCOLS.items())


def test_tree_correction_table_is_nccls_rows():
    assert len(alg.PROTOCOLS["simple"].tree_correction) == 24
    assert alg.PROTOCOLS["simple"].tree_correction[11:15] == (0.5, 0.5, 0.5, 0.5)
    assert alg.PROTOCOLS["ll"].tree_correction[12:14] == (0.4, 0.4)
    assert alg.PROTOCOLS["ll128"].tree_correction[14:17] == (0.6, 0.6, 0.8)


# ------------------------------------------------------------------------------------- treeCorrectionFactor


@pytest.mark.parametrize(
    ("protocol", "nbytes", "factor"),
    [
        ("simple", MiB, 0.5),  # log2(1 MiB / 64) = 14
        ("ll128", MiB, 0.6),
        ("ll", MiB, 0.5),
        ("ll", 256 * 1024, 0.4),  # index 12
        ("simple", 64, 0.9),  # index 0
        ("simple", 63, 1.0),  # log2i(0) = -1: none
        ("simple", 64 * MiB, 0.8),  # index 20
        ("simple", 512 * MiB - 1, 0.9),  # index 22, the last one applied
        ("simple", 512 * MiB, 1.0),  # index 23: none
        ("simple", GiB, 1.0),
    ],
)
def test_tree_bandwidth_is_multiplied_by_nccls_factor(protocol, nbytes, factor):
    terms = _terms("tree", protocol, [4096])
    assert alg.size_rules(terms, [nbytes]).per_byte[0, 0] == pytest.approx(1 / factor, rel=1e-12)


def test_tree_at_1_mib_simple_streams_at_half_the_bandwidth_and_at_1_gib_at_all_of_it():
    design = _design()
    params = alg.nominal(design)
    terms = replace(_terms("tree", "simple", [4096], design=design), fill=None)
    plain = replace(terms, rules="none")
    for nbytes, factor in ((MiB, 0.5), (GiB, 1.0)):
        latency = alg.evaluate(plain, params, [0])[0, 0]
        stream = alg.evaluate(plain, params, [nbytes])[0, 0] - latency
        assert alg.evaluate(terms, params, [nbytes])[0, 0] == pytest.approx(latency + stream / factor, rel=1e-12)
    assert stream > 1000  # 1 GiB over a 48 GB/s link: milliseconds, so the check above is not vacuous


def test_only_tree_allreduce_gets_the_correction():
    for algorithm in ("ring", "nvlstree", "nvls", "collnet"):
        assert np.all(alg.size_rules(_terms(algorithm, "simple", [4096]), [MiB]).per_byte == 1.0), algorithm


# ------------------------------------------------------------------------------------------------- ring plateau


def test_ring_plateau_applies_from_64_bytes_per_channel_and_rank_across_domains():
    p = 4096  # 512 domains of 8; 8 ports per domain -> 16 channels
    terms = _terms("ring", "simple", [p])
    threshold = 64 * 16 * p
    got = alg.size_rules(terms, [threshold - 1, threshold, GiB]).latency[0]
    assert got.tolist() == [1.0, 1.4, 1.4]


def test_ring_plateau_multiplies_the_whole_latency_base_included():
    design = _design()
    params = alg.nominal(design)
    terms = _terms("ring", "simple", [4096], design=design)
    plain = replace(terms, rules="none")
    latency = alg.evaluate(plain, params, [0])[0, 0]
    stream = alg.evaluate(plain, params, [GiB])[0, 0] - latency
    assert alg.evaluate(terms, params, [GiB])[0, 0] == pytest.approx(1.4 * latency + stream, rel=1e-12)
    assert latency > design.base_latency_us + 1000  # 2(p-1) steps: the factor moves a real number


def test_ring_plateau_never_applies_inside_one_domain_or_off_simple_or_off_allreduce():
    assert alg.size_rules(_terms("ring", "simple", [8]), [GiB]).latency[0, 0] == 1.0  # nNodes = 1
    for protocol in ("ll", "ll128"):
        assert alg.size_rules(_terms("ring", protocol, [4096]), [GiB]).latency[0, 0] == 1.0
    for op in ("allgather", "reducescatter", "broadcast", "reduce"):
        assert alg.size_rules(_terms("ring", "simple", [4096], op=op), [GiB]).latency[0, 0] == 1.0
    assert alg.size_rules(_terms("tree", "simple", [4096]), [GiB]).latency[0, 0] == 1.0


def test_channels_are_two_per_nic_port_up_to_64():
    assert alg.shape(_design(), [64]).channels == 16  # one port per GPU, 8 GPUs per domain
    meta = topo.load(ROOT / "topologies" / "meta-h100-roce-24k.toml")  # nics_per_domain = 8
    assert alg.shape(meta, [64]).channels == 16
    nvl72 = topo.load(ROOT / "topologies" / "gb200-nvl72-ndr.toml")  # 72 ports per domain: capped at MAXCHANNELS
    assert alg.shape(nvl72, [144]).channels == 64
    assert alg.shape(_design(), [64], g=1).channels == 2  # one GPU and one port per domain


# --------------------------------------------------------------------------------------------- tree chunk rules


@pytest.mark.parametrize(
    ("nodes", "nbytes", "chunk"),
    [
        (1024, MiB, 17_280),  # 576,000 halved to 18,000, then whole 1,920 B grains
        (1024, 16 * MiB, 34_560),
        (1024, 128 * MiB, 71_040),
        (1024, GiB, 576_000),
        (4, 16 * MiB, 71_040),
        (4, 128 * MiB, 144_000),  # fewer nodes, a shallower tree: fewer halvings
    ],
)
def test_tree_ll128_chunk_halves_with_depth_as_nccl_does(nodes, nbytes, chunk):
    fill = alg.size_rules(_terms("tree", "ll128", [8 * nodes]), [nbytes]).fill_bytes[0, 0]
    assert fill == min(nbytes, chunk)  # one chunk per stage (docs/cost-model.md, "Tree pipeline fill")


@pytest.mark.parametrize(("protocol", "chunk"), [("simple", 524_288), ("ll", 32_768)])
def test_tree_simple_and_ll_chunks_do_not_change_with_size_or_depth(protocol, chunk):
    for p in (16, 8192):
        fill = alg.size_rules(_terms("tree", protocol, [p]), [MiB, 64 * MiB, GiB]).fill_bytes[0]
        assert fill.tolist() == [min(n, chunk) for n in (MiB, 64 * MiB, GiB)]


@pytest.mark.parametrize(
    ("gpus", "nbytes", "fill"),
    [
        (16, GiB, 128 * 1024),  # 2 nodes: NCCL_NVLS_CHUNKSIZE 128 KiB
        (32, GiB, 64 * 1024),  # 4 nodes: treeMaxChunkSize 64 KiB
        (8192, 16 * MiB, 64 * 1024),
        (8192, MiB, 32 * 1024),  # 64 KiB per channel < 8 heads x 64 KiB: 32 KiB chunks
    ],
)
def test_nvlstree_chunk_is_nvls_chunk_size_and_64k_from_four_nodes(gpus, nbytes, fill):
    assert alg.size_rules(_terms("nvlstree", "simple", [gpus]), [nbytes]).fill_bytes[0, 0] == fill


def test_fill_adds_the_chunk_bytes_over_every_stage():
    design = _design()
    params = alg.nominal(design)
    terms = _terms("tree", "simple", [8192], design=design)
    nofill = replace(terms, fill=None)
    extra = alg.evaluate(terms, params, [GiB])[0, 0] - alg.evaluate(nofill, params, [GiB])[0, 0]
    expected = (params.inv_GBps @ terms.fill[:, 0]) * 524_288 / 1e3
    assert extra == pytest.approx(expected, rel=1e-12)
    assert extra > 5  # microseconds: dozens of stages of one 512 KiB chunk


# ------------------------------------------------------------------------ fit solves what predict evaluates


def test_size_rules_are_arrays_over_gpu_counts_and_sizes_or_over_rows():
    terms = _terms("tree", "ll128", [64, 4096, 32768])
    outer = alg.size_rules(terms, [8, MiB, GiB, 4 * GiB])
    assert outer.latency.shape == outer.per_byte.shape == outer.fill_bytes.shape == (3, 4)
    paired = alg.size_rules(terms, [8, MiB, GiB], paired=True)
    assert paired.fill_bytes.shape == (3,)
    assert np.allclose(paired.fill_bytes, np.diag(outer.fill_bytes[:, :3]))


def _cases():
    for op in alg.OPS:
        for algorithm in alg.for_op(op):
            for protocol in alg.PROTOCOLS:
                yield op, algorithm, protocol


@pytest.mark.parametrize(("op", "algorithm", "protocol"), list(_cases()))
def test_linear_rows_agree_with_evaluate_at_random_parameters(op, algorithm, protocol):
    design = _design()
    rng = np.random.default_rng(7)
    gpus = np.array([8, 64, 4096, 8192, 32768, 64, 4096, 32768, 8, 16384], dtype=float)
    nbytes = np.array([8, 1000, MiB, 64 * MiB, GiB, 4 * GiB, 5 * MiB, 300 * MiB, 64 * 16 * 8, 100], dtype=float)
    terms = _terms(algorithm, protocol, gpus, op=op, design=design)
    theta = alg.nominal(design).vector() * np.exp(0.5 * rng.standard_normal(1 + 3 * len(design.tiers)))
    params = alg.Params.from_vector(theta, len(design.tiers))
    constant, coefficients = alg.linear_rows(terms, params, nbytes)
    evaluated = np.diag(alg.evaluate_draws(terms, theta[None, :], nbytes)[0])
    assert constant + coefficients @ theta == pytest.approx(evaluated, rel=1e-9, abs=1e-9)


# ------------------------------------------------------------------------- rings and trees across domains


def _published(system: str, gpus: int, *, source="", algorithm="", collective=None, nbytes=None) -> float:
    """Return one published busbw (GB/s) from the repository's copy of the published measurements."""
    import pandas as pd

    frame = pd.read_csv(ROOT / "results" / "published" / "published.csv")
    match = (
        frame.source.str.contains(source, regex=False)
        & (frame.system == system)
        & frame.algorithm.fillna("").str.contains(algorithm, regex=False)
        & (pd.to_numeric(frame.total_gpus, errors="coerce") == gpus)
    )
    if collective is not None:
        match &= frame.collective == collective
    if nbytes is not None:
        match &= pd.to_numeric(frame.message_bytes, errors="coerce") == nbytes
    row = frame[match]
    assert len(row) == 1, (system, gpus, source, algorithm, collective, nbytes)
    return float(str(row["value"].iloc[0]).lstrip("~"))


def _busbw(design, op, algorithm, gpus, nbytes) -> float:
    from ncbench.model import predict as pred

    out = pred.predict(design, ops=(op,), gpus=[gpus], nbytes=[nbytes], algorithms=(algorithm,), samples=2)
    return float(out["busbw_GBps"].iloc[0])


def _before_nccl_2_6(monkeypatch) -> None:
    """Run the model under the NCCL of Summit's published runs (2.3/2.4): treeCorrectionFactor came with
    NCCL 2.6.4 and the ring plateau with 2.7.3 (docs/cost-model.md, "NCCL's per-size rules")."""
    for name, protocol in alg.PROTOCOLS.items():
        ones = (1.0,) * len(protocol.tree_correction)
        monkeypatch.setitem(alg.PROTOCOLS, name, replace(protocol, tree_correction=ones))
    monkeypatch.setattr(alg, "RING_PLATEAU", 1.0)


@pytest.mark.parametrize(
    ("design", "algorithm", "source", "system", "gpus", "nbytes"),
    [  # NCCL's rings enter and leave a domain once and run two channels per NIC: the domain's NICs add up
        ("dgx-h100-superpod-ndr", "ring", "S72583", "DGX H100 (4 nodes)", 32, 16 << 30),  # "large (peak)"
        ("meta-h100-roce-24k", "ring", "S72583", "DGX H100 (4 nodes)", 32, 16 << 30),
        ("summit-edr", "ring", "NCCL 2.4", "ORNL Summit (IBM AC922)", 96, 64 << 20),  # 2 EDR ports per 6 V100
        ("summit-edr", "tree", "NCCL 2.4", "ORNL Summit (IBM AC922)", 96, 64 << 20),
    ],
)
def test_a_ring_or_tree_across_a_few_domains_runs_at_the_domains_nics_as_published(
    design, algorithm, source, system, gpus, nbytes, monkeypatch
):
    if source == "NCCL 2.4":
        _before_nccl_2_6(monkeypatch)
    published = _published(system, gpus, source=source, algorithm="tree" if algorithm == "tree" else "ring")
    modelled = _busbw(topo.load(ROOT / "topologies" / f"{design}.toml"), "allreduce", algorithm, gpus, nbytes)
    assert modelled == pytest.approx(published, rel=0.15), (design, algorithm, modelled, published)
    one_nic_per_gpu = published / topo.load(ROOT / "topologies" / f"{design}.toml").gpus_per_domain
    assert modelled > 3 * one_nic_per_gpu  # what the model gave when each GPU's own NIC carried the whole ring


def test_a_ring_crossing_an_oversubscribed_tier_loses_only_the_edges_that_climb_to_it():
    design = topo.load(ROOT / "topologies" / "meta-h100-roce-24k.toml")  # 1:7 above 3,072-GPU pods
    tiers = tuple(replace(t, oversubscription=1.0) for t in design.tiers)
    full = replace(design, tiers=tiers)
    oversubscribed, non_blocking = (_busbw(d, "allreduce", "ring", 6144, 16 << 30) for d in (design, full))
    assert oversubscribed == pytest.approx(non_blocking, rel=0.01)  # a packed ring leaves each pod once
    pairwise = [_busbw(d, "alltoall", "pairwise", 6144, 1 << 30) for d in (design, full)]
    assert pairwise[0] < 0.5 * pairwise[1]  # alltoall sends half its bytes to the other pod: the 1:7 tier binds


def test_hpns_hosts_are_h800s_whose_nvlink_bounds_a_large_allgather_at_448_gpus_as_published():
    published = _published("Alibaba HPN (dual-plane, 1K-GPU segment)", 448, collective="allgather", nbytes=4 << 30)
    design = topo.load(ROOT / "topologies" / "alibaba-hpn-dualplane.toml")
    modelled = _busbw(design, "allgather", "ring", 448, 4 << 30)
    assert modelled == pytest.approx(published, rel=0.15)
    # 16 x 200G ports per host (400 GB/s) are not what binds: an H100's 18 NVLinks would give over twice as much
    h100 = replace(design, tiers=(replace(design.tiers[0], bandwidth_GBps=450.0), *design.tiers[1:]))
    assert _busbw(h100, "allgather", "ring", 448, 4 << 30) > 1.8 * published


# ---------------------------------------------------------------------------------------------- LL's bandwidth


def test_tree_ll_streams_at_1_over_3_8_of_tree_simple_and_ll128_at_120_over_128():
    gpus = np.array([64.0])
    simple, ll, ll128 = (_terms("tree", p, gpus) for p in ("simple", "ll", "ll128"))
    assert ll.phases[0] == pytest.approx(simple.phases[0] * 3.8)  # tuning.cc: Tree/LL busBw x 1/3.8
    assert ll128.phases[0] == pytest.approx(simple.phases[0] * 128 / 120)  # Tree/LL128 across nodes: x 120/128
    ring_ll = _terms("ring", "ll", gpus)
    assert ring_ll.phases[0] == pytest.approx(_terms("ring", "simple", gpus).phases[0] * 2)  # Ring/LL: x 0.5


@pytest.mark.parametrize("design", ["dgx-h100-superpod-ndr", "colossus-spectrum-x-200k", "alibaba-hpn-dualplane"])
def test_nvls_nvlstree_collnet_and_pat_run_with_simple_only_as_in_ncclls_tuner(design):
    from ncbench.model import predict as pred

    topology = topo.load(ROOT / "topologies" / f"{design}.toml")
    sizes = [8, 64 << 10, 1 << 20, 16 << 20, 1 << 30]
    out = pred.predict(topology, ops=("allreduce", "allgather"), gpus=[16, 448, 8192], nbytes=sizes, samples=2)
    chosen = out[out.algorithm.isin(["nvls", "nvlstree", "collnet", "pat"])]
    assert not chosen.empty and set(chosen.protocol) == {"simple"}
    every = pred.predict(topology, ops=("allreduce",), gpus=[448], nbytes=sizes, algorithms=("all",), samples=2)
    assert set(every[every.algorithm.isin(["nvlstree", "nvls", "collnet"])].protocol) == {"simple"}


def test_a_tree_step_costs_ncclls_tree_latency_and_an_nvlstree_step_its_own():
    gpus = np.array([64.0])  # 8 nodes: NVLink chain steps and network levels
    ring = {p: _terms("ring", p, gpus) for p in alg.PROTOCOLS}
    tree = {p: _terms("tree", p, gpus) for p in alg.PROTOCOLS}
    bare = alg.cost("allreduce", "tree", alg.shape(_design(), gpus)).steps
    # hwLatencies Tree columns (tuning.cc:158-174), relative to Ring/Simple's NVLink 3.4 and network 14 us
    for protocol, (nvlink_us, net_us) in {"simple": (4.0, 14.0), "ll128": (1.25, 8.5), "ll": (0.6, 5.0)}.items():
        assert tree[protocol].steps[0] == pytest.approx(bare[0] * nvlink_us / 3.4)
        assert tree[protocol].steps[1:] == pytest.approx(bare[1:] * net_us / 14.0)
    assert ring["ll"].steps[1:] == pytest.approx(
        alg.cost("allreduce", "ring", alg.shape(_design(), gpus)).steps[1:] * 2.7 / 14.0
    )
    nvlstree = _terms("nvlstree", "simple", gpus)
    assert nvlstree.steps[1:] == pytest.approx(
        alg.cost("allreduce", "nvlstree", alg.shape(_design(), gpus)).steps[1:] * 20.9 / 14.0
    )


@pytest.mark.parametrize(("op", "steps"), [("allreduce", 2 * 63), ("allgather", 63), ("reducescatter", 63)])
def test_a_rings_nvlink_steps_across_nodes_cost_at_least_ncclls_net_overhead(op, steps):
    design = _design()  # H100 NVLink: Ring/LL 0.6 us per step, below NCCL's 1 us launch overhead across nodes
    one_node, nodes = (alg.nominal(design), np.array([8.0, 64.0]))
    ll = alg.evaluate(_terms("ring", "ll", nodes, op=op), one_node, [8])[:, 0]
    no_floor = alg.evaluate(replace(_terms("ring", "ll", nodes, op=op), intra_floor_us=None), one_node, [8])[:, 0]
    assert ll[0] == pytest.approx(no_floor[0])  # inside one node NCCL adds no net overhead
    intra_steps = steps * 56 / 64  # the ring edges of 8 domains that stay on NVLink
    assert ll[1] - no_floor[1] == pytest.approx(intra_steps * (alg.NET_OVERHEAD_US - 0.6), rel=1e-6)
    broadcast = _terms("ring", "ll", nodes, op="broadcast")
    assert broadcast.intra_floor_us is None  # NCCL charges reduce and broadcast otherwise


@pytest.mark.parametrize("algorithm", ["ring", "tree"])
def test_ll_across_nodes_streams_no_faster_than_ncclls_llmaxbw(algorithm):
    design, n = _design(), 4 * GiB  # 1 GiB ... 4 GiB: the streaming term dominates the latency
    params = alg.nominal(design)
    gpus = np.array([8.0, 16.0, 64.0])  # one node (no cap), two (39.0 GB/s), eight (20.4 GB/s: tuning.cc llMaxBws)
    ll = _terms(algorithm, "ll", gpus)
    capped = alg.evaluate(ll, params, [GiB, n])
    free = alg.evaluate(replace(ll, per_byte_floor_us=None), params, [GiB, n])
    assert capped[0] == pytest.approx(free[0])  # inside one node LL keeps its own (NVLink) speed
    for row, cap_GBps in ((1, 39.0), (2, 20.4)):
        p = gpus[row]
        busbw_bytes = 2 * (p - 1) / p if algorithm == "ring" else 2.0  # NCCL: ring nsteps / p, tree algbw = busBw / 2
        slope_us = (capped[row, 1] - capped[row, 0]) / (n - GiB)
        assert slope_us == pytest.approx(busbw_bytes / cap_GBps / 1e3, rel=1e-6)  # the cap binds: H100 LL is faster
        assert free[row, 1] < capped[row, 1]
    assert _terms(algorithm, "simple", gpus).per_byte_floor_us is None
    assert _terms(algorithm, "ll128", gpus).per_byte_floor_us is None


def test_the_tuner_charges_nvls_nvlstree_and_collnet_no_base_latency_as_ncclls_table_and_the_hardware_does():
    design = _design()  # SHARP on every tier: NVLS and CollNet across nodes are enabled
    params, gpus = alg.nominal(design), np.array([64.0])
    for algorithm in ("nvls", "nvlstree", "collnet"):
        terms = _terms(algorithm, "simple", gpus)
        tuned = alg.evaluate(alg.as_tuned(terms), params, [8])[0, 0]
        paid = alg.evaluate(terms, params, [8])[0, 0]
        assert paid - tuned == pytest.approx(design.base_latency_us)  # baseLatencies NVLS/NVLSTree/CollNet = 0
    nvls = alg.evaluate(alg.as_tuned(_terms("nvls", "simple", gpus)), params, [0])[0, 0]
    assert nvls == pytest.approx(alg.NVLS_US + alg.NVLS_NET_US)  # tuning.cc: NVLS latency = intraLat + interLat
    ring = _terms("ring", "ll", gpus)
    assert alg.as_tuned(ring) is ring  # a ring's and a tree's base are NCCL's baseLatencies, as b says
