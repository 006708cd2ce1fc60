"""Who tests with whom: nodes on a folded-Clos fabric, pair matchings, confirm pairings, shift rounds.

Fabric (from a topology file or a job) + the nodes still healthy -> arrays of (a, b) node pairs or
(src, dst) flows per round; flows -> the switch links they cross under static D-mod-k routing.
Everything is vectorised over nodes, so a 125,000-node plan costs milliseconds (docs/health.md, "Stages":
pairs inside a leaf share no link; shift permutations are contention-free under D-mod-k routing).
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Fabric:
    """N nodes in order: `hosts_per_leaf` per leaf, `leaves_per_pod` leaves under one spine group."""

    nodes: int
    rails: int = 1  # NICs per node; rail-optimised: rail k of every node is on plane k
    hosts_per_leaf: int = 64
    leaves_per_pod: int = 64  # spine groups (pods) are joined by a core tier; everything above is one core level
    adaptive_routing: bool = False  # paths are not a function of (src, dst): tomography cannot name links

    @property
    def leaves(self) -> int:
        return -(-self.nodes // self.hosts_per_leaf)

    @property
    def pods(self) -> int:
        return -(-self.leaves // self.leaves_per_pod)

    def leaf(self, n):
        return n // self.hosts_per_leaf

    def port(self, n):
        return n % self.hosts_per_leaf

    def pod(self, n):
        return self.leaf(n) // self.leaves_per_pod

    def leaf_in_pod(self, n):
        return self.leaf(n) % self.leaves_per_pod

    @property
    def link_space(self) -> int:
        """Return the number of link ids per kind and rail (ids are dense integers below it)."""
        return max(self.leaves * self.hosts_per_leaf, self.pods * self.hosts_per_leaf * self.leaves_per_pod, 1)


def from_topology(topology, nodes: int, *, adaptive_routing: bool = False) -> Fabric:
    """Return the fabric a topology file describes, for `nodes` nodes (scale-up domains).

    Rail-optimised designs share each spine group among the rails, so one rail's plane sees
    spine-children / rails of its leaves per pod. Tiers above the spine are one core level here:
    routing through them is still a function of (src, dst).
    """
    from ..model.topology import children

    switch_tiers = topology.tiers[1:]
    rails = topology.ports_per_domain if topology.rail_optimized else 1  # a rail per NIC port of a domain (plane)
    if not switch_tiers:
        return Fabric(nodes=nodes, rails=rails, hosts_per_leaf=max(nodes, 1), leaves_per_pod=1)
    hosts = children(switch_tiers[0], top=len(switch_tiers) == 1)
    if len(switch_tiers) > 1:
        per_pod = max(1, children(switch_tiers[1], top=len(switch_tiers) == 2) // rails)
    else:
        per_pod = max(1, -(-nodes // hosts))
    return Fabric(
        nodes=nodes, rails=rails, hosts_per_leaf=hosts, leaves_per_pod=per_pod, adaptive_routing=adaptive_routing
    )


def matching(fabric: Fabric, alive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return disjoint pairs (a, b) of alive nodes, neighbours in topology order (same leaf first).

    Two hosts on one leaf share no switch link, so no two pairs contend; the leftover of each odd
    leaf is paired with the next leaf's leftover, and a last odd node stays unpaired (the confirm
    round tests it).
    """
    nodes = np.flatnonzero(alive)
    leaf = fabric.leaf(nodes)
    rank_in_leaf = np.arange(len(nodes)) - np.searchsorted(leaf, leaf)  # nodes are sorted, so leaves are runs
    count = np.bincount(leaf, minlength=fabric.leaves)[leaf]
    inner = rank_in_leaf < count - count % 2
    first = inner & (rank_in_leaf % 2 == 0)
    a, b = nodes[first], nodes[np.flatnonzero(first) + 1]
    left = nodes[~inner]
    pairs_left = len(left) // 2
    return np.concatenate([a, left[0 : 2 * pairs_left : 2]]), np.concatenate([b, left[1 : 2 * pairs_left : 2]])


