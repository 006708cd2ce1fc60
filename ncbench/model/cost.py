"""The cost of each collective algorithm on a topology, linear in per-tier latency and 1/bandwidth.

(op, algorithm, protocol, Topology, GPU counts) -> Terms -> time_us; `fit` solves the same Terms for the
parameters and `predict` evaluates them, so the physics is written once (docs/cost-model.md).
Formulas: Thakur/Rabenseifner/Gropp 2005, Sanders et al. 2009, NCCL's src/graph/tuning.cc (docs/cost-model.md).
Everything is vectorised over GPU counts: the cost never enumerates GPUs one by one.
"""

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from .. import ops as ops_mod
from . import topology as topo_mod
from .topology import Topology


@dataclass(frozen=True)
class Protocol:
    name: str  # NCCL's protocol (PROTOCOLS key): which row of treeCorrectionFactor, which chunk rule
    chunk_bytes: float  # a tree's chunk per channel: what one pipeline stage forwards before the next starts
    base: float  # fixed cost over Simple's, a ratio so it scales with a fitted b (baseLatencies LL 6.6, LL128 14.0, Simple 8.4 us)
    intra_latency: float  # per-step latency relative to Simple on NVLink (hwLatencies NVLINK Ring 0.6/1.9/3.4)
    net_latency: float  # ... and on the network (hwLatencies NET Ring 2.7/4.0/14.0)
    bandwidth: float  # usable fraction of bandwidth (LL: 8-byte flag per 8 bytes; LL128: 120/128, NCCL uses 0.92)
    grain_bytes: int  # chunks are whole grains (ncclProtoGrainSize, device.h:328-334; enqueue.cc:2321)
    tree_correction: tuple[float, ...]  # NCCL's treeCorrectionFactor row, index log2(n / 64) (tuning.cc:623-627)
    tree_bandwidth: float = 1.0  # a Tree's bandwidth over Tree/Simple's (tuning.cc:333-336: LL 1/3.8, LL128 120/128)
    # a Tree's per-step latency on NVLink and on the network, relative to Ring/Simple's 3.4 and 14 us (hwLatencies
    # Tree columns: NVLINK 0.6/1.25/4.0, NET 5.0/8.5/14 for LL/LL128/Simple; tuning.cc:158-174)
    tree_latency: tuple[float, float] = (4.0 / 3.4, 1.0)


# NCCL v2.30.7 (NVIDIA/nccl 5067397c). chunk_bytes is calcCollChunking's chunk for a tree (enqueue.cc:2222-2227:
# stepSize = buffSize / NCCL_STEPS, chunkSteps 1 off Ring/Simple): Simple 4 MiB / 8 = 512 KiB (init.cc:813,
# device.h:26); LL 512 KiB / 8 / 2 (8-byte flag per 8 bytes) = 32 KiB (init.cc:810-811: 8 lines x 512 threads x 8
# steps x 16 B; device.h:97-98); LL128 4,915,200 / 8 x 15/16 = 576,000 B (init.cc:812: 120 elems x 640 threads x 8
# steps x 8 B; device.h:111-115). Grains: LL 16 B, LL128 32 x 8 / 16 x 15 x 8 = 1,920 B, Simple 512 B.

# treeCorrectionFactor[protocol][log2(n / 64)], n = 64 B .. 2^29 B (NCCL v2.30.7 src/graph/tuning.cc:623-627, as there)
TREE_CORRECTION_FACTOR = {
    "ll": "1 1 1 1 .9 .8 .7 .7 .7 .7 .6 .5 .4 .4 .5 .6 .7 .8 .9 1 1 1 1 1",
    "ll128": "1 1 1 1 1 .9 .8 .8 .8 .7 .6 .6 .6 .6 .6 .6 .8 .9 .9 .9 .9 1 1 1",
    "simple": ".9 .9 .9 .9 .9 .9 .9 .8 .7 .6 .6 .5 .5 .5 .5 .6 .7 .8 .7 .7 .8 .9 .9 .9",
}


def _row(name: str) -> tuple[float, ...]:
    return tuple(float(x) for x in TREE_CORRECTION_FACTOR[name].split())


PROTOCOLS = {
    "simple": Protocol("simple", 512 * 1024, 1.0, 1.0, 1.0, 1.0, grain_bytes=512, tree_correction=_row("simple")),
    "ll128": Protocol(
        "ll128",
        576_000,
        14.0 / 8.4,
        1.9 / 3.4,
        4.0 / 14.0,
        0.92,
        grain_bytes=1920,
        tree_correction=_row("ll128"),
        tree_bandwidth=120 / 128,
        tree_latency=(1.25 / 3.4, 8.5 / 14),
    ),
    "ll": Protocol(
        "ll",
        32 * 1024,
        6.6 / 8.4,
        0.6 / 3.4,
        2.7 / 14.0,
        0.5,
        grain_bytes=16,
        tree_correction=_row("ll"),
        tree_bandwidth=1 / 3.8,
        tree_latency=(0.6 / 3.4, 5 / 14),
    ),
}
assert tuple(PROTOCOLS) == topo_mod.NCCL_PROTOCOLS  # a topology's `protocols` names these, in this order
# Fixed latencies NCCL's tuner charges instead of per-step ones (NCCL src/graph/tuning.cc hwLatencies, Simple; docs/cost-model.md).
NVLS_US = 25.0  # NVLINK NVLS / NVLSTree
NVLS_NET_US = 18.0  # NET NVLS, added when the NVLS allreduce spans nodes (with IB SHARP)
COLLNET_US = 31.0  # NET CollNetDirect: the SHARP aggregation round trip
COLLNET_ARITY_US = 0.4  # per local rank serialisation in CollNetDirect
PAT_LINEAR_US = 2.8  # PAT's "still a linear part" per rank
TREE_BANDWIDTH = 0.92  # Tree allreduce busBw cap, 0.92 x link (tuning.cc L326-350)
PAT_BANDWIDTH = 0.75  # PAT busBw x 0.75
# Inter-node rings "still have to launch nsteps * net overhead": an NVLink step of a ring across nodes costs at
# least this (x 3 under Simple; the Intel-host value, AMD 2.0) (tuning.cc:396-405, getNetOverhead)
NET_OVERHEAD_US = 1.0
NVLSTREE_NET_LATENCY = 20.9 / 14.0  # NVLSTree's network step, relative to Ring/Simple's (hwLatencies NET NVLSTree)
# LL across nodes streams at most llMaxBw of busBw, Ring/LL and Tree/LL alike (tuning.cc:325,331): llMaxBws
# Intel-N2 39.0 on 2 nodes, Intel-N4 20.4 GB/s on 3 or more (AMD hosts 22.5 / 19.0, not modelled)
LL_MAX_BUSBW_GBPS = ((2, 39.0), (3, 20.4))

