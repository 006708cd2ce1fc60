"""Topology files, the cost model, fit and predict: pure functions, no MPI, no GPU."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import model_rows

from ncbench.errors import NcbenchError
from ncbench.model import cost as alg
from ncbench.model import fit as fit_mod
from ncbench.model import predict as pred
from ncbench.model import topology as topo

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted(p for p in (ROOT / "topologies").glob("*.toml") if not p.name.endswith(".fitted.toml"))
SUPERPOD = ROOT / "topologies" / "dgx-h100-superpod-ndr.toml"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_topologies_load_with_a_source_for_every_number(path):
    design = topo.load(path)
    assert design.tiers[0].size >= 1
    for tier in design.tiers:
        assert "bandwidth_GBps" in tier.sources and "latency_us" in tier.sources


def test_at_least_the_designs_the_issue_asks_for_are_shipped():
    names = {topo.load(p).name for p in SHIPPED}
    assert {"this-machine", "dgx-h100-superpod-ndr", "colossus-spectrum-x-200k", "gb200-nvl72-ndr"} <= names
    assert len([n for n in names if "1m" in n]) >= 2


@pytest.mark.parametrize(
    ("name", "gpus", "tiers", "switches"),
    [
        ("colossus-spectrum-x-200k", 200_000, 3, 7_813),  # 5N/k at k=128: 7,812.5
        ("colossus-1m-4tier", 1_000_000, 4, 54_688),  # 7N/k: 54,687.5
        ("colossus-1m-2plane", 1_000_000, 3, 39_066),  # 2 planes x 5N/k at k=256
        ("dgx-h100-superpod-ndr", 65_536, 3, 5_120),  # a full k=64 three-tier fat tree: 5 k^2/4
    ],
)
def test_fat_tree_sizing_matches_the_clos_formulas(name, gpus, tiers, switches):
    design = topo.load(ROOT / "topologies" / f"{name}.toml")
    counts = topo.size(design, gpus)
    assert len(counts) == tiers
    assert sum(c.switches for c in counts) == switches
    assert counts[0].links == gpus * design.planes


# Figures of the one-port-per-GPU designs as they were before NIC ports could be stated: a file that
# states no ports must size and predict exactly as before.
PINNED_SIZES = [
    ("colossus-spectrum-x-200k", 200_000, [3_125, 3_125, 1_563], 600_000, 24.7384),
    ("colossus-1m-4tier", 1_000_000, [15_625, 15_625, 15_625, 7_813], 4_000_000, 169.5634),
    ("colossus-1m-2plane", 1_000_000, [15_626, 15_626, 7_814], 6_000_256, 124.6961),
    ("dgx-h100-superpod-ndr", 32_768, [1_024, 1_024, 512], 98_304, 6.4184),
    ("gb200-nvl72-ndr", 36_864, [1_152, 1_152, 576], 110_592, 7.2207),
]
PINNED_TIMES = [
    # NVLSTree's fill waits for its own 64 KiB chunk from 4 nodes (NCCL nvls.cc), not Simple's 512 KiB: was 6987.948;
    # its network steps cost NCCL's NVLSTree 20.9 us, not Ring's 14 (hwLatencies NET): was 6705.7501
    ("colossus-spectrum-x-200k", "allreduce", 200_000, 1 << 30, "nvlstree", "simple", 6946.9289),
    # Rings and trees spread a domain's network traffic over all its NICs (was one GPU's NIC): 8 B barely moves
    # (109.3849); Tree/LL streams at 1/3.8 of Tree/Simple as in NCCL's tuner (was 0.5): 109.3943; a Tree/LL network
    # step costs NCCL's Tree 5.0 us, not Ring's 2.7 (hwLatencies NET Tree LL): 189.7873; LL streams at most
    # NCCL's llMaxBw, 20.4 GB/s of busBw across 3+ nodes (tuning.cc:331)
    ("colossus-spectrum-x-200k", "allreduce", 200_000, 8, "tree", "ll", 189.7879),
    ("colossus-spectrum-x-200k", "alltoall", 200_000, 1 << 30, "pairwise", "ll", 768561.8251),
    ("dgx-h100-superpod-ndr", "allreduce", 4096, 1 << 30, "nvls", "simple", 3963.0278),
    # NCCL runs NVLS with Simple only (tuning.cc:301): 25 + 18 + 8.4 us (was LL's 6.6 us base: 49.6)
    ("gb200-nvl72-ndr", "allreduce", 36_864, 8, "nvls", "simple", 51.4),
    # (882197.845 and 888432.6422 as above); a ring's NVLink steps across nodes launch at NCCL's net overhead, 1 us
    # under LL, not 0.6 (tuning.cc:396-405): 1232197.495 and 1238432.2922; then LL's busBw capped at llMaxBw's
    # 20.4 GB/s across 3+ nodes (tuning.cc:325): + n / 20.4 GB/s where that beats LL's own streaming
    ("colossus-1m-2plane", "allgather", 1_000_000, 1 << 20, "ring", "ll", 1232243.24),
    ("colossus-1m-4tier", "reducescatter", 1_000_000, 1 << 30, "ring", "ll", 1285275.1607),
]


@pytest.mark.parametrize(("name", "gpus", "switches", "links", "megawatts"), PINNED_SIZES)
def test_designs_with_one_port_per_gpu_size_as_they_always_did(name, gpus, switches, links, megawatts):
    design = topo.load(ROOT / "topologies" / f"{name}.toml")
    counts = topo.size(design, gpus)
    assert [c.switches for c in counts] == switches
    assert sum(c.links for c in counts) == links
    assert sum(c.switch_W + c.optics_W for c in counts) / 1e6 == pytest.approx(megawatts, abs=5e-5)


@pytest.mark.parametrize(("name", "op", "gpus", "nbytes", "algorithm", "protocol", "time_us"), PINNED_TIMES)
def test_designs_with_one_port_per_gpu_predict_as_they_always_did(name, op, gpus, nbytes, algorithm, protocol, time_us):
    design = topo.load(ROOT / "topologies" / f"{name}.toml")
    row = pred.predict(design, ops=(op,), gpus=[gpus], nbytes=[nbytes], samples=2).iloc[0]
    assert (row.algorithm, row.protocol) == (algorithm, protocol)
    assert row.time_us == pytest.approx(time_us, abs=1e-4)


def test_a_design_too_small_says_so_and_extended_grows_it():
    design = topo.load(SUPERPOD)
    with pytest.raises(NcbenchError, match="65,536"):
        topo.size(design, 1_000_000)
    grown, added = topo.extended(design, 1_000_000)
    assert added == 1 and topo.capacity(grown, len(grown.tiers)) >= 1_000_000
    assert grown.tiers[-1].latency_us > design.tiers[-1].latency_us


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda t: t.replace("efficiency = 0.96\noversubscription", "efficiency = 1.5\noversubscription"),
            "efficiency = 1.5 is above 1",
        ),
        (
            lambda t: t.replace(
                'latency_us = "NCCL hwLatencies NET Ring/Simple = 14 us per step (docs/cost-model.md)"\n', ""
            ),
            "tier 'leaf': latency_us = 14.0 has no source",
        ),
        (lambda t: t.replace('name = "spine"\n', 'name = "spine"\nradix = 3\n'), "unknown key 'radix'"),
        (
            lambda t: t.replace("bandwidth_GBps = 450.0", 'bandwidth_GBps = "fast"'),
            "bandwidth_GBps = 'fast' is not a number",
        ),
        (lambda t: t + "\n[[tier\n", "not valid TOML"),
        (lambda t: t.replace("[sources]\n", 'protocols = ["simple", "LL128"]\n[sources]\n', 1), "names 'LL128'"),
        (lambda t: t.replace("[sources]\n", 'protocols = ["ll"]\n[sources]\n', 1), "must include 'simple'"),
        (lambda t: t.replace("[sources]\n", 'protocols = ["simple"]\n[sources]\n', 1), "protocols has no source"),
    ],
)
def test_a_bad_topology_file_gets_one_sentence_naming_file_tier_key_and_value(tmp_path, edit, message):
    bad = tmp_path / "bad.toml"
    bad.write_text(edit(SUPERPOD.read_text()))
    with pytest.raises(NcbenchError) as err:
        topo.load(bad)
    assert err.value.exit_code == 65
    assert str(bad) in str(err.value) and message in str(err.value)
    assert "\n" not in str(err.value)


def test_fitted_topology_round_trips_through_toml(tmp_path):
    design = topo.load(SUPERPOD)
    summary = topo.FitSummary(
        algorithm="ring",
        points=3,
        residual_log_sd=0.1,
        median_abs_error_pct=1.0,
        max_abs_error_pct=2.0,
        parameters=("a",),
        log_covariance=((0.1,),),
        unconstrained=(),
        max_gpus=8,
        extrapolation_log_sd_per_doubling=0.0,
        parameter={"leaf.latency_us": topo.ParameterFit(1.0, 2.0, 1.5, 2.5, True)},
    )
    design = replace(design, fit=summary)
    again = topo.load(topo.save(design, tmp_path / "x.toml"))
    assert again.tiers == design.tiers
    assert again.fit.parameter["leaf.latency_us"].value == 2.0
    assert again.fit == design.fit
    assert again.init == design.init
    summit = topo.load(ROOT / "topologies" / "summit-edr.toml")  # runs no LL128; a fitted copy still does not
    assert topo.load(topo.save(summit, tmp_path / "s.toml")).protocols == ("simple", "ll") == summit.protocols


def test_a_fabric_without_ll128_is_never_predicted_or_fitted_with_it():
    summit = topo.load(ROOT / "topologies" / "summit-edr.toml")
    out = pred.predict(summit, ops=("allreduce",), gpus=[96, 768, 6144], nbytes=[8, 1 << 20, 64 << 20], samples=2)
    assert set(out.protocol) <= {"simple", "ll"} and "ll128" not in set(out.protocol)
    everywhere = replace(summit, protocols=topo.NCCL_PROTOCOLS)
    out = pred.predict(everywhere, ops=("allreduce",), gpus=[96], nbytes=[64 << 20], algorithms=("ring",), samples=2)
    assert out.protocol.iloc[0] == "ll128"  # what the model picked for Summit before it said otherwise
    frame = pd.DataFrame({"backend": ["nccl", "mpi"]})
    allowed = fit_mod._default_protocols(frame, summit)
    assert allowed.tolist() == [[True, False, True], [True, False, False]]  # simple, ll128, ll: MPI rows Simple only


# ------------------------------------------------------------------------------------------------ NIC ports


def _design(name):
    return topo.load(ROOT / "topologies" / f"{name}.toml")


def _ported(nics=None, nic_GBps=None, bandwidth=None, planes=1, tiers=2):
    """A small rail-optimised design whose first switch tier states NIC ports, bandwidth or both."""
    leaf = {
        "name": "leaf",
        "latency_us": 14.0,
        "switch": {"model": "m", "radix": 64, "power_W": 100.0},
        "sources": {"latency_us": "t", "switch.radix": "t", "switch.power_W": "t"},
    }
    for key, value in (("nics_per_domain", nics), ("nic_GBps", nic_GBps), ("bandwidth_GBps", bandwidth)):
        if value is not None:
            leaf[key] = value
            leaf["sources"][key] = "t"
    spine = {**leaf, "name": "spine", "bandwidth_GBps": 50.0, "sources": {**leaf["sources"], "bandwidth_GBps": "t"}}
    spine = {k: v for k, v in spine.items() if k not in ("nics_per_domain", "nic_GBps")}
    spec = {
        "name": "ported",
        "planes": planes,
        "sources": {"planes": "t"},
        "tier": [
            {
                "name": "nvlink",
                "size": 8,
                "bandwidth_GBps": 450.0,
                "latency_us": 3.4,
                "sources": {"size": "t", "bandwidth_GBps": "t", "latency_us": "t"},
            },
            leaf,
            spine,
        ][:tiers],
    }
    return topo.from_dict(spec, "ported.toml")


@pytest.mark.parametrize(
    ("name", "per_gpu_GBps", "gpus", "host_ports", "leaves"),
    [
        ("aws-p5-efa", 32 * 12.5 / 8, 20_000, 80_000, 625),  # 4 ports of 100G per GPU, 128 down per 256-port leaf
        ("summit-edr", 2 * 12.5 / 6, 27_648, 9_216, 512),  # 2 EDR ports per 6 GPUs, 18 down per 36-port leaf
        ("alibaba-hpn-dualplane", 16 * 25.0 / 8, 15_360, 30_720, 240),  # 2 x 200G per GPU, one port in each plane
        ("meta-h100-roce-24k", 8 * 50.0 / 8, 24_576, 24_576, 1_536),  # one 400G per GPU, 16 GPUs per ToR
    ],
)
def test_nic_ports_per_domain_give_the_bandwidth_per_gpu_and_the_switch_counts(
    name, per_gpu_GBps, gpus, host_ports, leaves
):
    design = _design(name)
    assert design.tiers[1].bandwidth_GBps == pytest.approx(per_gpu_GBps)
    assert design.tiers[1].sources["bandwidth_GBps"].startswith("derived: nics_per_domain x nic_GBps")
    counts = topo.size(design, gpus)
    assert counts[0].links == host_ports and counts[0].switches == leaves
    assert alg.nominal(design).inv_GBps[1] == pytest.approx(1 / (per_gpu_GBps * design.tiers[1].efficiency))


def test_one_port_per_gpu_is_what_a_file_without_ports_means():
    implicit, explicit = _ported(bandwidth=50.0, tiers=3), _ported(nics=8, nic_GBps=50.0, tiers=3)
    assert explicit.tiers[1].bandwidth_GBps == 50.0
    assert topo.group_gpus(implicit) == topo.group_gpus(explicit)
    assert [topo.capacity(implicit, t) for t in (1, 2, 3)] == [topo.capacity(explicit, t) for t in (1, 2, 3)]
    assert topo.size(implicit, 2048) == topo.size(explicit, 2048)
    shared_ports = _ported(nics=2, nic_GBps=200.0, tiers=3)  # the same 50 GB/s per GPU through 2 ports per 8 GPUs
    assert topo.size(shared_ports, 2048)[0].links == 512 and topo.group_gpus(shared_ports)[2] == 4 * 32 * 32


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"nics": 8, "nic_GBps": 50.0, "bandwidth": 40.0},
            "tier 'leaf': bandwidth_GBps = 40 disagrees with nics_per_domain x nic_GBps",
        ),
        ({"nics": 8}, "tier 'leaf': nics_per_domain = 8 needs nic_GBps beside it"),
        ({"nic_GBps": 50.0}, "tier 'leaf': nic_GBps = 50.0 needs nics_per_domain beside it"),
        ({"nics": 7.5, "nic_GBps": 50.0}, "tier 'leaf': nics_per_domain = 7.5 is not a whole number"),
        ({"nics": 9, "nic_GBps": 50.0, "planes": 2}, "tier 'leaf': nics_per_domain = 9 does not split into 2 planes"),
        ({}, "tier 'leaf': missing bandwidth_GBps (or nics_per_domain and nic_GBps"),
    ],
)
def test_a_bad_port_count_is_one_sentence_naming_file_tier_and_key(spec, message):
    with pytest.raises(NcbenchError) as err:
        _ported(**spec)
    assert err.value.exit_code == 65 and "ported.toml" in str(err.value) and message in str(err.value)
    assert "\n" not in str(err.value)


def test_ports_belong_to_the_first_switch_tier_and_need_a_source(tmp_path):
    text = (ROOT / "topologies" / "aws-p5-efa.toml").read_text()
    moved = text.replace('name = "spine"\n', 'name = "spine"\nnics_per_domain = 32\n', 1)
    unsourced = text.replace('nic_GBps = "3,200 Gb/s / 32 cards = 100 Gb/s = 12.5 GB/s per direction per port"\n', "")
    for edited, message in (
        (moved, "tier 'spine': nics_per_domain belongs to the first switch tier"),
        (unsourced, "tier 'leaf': nic_GBps = 12.5 has no source"),
    ):
        bad = tmp_path / "bad.toml"
        bad.write_text(edited)
        with pytest.raises(NcbenchError, match=message):
            topo.load(bad)


def test_a_design_with_ports_round_trips_even_after_a_fit_changed_its_bandwidth(tmp_path):
    design = _design("summit-edr")
    again = topo.load(topo.save(design, tmp_path / "same.toml"))
    assert again.tiers == design.tiers
    faster = replace(design, tiers=(design.tiers[0], replace(design.tiers[1], bandwidth_GBps=5.0), *design.tiers[2:]))
    fitted = topo.load(topo.save(faster, tmp_path / "fitted.toml"))  # nic_GBps follows: 5 x 6 / 2
    assert fitted.tiers[1].nic_GBps == pytest.approx(15.0) and fitted.tiers[1].bandwidth_GBps == 5.0
    assert "follows bandwidth_GBps" in fitted.tiers[1].sources["nic_GBps"]


def test_copies_of_a_first_switch_tier_with_ports_carry_no_ports(tmp_path):
    design = _ported(nics=2, nic_GBps=200.0)
    grown, added = topo.extended(design, 100_000)
    assert added >= 1 and all(t.nics_per_domain is None for t in grown.tiers[2:])
    assert grown.ports_per_domain == 2
    assert topo.load(topo.save(grown, tmp_path / "grown.toml")).tiers == grown.tiers


def test_the_new_designs_are_shipped_and_state_their_ports():
    names = {topo.load(p).name for p in SHIPPED}
    new = {"meta-h100-roce-24k", "alibaba-hpn-dualplane", "aws-p5-efa", "summit-edr", "frontier-slingshot"}
    assert new <= names
    for name in new:
        design = _design(name)
        assert design.tiers[1].nics_per_domain and design.tiers[1].nic_GBps
        assert not alg.network_reduces(alg.shape(design, [design.gpus]))  # none reduces in its switches


# ------------------------------------------------------------------------------------------------ cost model


def _flat(alpha=(2.0, 10.0), bw=(100.0, 20.0), g=8, base=5.0):
    spec = {
        "name": "flat",
        "base_latency_us": base,
        "rail_optimized": False,
        "sources": {"base_latency_us": "test"},
        "tier": [
            {
                "name": "nvlink",
                "size": g,
                "bandwidth_GBps": bw[0],
                "latency_us": alpha[0],
                "sources": {"size": "t", "bandwidth_GBps": "t", "latency_us": "t"},
            },
            {
                "name": "net",
                "size": 4096,
                "bandwidth_GBps": bw[1],
                "latency_us": alpha[1],
                "sources": {"size": "t", "bandwidth_GBps": "t", "latency_us": "t"},
            },
        ],
    }
    return topo.from_dict(spec)


def _time(design, op, algorithm, p, nbytes, protocol="simple"):
    terms = alg.with_protocol(alg.cost(op, algorithm, alg.shape(design, [p])), alg.PROTOCOLS[protocol])
    return alg.evaluate(terms, alg.nominal(design), [nbytes])[0, 0]


def test_ring_allreduce_in_one_domain_is_the_textbook_formula():
    design = _flat()
    n = 1 << 20
    expected = 5.0 + 2 * 7 * 2.0 + 2 * 7 / 8 * n / (100.0 * 1e3)
    assert _time(design, "allreduce", "ring", 8, n) == pytest.approx(expected)


def test_ring_across_domains_charges_network_steps_and_runs_at_the_slowest_link():
    design = _flat(bw=(100.0, 10.0))  # 8 GPUs x 10 GB/s of NIC per domain = 80 GB/s, below NVLink's 100
    n, p = 1 << 30, 64  # 8 domains: 8 of the 64 ring edges cross the network
    steps = 2 * (p - 1)
    # across nodes, above NCCL's threshold: the plateau; an NVLink step costs at least NCCL's net overhead, 3 x 1 us
    # under Simple (2.0 here is below it)
    latency = (5.0 + steps * (56 / 64 * 3 * alg.NET_OVERHEAD_US + 8 / 64 * 10.0)) * alg.RING_PLATEAU
    # one ring edge per domain crosses the network, and NCCL's channels spread it over all 8 NICs of the domain
    expected = latency + 2 * (p - 1) / p * n / (8 * 10.0 * 1e3)
    assert _time(design, "allreduce", "ring", p, n) == pytest.approx(expected)


@pytest.mark.parametrize(("bw", "busbw"), [((100.0, 20.0), 100.0), ((100.0, 10.0), 80.0)])
def test_busbw_of_a_large_ring_allreduce_is_nvlink_or_the_domains_nics_whichever_is_less(bw, busbw):
    design = _flat(bw=bw)
    out = pred.predict(design, ops=("allreduce",), gpus=[64], nbytes=[16 << 30], algorithms=("ring",), samples=2)
    assert out["busbw_GBps"].iloc[0] == pytest.approx(busbw, rel=0.01)


def test_tree_latency_grows_with_log_p_and_ring_latency_with_p():
    design = _flat()
    ring = [_time(design, "allreduce", "ring", p, 8) for p in (64, 128, 256)]
    tree = [_time(design, "allreduce", "tree", p, 8) for p in (64, 128, 256)]
    assert ring[2] - ring[1] == pytest.approx(2 * (ring[1] - ring[0]), rel=0.05)
    assert tree[2] - tree[1] == pytest.approx(tree[1] - tree[0], rel=1e-6)
    assert tree[1] - tree[0] == pytest.approx(2 * 10.0, rel=1e-3)  # one more level, up and down (+ an 8 B fill)


def test_alltoall_peers_and_hierarchical_phases_add_up():
    design = _flat()
    shape = alg.shape(design, [64])
    assert shape.peers.sum() == 63 and shape.peers[0, 0] == 7
    n = 1 << 30
    expected = 5.0 + 2 * 7 * 2.0 + 2 * 7 * 10.0 + 2 * 7 / 8 * n / 100e3 + 2 * 7 / 8 / 8 * n / 20e3
    assert _time(design, "allreduce", "hierarchical", 64, n) == pytest.approx(expected)


def test_enablement_follows_nccl_rules():
    design = topo.load(SUPERPOD)
    shape = alg.shape(design, [8, 64])
    assert list(alg.enabled("allreduce", "nvls", shape)) == [True, True]  # SHARP in every switch tier
    assert list(alg.enabled("allreduce", "nvlstree", shape)) == [False, True]
    assert list(alg.enabled("allgather", "pat", shape)) == [False, False]  # PAT needs one GPU per node
    colossus = topo.load(ROOT / "topologies" / "colossus-spectrum-x-200k.toml")
    assert list(alg.enabled("allreduce", "collnet", alg.shape(colossus, [64]))) == [False]  # no SHARP on Ethernet


NO_SHARP = [
    p.stem for p in SHIPPED if p.stem != "this-machine" and not alg.network_reduces(alg.shape(topo.load(p), [16]))
]


@pytest.mark.parametrize("name", NO_SHARP)
def test_a_fabric_whose_switches_reduce_nothing_never_reduces_in_the_network_across_domains(name):
    design, _ = topo.extended(_design(name), 1_000_000)
    g = design.gpus_per_domain
    shape = alg.shape(design, [g, 4096, 1_000_000])
    nvswitch = design.tiers[0].reduction == "nvls"  # Summit's NVLink2 has no NVSwitch, so no NVLS at all
    assert list(alg.enabled("allreduce", "nvls", shape)) == [nvswitch, False, False]  # inside one domain only
    assert not alg.enabled("allreduce", "collnet", shape).any()
    # NVLSTree: NVLS in the NVSwitch, a tree over the network; NCCL enables it without SHARP (enqueue.cc)
    assert list(alg.enabled("allreduce", "nvlstree", shape)) == [False, nvswitch, nvswitch]
    picked = pred.predict(
        design,
        ops=("allreduce", "allgather", "reducescatter"),
        gpus=[4096, 1_000_000],
        nbytes=[8, 1 << 20, 1 << 30, 16 << 30],
        samples=2,
    )
    assert not set(picked.algorithm) & {"nvls", "collnet"}, picked[["gpus", "bytes", "algorithm"]]


def test_nvls_across_domains_needs_sharp_in_every_network_tier_or_one_nvlink_domain():
    nvl72 = _design("gb200-nvl72-ndr")
    assert alg.enabled("allreduce", "nvls", alg.shape(nvl72, [72, 4096])).tolist() == [True, True]
    some = replace(nvl72, tiers=(*nvl72.tiers[:3], replace(nvl72.tiers[3], reduction="")))  # a core without SHARP
    none = replace(nvl72, tiers=(nvl72.tiers[0], *(replace(t, reduction="") for t in nvl72.tiers[1:])))
    for design in (some, none):
        shape = alg.shape(design, [72, 144, 4096])  # a whole NVL72 is one domain: NVLS needs no switch there
        assert alg.enabled("allreduce", "nvls", shape).tolist() == [True, False, False]
        assert not alg.enabled("allreduce", "collnet", shape).any()
        assert alg.enabled("allreduce", "nvlstree", shape).tolist() == [False, True, True]
    assert alg.enabled("allgather", "nvls", alg.shape(nvl72, [72, 144])).tolist() == [True, False]


# ------------------------------------------------------------------------------------------------ fit


def _synthetic(truth, scales, ops=("allreduce", "sendrecv"), noise=0.02, seed=3):
    rng = np.random.default_rng(seed)
    rows = []
    tuner = topo.load(SUPERPOD)  # NCCL chooses its protocols with the design's constants, not the truth's
    for op in ops:
        rows += model_rows(truth, op, "ring" if op == "allreduce" else "p2p", scales, rng, noise=noise, tuner=tuner)
    return pd.DataFrame(rows)


def test_fit_recovers_the_parameters_that_made_the_data_within_5_percent():
    nominal = topo.load(SUPERPOD)
    t = nominal.tiers
    truth = replace(
        nominal,
        base_latency_us=6.0,
        tiers=(
            replace(t[0], latency_us=2.1, efficiency=0.7),
            replace(t[1], latency_us=9.0, efficiency=0.8),
            replace(t[2], latency_us=12.0),
            t[3],
        ),
    )
    data = _synthetic(truth, [2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384])
    result = fit_mod.fit(data, nominal, algorithm="ring", samples=50)
    table = result.parameters.assign(truth=alg.nominal(truth).vector())
    must = [
        "base_latency_us",
        "nvlink.latency_us",
        "leaf.latency_us",
        "spine.latency_us",
        "nvlink.inverse_GBps",
        "leaf.inverse_GBps",
    ]
    assert set(must) <= set(table[table.constrained].parameter)
    constrained = table[table.constrained]
    assert np.all(np.abs(constrained.value / constrained.truth - 1) < 0.05), constrained
    untouched = table[~table.constrained]
    assert np.all(untouched.value == untouched.nominal)
    assert result.topology.fit.median_abs_error_pct < 3


def test_fit_refuses_data_it_cannot_use():
    with pytest.raises(NcbenchError) as err:
        fit_mod.fit(
            pd.DataFrame(
                {
                    "op": ["allreduce"],
                    "backend": ["mpi"],
                    "nranks": [1],
                    "nnodes": [1],
                    "ranks_per_node": [1],
                    "nbytes": [8],
                    "time_us": [1.0],
                    "wrong": [0],
                }
            ),
            topo.load(SUPERPOD),
        )
    assert err.value.exit_code == 65


# ------------------------------------------------------------------------------------------------ predict


def test_predict_covers_the_default_sweep_with_bands_around_the_estimate():
    design = topo.load(ROOT / "topologies" / "colossus-1m-4tier.toml")
    out = pred.predict(design, samples=50)
    assert set(out.op) == set(alg.OPS)
    assert out.gpus.min() == 200_000 and out.gpus.max() == 1_000_000
    assert out.bytes.min() == 8 and out.bytes.max() == 16 << 30
    ok = out.time_us.notna()
    assert (out.time_us_low[ok] <= out.time_us[ok] * (1 + 1e-9)).all()
    assert (out.time_us_high[ok] >= out.time_us[ok] * (1 - 1e-9)).all()
    small = out[(out.op == "allreduce") & (out.bytes == 8) & (out.gpus == 1_000_000)]
    assert small.algorithm.iloc[0] != "ring"  # at 1M GPUs a ring's 2(p-1) steps lose to a tree's log p


def test_a_degraded_link_slows_a_million_gpus_more_than_a_thousand():
    design = topo.load(ROOT / "topologies" / "colossus-1m-4tier.toml")
    slow = replace(design, degraded_link_fraction=1e-4, degraded_link_speed=0.5)
    args = {
        "ops": ("allreduce",),
        "gpus": [1000, 1_000_000],
        "nbytes": [16 << 30],
        "algorithms": ("tree",),
        "samples": 2,
    }
    ratio = pred.predict(slow, **args).time_us.to_numpy() / pred.predict(design, **args).time_us.to_numpy()
    assert 1.0 < ratio[0] < 1.15 and ratio[1] > 1.8  # 1k GPUs: 10 % odds of a slow link; 1M: certain


def test_init_fit_and_failure_rates_give_scale_costs():
    params = pred.fit_init([16_000, 22_000, 64_000, 98_000], [17, 30, 100, 200])
    assert 1.0 < params["exponent"] < 1.6
    center, low, high = pred.init_times(params, [98_000])
    assert low[0] < center[0] < high[0] and center[0] == pytest.approx(200, rel=0.15)
    design = topo.load(ROOT / "topologies" / "colossus-1m-2plane.toml")
    costs = pred.scale_costs(design, [100_000, 1_000_000])
    mtbf = costs[costs.op == "mtbf"].time_us.to_numpy() / 60e6
    assert mtbf[0] == pytest.approx(10 * mtbf[1]) and 10 < mtbf[0] < 60  # published: ~18 min at 100k


def test_json_has_the_fields_the_issue_names():
    design = topo.load(SUPERPOD)
    out = pred.predict(design, ops=("allgather",), gpus=[16384], nbytes=[8, 1 << 20], samples=5)
    rows = json.loads(pred.render(out, "json"))
    assert {
        "gpus",
        "bytes",
        "op",
        "algorithm",
        "time_us",
        "time_us_low",
        "time_us_high",
        "algbw_GBps",
        "busbw_GBps",
    } <= set(rows[0])