def unpaired(fabric: Fabric, alive: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Return the alive nodes that `matching` left without a partner."""
    used = np.zeros(fabric.nodes, dtype=bool)
    used[a] = used[b] = True
    return np.flatnonzero(alive & ~used)


def confirm_partners(fabric: Fabric, suspects, good: np.ndarray, first_partner: dict) -> list[tuple[int, int]]:
    """Return (suspect, partner) pairs: each suspect with a distinct known-good node, not its first partner.

    A partner on the suspect's own leaf is preferred (no switch link on the path, so a bad fabric link
    cannot make the retest slow), then its pod, then anyone. Suspects left without one are omitted.
    """
    pool = np.flatnonzero(good)
    taken = np.zeros(fabric.nodes, dtype=bool)
    out = []
    for s in suspects:
        spans = [(fabric.leaf(s) * fabric.hosts_per_leaf, (fabric.leaf(s) + 1) * fabric.hosts_per_leaf)]
        pod_span = fabric.hosts_per_leaf * fabric.leaves_per_pod
        spans.append((fabric.pod(s) * pod_span, (fabric.pod(s) + 1) * pod_span))
        spans.append((0, fabric.nodes))
        partner = None
        for lo, hi in spans:
            window = pool[np.searchsorted(pool, lo) : np.searchsorted(pool, hi)]
            free = window[~taken[window] & (window != s) & (window != first_partner.get(int(s), -1))]
            if len(free):
                partner = int(free[0])
                break
        if partner is not None:
            taken[partner] = True
            out.append((int(s), partner))
    return out


def shift_rounds(fabric: Fabric) -> list[tuple[str, int]]:
    """Return the fabric rounds as (kind, offset): leaf shifts inside pods, then pod shifts.

    Two offsets per level: a single offset cannot tell the uplink of one switch from the downlink
    of the next (boolean tomography needs each link on flows of two rounds); with fewer than 3 leaves or pods the
    second one repeats the first.
    """
    rounds = []
    most_leaves = min(fabric.leaves, fabric.leaves_per_pod)
    for o in (1, 2):
        if o < most_leaves:
            rounds.append(("intra-pod", o))
    for o in (1, 2):
        if o < fabric.pods:
            rounds.append(("inter-pod", o))
    return rounds


def shift_flows(fabric: Fabric, alive: np.ndarray, kind: str, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (src, dst) of one shift round: same port, `offset` leaves (or pods) further on, wrapping.

    Flows from or to nodes that are not alive, or to a position the fabric does not have, are left out.
    """
    n = np.arange(fabric.nodes)
    port, leaf_in_pod, pod = fabric.port(n), fabric.leaf_in_pod(n), fabric.pod(n)
    if kind == "intra-pod":
        leaves_here = np.minimum(fabric.leaves - pod * fabric.leaves_per_pod, fabric.leaves_per_pod)
        dst_leaf = pod * fabric.leaves_per_pod + (leaf_in_pod + offset) % leaves_here
        dst = dst_leaf * fabric.hosts_per_leaf + port
    else:
        dst_pod = (pod + offset) % fabric.pods
        dst = (dst_pod * fabric.leaves_per_pod + leaf_in_pod) * fabric.hosts_per_leaf + port
    ok = (dst < fabric.nodes) & (dst != n)
    ok[ok] &= alive[n[ok]] & alive[dst[ok]]
    return n[ok], dst[ok]


def flow_links(fabric: Fabric, src: np.ndarray, dst: np.ndarray, rail: np.ndarray) -> np.ndarray:
    """Return the switch links each flow crosses, in path order (flows x 4, -1 where it crosses fewer).

    Static D-mod-k routing: the spine is chosen by the destination's port and the core by the
    destination's leaf position, so every hop is a function of (src, dst). Link ids are
    `(rail * 4 + kind) * link_space + index` (see `describe_link`).
    """
    H, Lp, K = fabric.hosts_per_leaf, fabric.leaves_per_pod, fabric.link_space
    port_d, leaf_s, leaf_d = fabric.port(dst), fabric.leaf(src), fabric.leaf(dst)
    pod_s, pod_d, lp_d = fabric.pod(src), fabric.pod(dst), fabric.leaf_in_pod(dst)
    base = rail.astype(np.int64) * 4 * K
    cross_leaf = leaf_s != leaf_d
    cross_pod = pod_s != pod_d
    out = np.full((len(src), 4), -1, dtype=np.int64)
    out[:, 0] = np.where(cross_leaf, base + 0 * K + leaf_s * H + port_d, -1)  # in path order
    out[:, 1] = np.where(cross_pod, base + 2 * K + (pod_s * H + port_d) * Lp + lp_d, -1)
    out[:, 2] = np.where(cross_pod, base + 3 * K + (pod_d * H + port_d) * Lp + lp_d, -1)
    out[:, 3] = np.where(cross_leaf, base + 1 * K + leaf_d * H + port_d, -1)
    return out


def describe_link(fabric: Fabric, link: int) -> str:
    """Return a person's name for a link id: 'rail3 leaf17 -> spine5 (pod0)'."""
    K, H, Lp = fabric.link_space, fabric.hosts_per_leaf, fabric.leaves_per_pod
    rail, rest = divmod(int(link), 4 * K)
    kind, index = divmod(rest, K)
    if kind in (0, 1):
        leaf, spine = divmod(index, H)
        ends = (f"leaf{leaf}", f"spine{spine}(pod{leaf // Lp})")
    else:
        pod_port, core = divmod(index, Lp)
        pod, spine = divmod(pod_port, H)
        ends = (f"spine{spine}(pod{pod})", f"core{spine}.{core}")
    a, b = ends if kind in (0, 2) else ends[::-1]
    return f"rail{rail} {a}->{b}"