# NCCL's per-size rules (NCCL v2.30.7; docs/cost-model.md, "NCCL's per-size rules"). Every one scales a coefficient of
# theta by a number that depends on the size and the communicator only, so the cost stays linear in theta.
TREE_CORRECTION_SIZES = 23  # Tree allreduce bw x factor[log2i(n >> 6)] while 0 <= index < 23 (tuning.cc:639-642)
RING_PLATEAU = 1.4  # Ring/Simple allreduce latency x 1.4 across nodes, minCompCap >= 80 (1.9 below) (tuning.cc:647-650)
RING_PLATEAU_BYTES = 64  # ... when n / (nChannels x nRanks) >= 64 (tuning.cc:648)
CHANNELS_PER_PORT = 2  # runtime channels: one search channel per NIC (search.cc:739-750), doubled (connect.cc:460)
MAX_CHANNELS = 64  # MAXCHANNELS (device.h:91), the cap of connect.cc:460
LL128_TREE_HALVING = ((64, 131072), (16, 32768))  # Tree/LL128: halve while n_ch / c < s x this / ppn and c > floor
NVLS_CHANNELS = 16  # NVLS channels on SM90 (NVLS_NCHANNELS_SM90, nvls.cc:155); NVLSTree uses them all (enqueue.cc:2089)
NVLS_CHUNK_BYTES = 128 * 1024  # NCCL_NVLS_CHUNKSIZE default (nvls.cc:160)
NVLSTREE_CHUNK_BYTES = 64 * 1024  # NVLSTree's chunk cap with nNodes >= 4 (nvls.cc:229)
# NVLSTree cuts (x, floor): chunk -> floor if n_ch < x heads chunk and chunk > floor (enqueue.cc:2282-2285)
NVLSTREE_CUTS = ((32, 262144), (16, 131072), (4, 65536), (1, 32768))

OPS = tuple(ops_mod.OPS)  # allreduce, allgather, reducescatter, broadcast, reduce, alltoall, sendrecv


@dataclass(frozen=True)
class Shape:
    """A communicator of p GPUs laid out on the fabric (arrays over the GPU counts, one row per tier)."""

    p: np.ndarray  # [P] GPUs
    g: int  # GPUs per domain
    domains: np.ndarray  # [P] scale-up domains spanned
    edges: np.ndarray  # [L, P] ring edges whose two ends meet first at tier s
    uplink: np.ndarray  # [L, P] ring edges that climb to tier s, per GPU (tier 0: 1; tier s: groups below it / p)
    chain: np.ndarray  # [P] intra-domain chain length (g - 1)
    levels: np.ndarray  # [L, P] binary-tree levels crossing tier s (tier 0: log2 g)
    peers: np.ndarray  # [L, P] peers whose route turns at tier s
    top: np.ndarray  # [P] highest tier crossed
    reduction: tuple[str, ...]  # per tier
    ntiers: int
    channels: float = 2.0  # NCCL's runtime channels per rank: CHANNELS_PER_PORT per NIC port of the domain, <= 64
    heads: float = 1.0  # NVLS heads per domain: one per NIC port, at most one per GPU (connect.cc:81-90, 248-263)


def shape(topology: Topology, gpus, *, g: int | None = None) -> Shape:
    """Return how communicators of `gpus` GPUs (packed, first GPUs first) map onto the fabric's tiers."""
    p = np.atleast_1d(np.asarray(gpus, dtype=float))
    if g and g != topology.gpus_per_domain:
        topology = replace(topology, tiers=(replace(topology.tiers[0], size=int(g)), *topology.tiers[1:]))
    if topo_mod.capacity(topology, len(topology.tiers)) < p.max():
        raise ValueError(f"{topology.name} does not reach {p.max():.0f} GPUs; pass topology.extended(...)[0]")
    g = topology.gpus_per_domain
    ntiers = len(topology.tiers)
    ports = topology.ports_per_domain
    groups = np.array(topo_mod.group_gpus(topology), dtype=float)
    caps = np.array([topo_mod.capacity(topology, t) for t in range(1, ntiers + 1)], dtype=float)
    top = np.minimum(np.searchsorted(caps, p), ntiers - 1)
    s = np.arange(ntiers)[:, None]
    below_top = s < top[None, :]
    n = np.where(below_top, np.ceil(p[None, :] / groups[:, None]), 1.0)  # groups at each level
    crossing = np.where(n > 1, n, 0.0)  # ring edges leaving level-s groups (a closed ring)
    edges = np.vstack([p - crossing[0], crossing[:-1] - crossing[1:]])
    log_n = np.log2(n)
    levels = np.vstack([np.log2(np.minimum(p, g)), log_n[:-1] - log_n[1:]])
    reach = np.minimum(p[None, :], np.where(below_top, groups[:, None], np.inf))
    peers = np.vstack([reach[0] - 1, reach[1:] - reach[:-1]])
    return Shape(
        p=p,
        g=g,
        domains=n[0],
        edges=edges,
        uplink=np.vstack([np.ones_like(p), crossing[:-1] / p]),
        chain=np.minimum(p, g) - 1,
        levels=levels,
        peers=peers,
        top=top,
        reduction=tuple(t.reduction for t in topology.tiers),
        ntiers=ntiers,
        channels=float(min(MAX_CHANNELS, CHANNELS_PER_PORT * ports)),
        heads=float(max(1, min(ports, g))),
    )


@dataclass(frozen=True)
class Terms:
    """time_us = b x base_factor + fixed_us + steps . alpha_us + nbytes * max_or_sum over phases(volume . inv_bw) / 1e3.

    Parameters per tier: alpha (latency_us), inverse bandwidth (1/GBps) and inverse reduction bandwidth.
    `phases` are [2L, P] volumes (bytes over each tier per payload byte, then the same through in-switch
    reduction); pipelined algorithms run at their slowest phase (max), phased ones add them up.
    """

    fixed_us: np.ndarray  # [P]
    steps: np.ndarray  # [L, P]
    phases: tuple[np.ndarray, ...]
    pipelined: bool = True
    fill: np.ndarray | None = None  # [2L, P] pipeline stages a chunk crosses before data streams (trees)
    chunk_bytes: float = 0.0  # the protocol's chunk per channel before NCCL's size rules (with_protocol sets it)
    rules: str = "none"  # NCCL's per-size rules it follows: "none", "ring", "tree" or "nvlstree" (size_rules)
    protocol: str = "simple"  # the PROTOCOLS key with_protocol applied: the rules' table row and chunk rule
    shape: Shape | None = None  # the communicator the rules read (nodes, ranks, channels); None: no rules
    protocols: tuple[str, ...] = tuple(PROTOCOLS)  # the protocols NCCL runs the algorithm with (cost sets them)
    launch_floor: bool = False  # a ring across nodes launches every NVLink step at least NET_OVERHEAD_US
    intra_floor_us: np.ndarray | None = None  # [P] the least total cost of the NVLink steps (with_protocol sets it)
    base_factor: float = 1.0  # the protocol's fixed cost over Simple's: b enters as b x base_factor
    tuner_base: float = 1.0  # what NCCL's tuner charges of b: 0 for NVLS, NVLSTree, CollNet (baseLatencies 0)
    busbw_volume: np.ndarray | None = None  # [P] bytes per payload byte as NCCL's busBw counts them (ring, tree)
    per_byte_floor_us: np.ndarray | None = None  # [P] the least streaming cost per byte (LL's cap; with_protocol)


def _zeros(shape_: Shape) -> np.ndarray:
    return np.zeros((2 * shape_.ntiers, shape_.p.size))


def _at(shape_: Shape, tier_of: np.ndarray, value, *, reduction: bool = False) -> np.ndarray:
    """Return a [2L, P] volume with `value` at tier `tier_of[j]` for each GPU count j."""
    volume = _zeros(shape_)
    offset = shape_.ntiers if reduction else 0
    volume[offset + tier_of, np.arange(shape_.p.size)] = value
    return volume


def _per_tier(shape_: Shape, weights: np.ndarray, value, *, spread: bool = False) -> tuple[np.ndarray, ...]:
    """One pipelined phase per tier that carries traffic (weights > 0): the slowest one binds.

    `spread`: the traffic is a ring's or a tree's, whose edges cross a network tier only where a group ends, and
    NCCL runs one channel pair per NIC port, so every port of the group carries its share: tier s sees `value`
    times the edges climbing to it per GPU (Shape.uplink), 1/g on the first network tier (docs/cost-model.md,
    "Rings and trees across domains"). Off: every GPU's own link carries `value` (one flow, alltoall, PAT).
    """
    phases = []
    for tier in range(shape_.ntiers):
        volume = _zeros(shape_)
        share = shape_.uplink[tier] if spread else 1.0
        volume[tier] = np.where(weights[tier] > 0, value * share, 0.0)
        phases.append(volume)
    return tuple(phases)


def _ring(shape_: Shape, nsteps: np.ndarray, volume: np.ndarray) -> Terms:
    """A pipelined ring: latency accumulates over the edges a chunk passes, bandwidth is the slowest edge's."""
    share = shape_.edges / shape_.p
    return Terms(np.zeros_like(shape_.p), nsteps * share, _per_tier(shape_, shape_.edges, volume, spread=True))


def _tree_levels(shape_: Shape) -> np.ndarray:
    steps = shape_.levels.copy()
    steps[0] = shape_.chain  # NCCL's trees are chains inside the domain and binary trees across domains
    return steps


def _fill(shape_: Shape, stages: np.ndarray) -> np.ndarray:
    """Pipeline fill of a tree: each stage (level, up and down) waits for one chunk over its tier's link."""
    fill = _zeros(shape_)
    fill[: shape_.ntiers] = stages
    return fill


def _net_top(shape_: Shape) -> np.ndarray:
    return np.maximum(shape_.top, 1)


def _ring_cost(op: str, shape_: Shape) -> Terms:
    """A pipelined ring: reduce-scatter then all-gather for allreduce (docs/cost-model.md, Formulas)."""
    p = shape_.p
    if op == "allreduce":  # NCCL's ring plateau applies to allreduce only
        terms = _ring(shape_, 2 * (p - 1), 2 * (p - 1) / p)
        return replace(terms, rules="ring", shape=shape_, launch_floor=True, busbw_volume=2 * (p - 1) / p)
    if op in ("allgather", "reducescatter"):
        return replace(_ring(shape_, p - 1, (p - 1) / p), shape=shape_, launch_floor=True, busbw_volume=(p - 1) / p)
    if op in ("broadcast", "reduce"):  # a pipelined chain: fill once, then stream n
        return replace(_ring(shape_, p - 1, np.ones_like(p)), shape=shape_, busbw_volume=np.ones_like(p))
    raise KeyError(f"{op}/ring")


def _tree_cost(op: str, shape_: Shape) -> Terms:
    """Double binary tree: reduce up, broadcast down; each GPU moves ~n twice."""
    levels = 2 * _tree_levels(shape_)
    zero = np.zeros_like(shape_.p)
    volume = _per_tier(shape_, shape_.edges, 2.0 / TREE_BANDWIDTH, spread=True)
    fill = _fill(shape_, levels)  # NCCL's Tree algbw is half its busBw: 2 bytes per payload byte
    return Terms(zero, levels, volume, fill=fill, rules="tree", shape=shape_, busbw_volume=2.0 + zero)


def _hierarchical_cost(op: str, shape_: Shape) -> Terms:
    """Intra reduce-scatter, inter ring allreduce on n/g (g rails), intra all-gather."""
    g, k = shape_.g, shape_.domains
    intra = _zeros(shape_)
    intra[0] = 2 * (g - 1) / g
    net_edges = shape_.edges.copy()
    net_edges[0] = 0
    inter_steps = 2 * (k - 1) * net_edges / np.maximum(k, 1)
    steps = inter_steps.copy()
    steps[0] = 2 * (g - 1)
    net = _at(shape_, _net_top(shape_), np.where(k > 1, 2 * (k - 1) / k / g, 0.0))
    return Terms(np.zeros_like(shape_.p), steps, (intra, net), pipelined=False)


def _nvls_cost(op: str, shape_: Shape) -> Terms:
    """NVLink SHARP: each GPU sends n up once and receives n once."""
    p, g, k = shape_.p, shape_.g, shape_.domains
    steps = np.zeros_like(shape_.edges)
    fixed = NVLS_US + np.where(k > 1, NVLS_NET_US, 0.0)
    if op == "allreduce":
        intra = _at(shape_, np.zeros(p.size, int), 1.0, reduction=True)
        inter = _at(shape_, _net_top(shape_), np.where(k > 1, 1.0 / g, 0.0), reduction=True)
        return Terms(fixed, steps, (intra, inter), tuner_base=0.0)
    return Terms(fixed, steps, (_at(shape_, np.zeros(p.size, int), (g - 1) / g, reduction=True),), tuner_base=0.0)


def _nvlstree_cost(op: str, shape_: Shape) -> Terms:
    """NVLS inside the domain, a binary tree of n/g per GPU across domains."""
    p, g = shape_.p, shape_.g
    steps = 2 * _tree_levels(shape_)
    steps[0] = 0
    intra = _at(shape_, np.zeros(p.size, int), 1.0, reduction=True)
    inter = _at(shape_, _net_top(shape_), 2.0 / g / TREE_BANDWIDTH)
    fill = _fill(shape_, steps)
    fixed = np.full_like(p, NVLS_US)
    return Terms(fixed, steps, (intra, inter), fill=fill, rules="nvlstree", shape=shape_, tuner_base=0.0)


def _collnet_cost(op: str, shape_: Shape) -> Terms:
    """CollNet direct: intra scatter, SHARP allreduce of n/g per GPU, intra gather."""
    g = shape_.g
    steps = np.zeros_like(shape_.edges)
    steps[0] = 2 * np.minimum(1, g - 1)
    fixed = COLLNET_US + 2 * (g - 1) * COLLNET_ARITY_US
    intra = _zeros(shape_)
    intra[0] = 2 * (g - 1) / g
    inter = _at(shape_, _net_top(shape_), 1.0 / g, reduction=True)
    return Terms(np.full_like(shape_.p, fixed), steps, (intra, inter), tuner_base=0.0)


def _pat_cost(op: str, shape_: Shape) -> Terms:
    """Bruck-like, logarithmic steps; NCCL adds a linear part per rank."""
    p = shape_.p
    return Terms(PAT_LINEAR_US * p, shape_.levels, _per_tier(shape_, shape_.edges, (p - 1) / p / PAT_BANDWIDTH))


def _recursive_doubling_cost(op: str, shape_: Shape) -> Terms:
    """MPI: log p exchanges of the whole vector."""
    volume = _zeros(shape_)
    volume[: shape_.ntiers] = shape_.levels
    return Terms(np.zeros_like(shape_.p), shape_.levels, (volume,), pipelined=False)


def _rabenseifner_cost(op: str, shape_: Shape) -> Terms:
    """Recursive halving then doubling: near partners first, carrying the most data."""
    halves = np.cumsum(shape_.levels, axis=0)
    before = np.vstack([np.zeros_like(shape_.p), halves[:-1]])
    volume = _zeros(shape_)
    volume[: shape_.ntiers] = 2 * (2.0**-before - 2.0**-halves)
    return Terms(np.zeros_like(shape_.p), 2 * shape_.levels, (volume,), pipelined=False)


def _pairwise_cost(op: str, shape_: Shape) -> Terms:
    """Alltoall as grouped send/recv: every peer once, NVLink and NIC in parallel."""
    p = shape_.p
    intra = _zeros(shape_)
    intra[0] = shape_.peers[0] / p
    net = _zeros(shape_)
    net[1 : shape_.ntiers] = shape_.peers[1:] / p
    return Terms(np.zeros_like(p), shape_.peers, (intra, net))


def _p2p_cost(op: str, shape_: Shape) -> Terms:
    """Sendrecv with ring neighbours: one message over the slowest edge."""
    p = shape_.p
    steps = np.zeros_like(shape_.edges)
    steps[shape_.top, np.arange(p.size)] = 1.0
    return Terms(np.zeros_like(p), steps, _per_tier(shape_, shape_.edges, np.ones_like(p)))


def network_reduces(shape_: Shape) -> bool:
    """Return whether every network tier reduces in its switches (SHARP): what NVLS or CollNet across domains needs."""
    return len(shape_.reduction) > 1 and all(r == "sharp" for r in shape_.reduction[1:])


def _has_nvls(shape_: Shape) -> bool:
    """NVLink SHARP: > 4 GPUs per NVSwitch domain (docs/cost-model.md, Enablement)."""
    return shape_.reduction[0] == "nvls" and shape_.g > 4


def _always(op: str, shape_: Shape) -> np.ndarray:
    return np.ones(shape_.domains.size, bool)


def _tree_enabled(op: str, shape_: Shape) -> np.ndarray:
    return np.full(shape_.domains.size, op == "allreduce")


def _nvls_enabled(op: str, shape_: Shape) -> np.ndarray:
    """Inside one domain any op; across domains only allreduce, as NVLS + CollNet (SHARP on every network tier)."""
    one_domain = shape_.domains == 1
    return _has_nvls(shape_) & (one_domain | (network_reduces(shape_) & (op == "allreduce")))


def _nvlstree_enabled(op: str, shape_: Shape) -> np.ndarray:
    return _has_nvls(shape_) & ~(shape_.domains == 1)


def _collnet_enabled(op: str, shape_: Shape) -> np.ndarray:
    return ~(shape_.domains == 1) & network_reduces(shape_)


def _pat_enabled(op: str, shape_: Shape) -> np.ndarray:
    """NCCL enables PAT only with one GPU per node."""
    return np.full(shape_.domains.size, shape_.g == 1)


@dataclass(frozen=True)
class Algorithm:
    """One collective algorithm: the ops it serves, its cost (op, Shape) -> Terms and enablement -> [P] bool."""

    name: str
    ops: tuple[str, ...]  # the ops it serves (OPS order)
    cost: Callable[[str, Shape], Terms]  # before the protocol is applied
    enabled: Callable[[str, Shape], np.ndarray]  # per GPU count, whether NCCL would consider it
    auto: bool = True  # whether NCCL's tuner picks from it (`auto`); False: there to compare against
    protocols: tuple[str, ...] = tuple(PROTOCOLS)  # NCCL runs NVLS, NVLSTree, CollNet and PAT with Simple only


SIMPLE_ONLY = ("simple",)  # tuning.cc:301-304 (NVLS, NVLSTree, PAT: `continue` off Simple), 341-342 (CollNet: busBw 0)


# Registry order is each op's order in for_op(): the first an op has is NCCL's always-available one.
ALGORITHMS = {
    a.name: a
    for a in (
        Algorithm("ring", ("allreduce", "allgather", "reducescatter", "broadcast", "reduce"), _ring_cost, _always),
        Algorithm("tree", ("allreduce",), _tree_cost, _tree_enabled),
        Algorithm("pat", ("allgather", "reducescatter"), _pat_cost, _pat_enabled, protocols=SIMPLE_ONLY),
        Algorithm(
            "nvls", ("allreduce", "allgather", "reducescatter"), _nvls_cost, _nvls_enabled, protocols=SIMPLE_ONLY
        ),
        Algorithm("nvlstree", ("allreduce",), _nvlstree_cost, _nvlstree_enabled, protocols=SIMPLE_ONLY),
        Algorithm("collnet", ("allreduce",), _collnet_cost, _collnet_enabled, protocols=SIMPLE_ONLY),
        Algorithm("hierarchical", ("allreduce",), _hierarchical_cost, _always, auto=False),
        # MPI's algorithms: no NCCL protocol, so Simple's figures (the fit gives MPI rows Simple too)
        Algorithm("rabenseifner", ("allreduce",), _rabenseifner_cost, _always, auto=False, protocols=SIMPLE_ONLY),
        Algorithm(
            "recursive_doubling", ("allreduce",), _recursive_doubling_cost, _always, auto=False, protocols=SIMPLE_ONLY
        ),
        Algorithm("pairwise", ("alltoall",), _pairwise_cost, _always),
        Algorithm("p2p", ("sendrecv",), _p2p_cost, _always),
    )
}


def for_op(op: str) -> tuple[str, ...]:
    """Return the algorithms `op` can use, the first NCCL's always-available one (KeyError for an unknown op)."""
    if op not in OPS:
        raise KeyError(op)
    return tuple(name for name, algorithm in ALGORITHMS.items() if op in algorithm.ops)


def cost(op: str, algorithm: str, shape_: Shape) -> Terms:
    """Return the Terms of one operation of `op` with `algorithm` (before the protocol is applied)."""
    if algorithm not in ALGORITHMS:
        raise KeyError(f"{op}/{algorithm}")
    return replace(ALGORITHMS[algorithm].cost(op, shape_), protocols=ALGORITHMS[algorithm].protocols)


def enabled(op: str, algorithm: str, shape_: Shape) -> np.ndarray:
    """Return, per GPU count, whether NCCL would consider `algorithm` (tuning.cc and enqueue.cc enablement).

    In-network reduction beyond one scale-up domain (k > 1) needs switch SHARP on every network tier: NCCL
    skips NVLS with nNodes > 1 unless CollNet is supported, and CollNet itself is SHARP. A communicator inside
    one NVLink domain (k = 1, a whole GB200 NVL72 of 72 GPUs included) needs none. NVLSTree reduces in the
    NVSwitch only and runs a tree over the network, so NCCL enables it on any fabric with NVLS and k > 1.
    """
    if algorithm not in ALGORITHMS:
        return np.zeros(shape_.domains.size, bool)
    return ALGORITHMS[algorithm].enabled(op, shape_)


def with_protocol(terms: Terms, protocol: Protocol) -> Terms:
    """Return the Terms under an NCCL protocol: its base latency, per-step factors and bandwidth share."""
    intra, net = {
        "tree": protocol.tree_latency,
        "nvlstree": (protocol.intra_latency, NVLSTREE_NET_LATENCY),  # Simple only; no NVLink steps
    }.get(terms.rules, (protocol.intra_latency, protocol.net_latency))
    factors = np.full((terms.steps.shape[0], 1), net)
    factors[0] = intra
    # A tree's 0.92 is in its volume already; NCCL scales Tree/LL and Tree/LL128 from Tree/Simple (tuning.cc:333-336)
    share = protocol.tree_bandwidth if terms.rules == "tree" else protocol.bandwidth
    fill = None if terms.fill is None else terms.fill / share
    return replace(
        terms,
        base_factor=protocol.base,
        steps=terms.steps * factors,
        phases=tuple(v / share for v in terms.phases),
        fill=fill,
        chunk_bytes=protocol.chunk_bytes,
        protocol=protocol.name,
        intra_floor_us=_launch_floor(terms, protocol),
        per_byte_floor_us=_ll_cap(terms, protocol),
    )


def _ll_cap(terms: Terms, protocol: Protocol) -> np.ndarray | None:
    """Return [P] LL's least streaming cost per byte across nodes, busBw <= llMaxBw (else None)."""
    if protocol.name != "ll" or terms.busbw_volume is None or terms.shape is None:
        return None
    nodes = terms.shape.domains
    cap = np.full(nodes.shape, np.inf)
    for least, busbw_GBps in LL_MAX_BUSBW_GBPS:
        cap = np.where(nodes >= least, busbw_GBps, cap)
    return terms.busbw_volume / cap / 1e3


def as_tuned(terms: Terms) -> Terms:
    """Return the Terms as NCCL's tuner prices them: its baseLatencies are 0 for NVLS, NVLSTree and CollNet,
    whose latency is their own hwLatencies entry (tuning.cc:424-428), while the hardware still pays a call's
    fixed cost b (docs/cost-model.md, "The tuner chooses, the hardware pays")."""
    return terms if terms.tuner_base == 1.0 else replace(terms, base_factor=terms.base_factor * terms.tuner_base)


def _launch_floor(terms: Terms, protocol: Protocol) -> np.ndarray | None:
    """Return [P] the least cost of a ring's NVLink steps across nodes: NCCL's net overhead per step (else None)."""
    if not terms.launch_floor or terms.shape is None:
        return None
    per_step = NET_OVERHEAD_US * (3.0 if protocol.name == "simple" else 1.0)
    return np.where(terms.shape.domains > 1, terms.steps[0] * per_step, 0.0)


@dataclass(frozen=True)
class Params:
    """The model's numbers for one topology: base_us, then per tier alpha_us, 1/bw and 1/reduction bw."""

    base_us: float
    alpha_us: np.ndarray  # [L]
    inv_GBps: np.ndarray  # [2L]: 1/effective bandwidth per tier, then 1/effective reduction bandwidth

    def vector(self) -> np.ndarray:
        return np.concatenate([[self.base_us], self.alpha_us, self.inv_GBps])

    @classmethod
    def from_vector(cls, theta: np.ndarray, ntiers: int) -> "Params":
        return cls(float(theta[0]), theta[1 : 1 + ntiers], theta[1 + ntiers :])


def parameter_names(topology: Topology) -> list[str]:
    """Return the name of each entry of Params.vector() for this topology."""
    tiers = [t.name for t in topology.tiers]
    return (
        ["base_latency_us"]
        + [f"{t}.latency_us" for t in tiers]
        + [f"{t}.inverse_GBps" for t in tiers]
        + [f"{t}.inverse_reduction_GBps" for t in tiers]
    )


def shared(topology: Topology) -> np.ndarray:
    """Return, per tier, how many GPUs share each uplink below it: traffic above an r:1 tier gets bandwidth / r."""
    tiers = topology.tiers
    return np.cumprod([1.0, 1.0] + [t.oversubscription for t in tiers[1:-1]])[: len(tiers)]


def nominal(topology: Topology) -> Params:
    """Return the topology's parameters (effective bandwidths, divided by the uplink sharing below them)."""
    tiers = topology.tiers
    bw = np.array([t.effective_GBps for t in tiers]) / shared(topology)
    reduce_bw = np.array([t.bandwidth_GBps * t.reduction_efficiency for t in tiers]) / shared(topology)
    return Params(
        topology.base_latency_us, np.array([t.latency_us for t in tiers]), np.concatenate([1 / bw, 1 / reduce_bw])
    )


def tuner(topology: Topology) -> np.ndarray:
    """Return the parameter vector NCCL's tuner chooses with: the design's nominal values, also once fitted.

    The library picks an algorithm and a protocol from its own constants, not from what the fabric turned
    out to cost (docs/cost-model.md, "The tuner chooses, the hardware pays"); a fitted topology keeps them
    as each [fit.parameter]'s nominal value.
    """
    center = nominal(topology).vector()
    fitted = topology.fit.parameter if topology.fit else {}
    names = parameter_names(topology)
    return np.array([fitted[n].nominal if n in fitted else v for n, v in zip(names, center, strict=True)])


# --------------------------------------------------------------------------------- NCCL's per-size rules


@dataclass(frozen=True)
class SizeRules:
    """NCCL's per-size factors on one cost, each over [P, N] (or [R] rows): they scale theta's coefficients only."""

    latency: np.ndarray  # multiplies b + F + S . alpha (the ring plateau)
    per_byte: np.ndarray  # multiplies the streaming term n . Phi (1 / treeCorrectionFactor)
    fill_bytes: np.ndarray  # bytes each pipeline stage waits for (trees: the first chunk of every channel)


def _log2i(x: np.ndarray) -> np.ndarray:
    """NCCL's log2i: floor(log2 x) for whole x >= 1, -1 for 0 (utils.h:56, bitops.h log2Down)."""
    _, exponent = np.frexp(x)
    return np.where(x >= 1, exponent - 1, -1)


def _tree_correction(protocol: Protocol, nbytes: np.ndarray) -> np.ndarray:
    """NCCL's treeCorrectionFactor for a Tree allreduce of nbytes (tuning.cc:623-627, 639-642)."""
    index = _log2i(np.floor(nbytes / 64))
    inside = (index >= 0) & (index < TREE_CORRECTION_SIZES)
    return np.where(inside, np.asarray(protocol.tree_correction)[np.clip(index, 0, TREE_CORRECTION_SIZES - 1)], 1.0)


def _ll128_tree_chunk(per_channel: np.ndarray, nodes: np.ndarray, ppn: np.ndarray) -> np.ndarray:
    """Tree/LL128's chunk: 576,000 B halved while a channel has too few chunks for the tree (enqueue.cc:2286-2294)."""
    steps = 1 + _log2i(nodes) + 0.1 * ppn  # nstepsLL128
    chunk = np.full(np.broadcast_shapes(per_channel.shape, nodes.shape), float(PROTOCOLS["ll128"].chunk_bytes))
    for factor, floor in LL128_TREE_HALVING:  # NCCL's two `while` loops, each element-wise (< 5 halvings)
        halve = np.ones(chunk.shape, bool)
        while halve.any():
            halve = (np.floor(per_channel / chunk) < steps * factor / ppn) & (chunk > floor)
            chunk = np.where(halve, chunk // 2, chunk)
    return chunk


def _nvlstree_chunk(per_channel: np.ndarray, nodes: np.ndarray, heads: float) -> np.ndarray:
    """NVLSTree's chunk: 128 KiB, 64 KiB from 4 nodes (nvls.cc:160, 229), cut for small sizes (enqueue.cc:2281-2285)."""
    chunk = np.where(nodes >= 4, min(NVLS_CHUNK_BYTES, NVLSTREE_CHUNK_BYTES), float(NVLS_CHUNK_BYTES)) + 0 * per_channel
    for factor, floor in NVLSTREE_CUTS:  # concurrentOps = nChannels (1: chunked per channel, enqueue.cc:725) x heads
        chunk = np.where((per_channel < factor * heads * chunk) & (chunk > floor), floor, chunk)
    return chunk


def _tree_fill_bytes(terms: Terms, protocol: Protocol, nbytes: np.ndarray, nodes, ppn) -> np.ndarray:
    """Return what each stage of a tree waits for: one chunk, NCCL's by protocol and depth (or the share, if smaller).

    One channel's chunk, as the model charged before: whether a stage waits for every channel's first chunk
    (channels x chunk over the shared link) is not in NCCL's source, and on the published curves it made
    Summit's tree 17-36 % too slow (docs/cost-model.md, "Tree pipeline fill").
    """
    shape_ = terms.shape
    if terms.rules == "nvlstree":  # NCCL sizes the chunk from each NVLS channel's share; a head carries 1/heads
        chunk = _nvlstree_chunk(nbytes / NVLS_CHANNELS, nodes, shape_.heads)
        share = nbytes / shape_.heads
    else:  # NCCL chunks each channel's share on its own
        per_channel = nbytes / shape_.channels
        lone = np.full(np.broadcast_shapes(per_channel.shape, nodes.shape), protocol.chunk_bytes)
        chunk = _ll128_tree_chunk(per_channel, nodes, ppn) if protocol.name == "ll128" else lone
        share = nbytes
    chunk = chunk // protocol.grain_bytes * protocol.grain_bytes  # enqueue.cc:2321
    return np.minimum(share, chunk)


def size_rules(terms: Terms, nbytes, *, paired: bool = False) -> SizeRules:
    """Return NCCL's per-size factors of `terms` over [P GPU counts, N sizes], or over [R] rows when `paired`.

    Ring allreduce: NCCL's plateau (latency x RING_PLATEAU). Tree allreduce: treeCorrectionFactor on the
    streaming term. Trees and NVLSTree: each fill stage waits for one of NCCL's chunks, by protocol and depth.
    """
    n = np.asarray(nbytes, dtype=float)
    shape_ = terms.shape
    p = np.ones(1) if shape_ is None else shape_.p
    n, p = (n, p) if paired else (n[None, :], p[:, None])
    out = np.broadcast_shapes(n.shape, p.shape)
    latency, per_byte = np.ones(out), np.ones(out)
    fill = np.broadcast_to(np.minimum(n, terms.chunk_bytes), out)
    if shape_ is None or terms.rules == "none":
        return SizeRules(latency, per_byte, fill)
    protocol = PROTOCOLS[terms.protocol]
    nodes = shape_.domains if paired else shape_.domains[:, None]
    if terms.rules == "ring" and protocol.name == "simple":
        plateau = (nodes > 1) & (n / (shape_.channels * p) >= RING_PLATEAU_BYTES)
        latency = np.where(plateau, RING_PLATEAU, 1.0) + 0 * latency
    if terms.rules == "tree":
        per_byte = 1.0 / _tree_correction(protocol, n) + 0 * per_byte
    if terms.rules in ("tree", "nvlstree"):
        fill = _tree_fill_bytes(terms, protocol, n, nodes, p / nodes) + 0 * latency
    return SizeRules(latency, per_byte, fill)


def evaluate(terms: Terms, params: Params, nbytes) -> np.ndarray:
    """Return time_us [P, N] for every GPU count (rows) and size (columns)."""
    return evaluate_draws(terms, params.vector()[None, :], nbytes)[0]


def evaluate_draws(terms: Terms, theta: np.ndarray, nbytes) -> np.ndarray:
    """Return time_us [S, P, N] for parameter vectors theta [S, 1+3L] (Params.vector() layout)."""
    nbytes = np.atleast_1d(np.asarray(nbytes, dtype=float))
    rules = size_rules(terms, nbytes)  # [P, N]
    tiers = terms.steps.shape[0]
    latency = theta[:, :1] * terms.base_factor + terms.fixed_us[None, :] + theta[:, 1 : 1 + tiers] @ terms.steps
    if terms.intra_floor_us is not None:  # NVLink steps of a ring across nodes: no cheaper than NCCL's net overhead
        latency += np.maximum(terms.intra_floor_us[None, :] - theta[:, 1:2] * terms.steps[0][None, :], 0.0)
    inverse = theta[:, 1 + tiers :]
    costs = np.einsum("sk,fkp->sfp", inverse, np.stack(terms.phases)) / 1e3
    per_byte = costs.max(axis=1) if terms.pipelined else costs.sum(axis=1)
    if terms.per_byte_floor_us is not None:  # LL across nodes streams no faster than NCCL's llMaxBw
        per_byte = np.maximum(per_byte, terms.per_byte_floor_us[None, :])
    time = latency[:, :, None] * rules.latency + per_byte[:, :, None] * (nbytes * rules.per_byte)
    if terms.fill is not None:  # a tree level waits for one chunk per channel (or the whole message, if smaller)
        time += (inverse @ terms.fill)[:, :, None] * rules.fill_bytes / 1e3
    return time


def linear_rows(terms: Terms, params: Params, nbytes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (constant [P], coefficients [P, 1+3L]) with time_us = constant + coefficients . theta.

    A pipelined algorithm's max() is resolved at `params` (the binding phase), which `fit` iterates. NCCL's
    per-size rules (size_rules, row r at its own GPU count and size) scale the coefficients as in evaluate_draws.
    """
    costs = np.array([params.inv_GBps @ v for v in terms.phases])
    if terms.pipelined:
        binding = costs.argmax(axis=0)
        volume = np.stack(terms.phases)[binding, :, np.arange(binding.size)]  # [P, 2L]
    else:
        volume = np.sum(terms.phases, axis=0).T
    nbytes = np.asarray(nbytes, dtype=float)
    rules = size_rules(terms, nbytes, paired=True)  # [R]: row r has GPU count r and size r
    bandwidth = volume * (nbytes * rules.per_byte / 1e3)[:, None]
    capped = np.zeros(bandwidth.shape[0], bool)
    if terms.per_byte_floor_us is not None:  # where LL's cap binds at `params`, the streaming term is a constant
        streaming_us = (costs.max(axis=0) if terms.pipelined else costs.sum(axis=0)) / 1e3
        capped = terms.per_byte_floor_us > streaming_us
        bandwidth[capped] = 0.0
    if terms.fill is not None:
        bandwidth = bandwidth + terms.fill.T * (rules.fill_bytes / 1e3)[:, None]
    latency = rules.latency[:, None]
    coefficients = np.hstack([latency * terms.base_factor, terms.steps.T * latency, bandwidth])
    constant = terms.fixed_us * rules.latency
    if capped.any():
        constant = constant + np.where(capped, terms.per_byte_floor_us * nbytes * rules.per_byte, 0.0)
    if terms.intra_floor_us is not None:  # where the net overhead binds at `params`, the NVLink steps are a constant
        floored = terms.intra_floor_us > params.alpha_us[0] * terms.steps[0]
        coefficients[floored, 1] = 0.0
        constant = constant + np.where(floored, terms.intra_floor_us * rules.latency, 0.0)
    return constant, coefficients
