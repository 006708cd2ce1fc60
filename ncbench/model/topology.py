"""A fabric design as data: topologies/*.toml -> Topology; sized for N GPUs -> switches, links, power.

Tiers go from the innermost (the NVLink / NVSwitch domain) outwards (leaf, spine, core); every number
in a file carries its source, and a bad file gets one sentence naming file, tier, key and value.
Sizing follows the folded Clos of Al-Fares et al. (SIGCOMM 2008); docs/cost-model.md, "Folded-Clos sizing".
"""

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import EXIT_DATAERR, EXIT_USAGE, NcbenchError

REDUCTIONS = ("", "nvls", "sharp")
# Keys every tier needs; the rest default to the values below. Units are in the names. The first switch tier
# may give nics_per_domain and nic_GBps instead of bandwidth_GBps (which then follows from them).
TIER_REQUIRED = ("name", "bandwidth_GBps", "latency_us")
TIER_NUMBERS = (
    "size",
    "bandwidth_GBps",
    "nics_per_domain",
    "nic_GBps",
    "latency_us",
    "efficiency",
    "oversubscription",
    "reduction_efficiency",
    "link_W",
)
NIC_KEYS = ("nics_per_domain", "nic_GBps")
# NCCL's protocols, in cost.PROTOCOLS order; a fabric may run fewer (`protocols`: NCCL enables LL128 by default
# only on some paths, src/graph/tuning.cc; docs/formats.md, "Top level").
NCCL_PROTOCOLS = ("simple", "ll128", "ll")
TOP_NUMBERS = ("gpus", "planes", "base_latency_us", "jitter_us", "degraded_link_fraction", "degraded_link_speed")
REQUIRED_KEYS = {"init": {"coefficient_s", "exponent"}, "failures": {"per_gpu_per_day"}}  # what predict reads


@dataclass(frozen=True)
class ParameterFit:
    """One model parameter after `ncbench fit`: its nominal value, the fitted one and its 95 % range."""

    nominal: float
    value: float
    low: float
    high: float
    constrained: bool  # the data decided it; otherwise it stayed nominal


@dataclass(frozen=True)
class FitSummary:
    """What `ncbench fit` fitted, to which results, how well, and with what uncertainty: a topology's [fit] table.

    Written by `fit.fit`, read by `predict` (covariance, model error) and the report; `to_dict` and
    `fit_summary` are the one pair that turns it into the [fit] table of a topology file and back.
    """

    algorithm: str
    points: int  # rows fitted
    residual_log_sd: float  # the model's own error on the fitted rows (log of measured / model)
    median_abs_error_pct: float
    max_abs_error_pct: float
    parameters: tuple[str, ...]  # the constrained parameters, in the order of log_covariance
    log_covariance: tuple[tuple[float, ...], ...]  # of log(parameter), from the bootstrap
    unconstrained: tuple[str, ...]  # parameters the rows touch but do not decide (kept nominal)
    max_gpus: int  # the largest communicator fitted: the band widens with each doubling beyond it
    extrapolation_log_sd_per_doubling: float
    extrapolation_scales: int = 0  # forward-chained predictions behind it (its weight beside a calibrated one)
    runs: tuple[str, ...] = ()  # run ids of the fitted rows: a report matches results by these
    results: tuple[str, ...] = ()  # the files or folders the rows came from, as the user named them
    parameter: Mapping[str, ParameterFit] = field(default_factory=dict)  # every parameter, constrained or not

    def to_dict(self) -> dict:
        """Return the [fit] table: plain values, lists and a sub-table per parameter."""
        out = {name: getattr(self, name) for name in FIT_KEYS}
        out["log_covariance"] = [list(row) for row in self.log_covariance]
        out["parameter"] = {name: vars(p) for name, p in self.parameter.items()}
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


FIT_KEYS = (
    "results",
    "algorithm",
    "points",
    "residual_log_sd",
    "median_abs_error_pct",
    "max_abs_error_pct",
    "parameters",
    "log_covariance",
    "unconstrained",
    "max_gpus",
    "extrapolation_log_sd_per_doubling",
    "extrapolation_scales",
    "runs",
)
FIT_OPTIONAL = {
    "runs": (),
    "results": (),
    "unconstrained": (),
    "extrapolation_log_sd_per_doubling": 0.0,
    "extrapolation_scales": 0,
}


def fit_summary(table: Mapping, where: str = "<topology>") -> FitSummary:
    """Return the FitSummary of a topology file's [fit] table; one sentence (65) on a missing or bad key."""
    missing = [k for k in FIT_KEYS if k not in table and k not in FIT_OPTIONAL]
    unknown = sorted(set(table) - set(FIT_KEYS) - {"parameter"})
    if missing or unknown:
        what = f"lacks {', '.join(missing)}" if missing else f"has unknown key {unknown[0]!r}"
        raise NcbenchError(f"{where}: [fit] {what}; refit with ncbench fit", EXIT_DATAERR)
    value = {**FIT_OPTIONAL, **{k: table[k] for k in FIT_KEYS if k in table}}
    try:
        names = ("nominal", "value", "low", "high", "constrained")
        per = {name: ParameterFit(*(p[k] for k in names)) for name, p in dict(table.get("parameter", {})).items()}
        value = {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}
        value["log_covariance"] = tuple(tuple(float(x) for x in row) for row in value["log_covariance"])
        return FitSummary(**value, parameter=per)
    except (KeyError, TypeError, ValueError) as err:
        raise NcbenchError(f"{where}: [fit] is malformed ({err}); refit with ncbench fit", EXIT_DATAERR) from None


@dataclass(frozen=True)
class Switch:
    model: str
    radix: int  # ports per switch at the NIC port speed (nic_GBps, or one GPU's port in one plane), one plane
    power_W: float  # one switch, without its transceivers


@dataclass(frozen=True)
class Tier:
    name: str
    bandwidth_GBps: float  # line rate per GPU per direction across this tier, all planes together
    latency_us: float  # per algorithm step whose message crosses this tier (library level, not wire)
    size: int | None = None  # scale-up: GPUs per domain; switch tiers: children per group (None: from radix)
    efficiency: float = 1.0  # achieved fraction of bandwidth_GBps (routing: ECMP ~0.6, adaptive ~0.95)
    oversubscription: float = 1.0  # down:up capacity of this tier's switches (traffic going higher shares it)
    reduction: str = ""  # in-network reduction: "nvls" (NVLink SHARP) or "sharp" (switch SHARP)
    reduction_efficiency: float = 1.0  # achieved fraction of bandwidth_GBps when the switch reduces
    switch: Switch | None = None
    link_W: float = 0.0  # transceiver power of one link from this tier down to its children (both ends)
    nics_per_domain: int | None = None  # first switch tier only: NIC ports per scale-up domain, all planes together
    nic_GBps: float | None = None  # ... and the line rate of one port per direction (radix counts ports of this speed)
    sources: Mapping[str, str] = field(default_factory=dict)

    @property
    def effective_GBps(self) -> float:
        return self.bandwidth_GBps * self.efficiency


@dataclass(frozen=True)
class Topology:
    name: str
    tiers: tuple[Tier, ...]  # tiers[0] is the scale-up domain
    description: str = ""
    gpus: int = 0  # the design size `topo show` uses by default
    planes: int = 1  # independent copies of the switch fabric; each GPU's bandwidth is split across them
    rail_optimized: bool = True  # NIC i of every domain goes to leaf i: one leaf group spans size x GPUs/domain
    base_latency_us: float = 8.4  # fixed cost of one collective call
    jitter_us: float = 0.0  # sd of per-rank arrival delay; a synchronous op waits for the latest (+sd*sqrt(2 ln p))
    degraded_link_fraction: float = 0.0  # links running below line rate (health checks find them)
    degraded_link_speed: float = 1.0  # their fraction of line rate
    protocols: tuple[str, ...] = NCCL_PROTOCOLS  # the NCCL protocols NCCL enables on this fabric (Simple always)
    init: Mapping[str, float] = field(default_factory=dict)  # communicator init: time_s = coef * (gpus/1000)**exponent
    failures: Mapping[str, float] = field(default_factory=dict)  # interruptions per GPU per day
    fit: FitSummary | None = None  # written by `ncbench fit`: what was fitted, how well, covariance
    sources: Mapping[str, str] = field(default_factory=dict)

    @property
    def gpus_per_domain(self) -> int:
        return int(self.tiers[0].size or 1)

    @property
    def ports_per_domain(self) -> int:
        """Return the NIC ports of one scale-up domain in one plane (files that state none: one per GPU)."""
        first = self.tiers[1] if len(self.tiers) > 1 else None
        if first is not None and first.nics_per_domain:
            return first.nics_per_domain // self.planes
        return self.gpus_per_domain


# ----------------------------------------------------------------------------------------------- sizing


def children(tier: Tier, *, top: bool) -> int:
    """Return the children one switch group of this tier holds: all ports at the top, the down share below."""
    if tier.size:
        return int(tier.size)
    if tier.switch is None:
        raise NcbenchError(f"tier {tier.name!r} has neither size nor switch radix; one of them sizes it", EXIT_DATAERR)
    if top:
        return tier.switch.radix
    return max(1, int(tier.switch.radix * tier.oversubscription / (tier.oversubscription + 1)))


def group_gpus(topology: Topology) -> list[int]:
    """Return GPUs per group at each tier when that tier is not the top one (tiers[0]: the domain).

    Endpoints are NIC ports (one per GPU unless the file says otherwise), so a group of e endpoints holds
    e x GPUs per domain / ports per domain GPUs. Rail-optimised: the first switch tier's group is `children`
    domains reached through one leaf per rail (NVLink forwards across rails).
    """
    g, ports = topology.gpus_per_domain, topology.ports_per_domain
    sizes = [g]
    endpoints = 1
    for i, tier in enumerate(topology.tiers[1:], start=1):
        endpoints *= children(tier, top=False)
        sizes.append(max(endpoints * g if i == 1 and topology.rail_optimized else endpoints * g // ports, sizes[-1]))
    return sizes


def capacity(topology: Topology, ntiers: int) -> int:
    """Return the most GPUs a fabric using the first `ntiers` tiers (scale-up included) can connect."""
    g, ports = topology.gpus_per_domain, topology.ports_per_domain
    if ntiers <= 1:
        return g
    top = children(topology.tiers[ntiers - 1], top=True)
    if ntiers == 2:
        return top * g if topology.rail_optimized else max(top * g // ports, g)
    endpoints = math.prod(children(t, top=False) for t in topology.tiers[1 : ntiers - 1])
    return endpoints * top * g // ports


def tiers_needed(topology: Topology, gpus: int) -> int:
    """Return how many tiers (scale-up included) connect `gpus` GPUs; NcbenchError when none suffice."""
    for ntiers in range(1, len(topology.tiers) + 1):
        if capacity(topology, ntiers) >= gpus:
            return ntiers
    most = capacity(topology, len(topology.tiers))
    raise NcbenchError(
        f"{topology.name}: {gpus:,} GPUs exceed what its {len(topology.tiers) - 1} switch tier(s) connect "
        f"({most:,}); add a tier or planes to the file, or pass --extend to copy its outermost tier",
        EXIT_USAGE,
    )


@dataclass(frozen=True)
class TierCount:
    tier: str
    group_gpus: int
    switches: int
    links: int  # links from this tier down to its children (host links for the first switch tier)
    transceivers: int
    switch_W: float
    optics_W: float


@dataclass(frozen=True)
class BillOfMaterials:
    """The fabric of a design sized for a GPU count: what `topo show` prints and the report compares."""

    design: Topology  # as sized: with copies of its outermost tier when it was too small and extending was asked
    gpus: int
    tiers_added: int  # copies of the outermost tier added to connect `gpus`
    counts: tuple[TierCount, ...]  # per switch tier needed, innermost first

    @property
    def tiers(self) -> int:
        """Tiers the GPUs' traffic crosses: the scale-up domain and every switch tier needed."""
        return len(self.counts) + 1

    @property
    def switches(self) -> int:
        return sum(c.switches for c in self.counts)

    @property
    def links(self) -> int:
        return sum(c.links for c in self.counts)

    @property
    def transceivers(self) -> int:
        return sum(c.transceivers for c in self.counts)

    @property
    def switch_W(self) -> float:
        return sum(c.switch_W for c in self.counts)

    @property
    def optics_W(self) -> float:
        return sum(c.optics_W for c in self.counts)

    @property
    def network_W(self) -> float:
        """Switches plus transceivers (NICs and NVLink switches are not counted)."""
        return self.switch_W + self.optics_W


def bill_of_materials(topology: Topology, gpus: int, *, extend: bool = False) -> BillOfMaterials:
    """Return the design sized for `gpus` GPUs; `extend` first copies its outermost tier until they fit."""
    added = 0
    if extend:
        topology, added = extended(topology, gpus)
    return BillOfMaterials(topology, gpus, added, tuple(size(topology, gpus)))


def host_ports(topology: Topology, gpus: int) -> int:
    """Return the NIC ports `gpus` GPUs bring into one plane: ceil(gpus x ports per domain / GPUs per domain)."""
    return -(-gpus * topology.ports_per_domain // topology.gpus_per_domain)


def size(topology: Topology, gpus: int) -> list[TierCount]:
    """Return the switches, links and power of each switch tier of the fabric sized for `gpus` GPUs."""
    ntiers = tiers_needed(topology, gpus)
    groups = group_gpus(topology)
    counts = []
    planes = topology.planes
    down = host_ports(topology, gpus)  # links arriving from below, per plane: the NIC ports of the GPUs
    for i in range(1, ntiers):
        tier = topology.tiers[i]
        top = i == ntiers - 1
        width = children(tier, top=top)  # down ports used on each switch
        switches = math.ceil(down / width) if tier.switch else 0
        up = 0 if top or tier.switch is None else switches * (tier.switch.radix - width)
        counts.append(
            TierCount(
                tier=tier.name,
                group_gpus=gpus if top else groups[i],
                switches=switches * planes,
                links=down * planes,
                transceivers=2 * down * planes if tier.link_W > 0 else 0,
                switch_W=switches * planes * (tier.switch.power_W if tier.switch else 0.0),
                optics_W=down * planes * tier.link_W,
            )
        )
        down = up
    return counts


# ----------------------------------------------------------------------------------------------- files


def load(path: Path | str) -> Topology:
    """Read and check a topology TOML; NcbenchError (exit 65) names file, tier, key and value."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise NcbenchError(f"{path}: no such topology file", EXIT_USAGE) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise NcbenchError(f"{path}: not valid TOML ({err})", EXIT_DATAERR) from None
    return from_dict(data, str(path))


def _protocols(data: dict, sources: Mapping, bad) -> tuple[str, ...]:
    """Return the file's `protocols` (NCCL_PROTOCOLS order), checked: known names, Simple among them, a source."""
    if "protocols" not in data:
        return NCCL_PROTOCOLS
    given = data["protocols"]
    if not isinstance(given, list) or not all(isinstance(p, str) for p in given):
        raise bad(f"top level: protocols = {given!r} must be a list of NCCL protocols ({', '.join(NCCL_PROTOCOLS)})")
    unknown = sorted(set(given) - set(NCCL_PROTOCOLS))
    if unknown:
        raise bad(f"top level: protocols names {unknown[0]!r}; NCCL's protocols are {', '.join(NCCL_PROTOCOLS)}")
    if "simple" not in given:
        raise bad("top level: protocols must include 'simple', which NCCL runs on every path")
    if "protocols" not in sources:
        raise bad("top level: protocols has no source; add it under [sources]")
    return tuple(p for p in NCCL_PROTOCOLS if p in given)


def from_dict(data: dict, where: str = "<topology>") -> Topology:
    """Build a Topology from parsed TOML, checking every value where it enters."""

    def bad(what: str) -> NcbenchError:
        return NcbenchError(f"{where}: {what}", EXIT_DATAERR)

    if not isinstance(data.get("name"), str) or not data["name"]:
        raise bad("top-level key 'name' is missing; every topology needs a name")
    raw_tiers = data.get("tier")
    if not isinstance(raw_tiers, list) or not raw_tiers:
        raise bad("no [[tier]] tables; list tiers from the scale-up domain outwards")
    tiers = tuple(_tier(raw, i, bad) for i, raw in enumerate(raw_tiers))
    if not tiers[0].size or tiers[0].size < 1:
        raise bad(f"tier {tiers[0].name!r}: the first tier is the scale-up domain and needs size = GPUs per domain")
    if "planes" in data:
        _number(data["planes"], "planes", "top level", bad)
        if int(data["planes"]) != data["planes"]:
            raise bad(f"top level: planes = {data['planes']} is not a whole number")
    tiers = _with_nic_bandwidth(tiers, int(data.get("planes", 1)), bad)
    top_sources = data.get("sources", {})
    for key in TOP_NUMBERS:
        if key in data:
            _number(data[key], key, "top level", bad, positive=key not in ("jitter_us", "degraded_link_fraction"))
            if key not in top_sources and key not in ("gpus",):
                raise bad(f"top level: {key} = {data[key]} has no source; add it under [sources]")
    if not 0 <= data.get("degraded_link_fraction", 0) <= 1 or not 0 < data.get("degraded_link_speed", 1) <= 1:
        raise bad("degraded_link_fraction must lie in [0, 1] and degraded_link_speed in (0, 1]")
    protocols = _protocols(data, top_sources, bad)
    known = {"name", "description", "tier", "sources", "rail_optimized", "protocols", "init", "failures", "fit"}
    known |= set(TOP_NUMBERS)
    unknown = sorted(set(data) - known)
    if unknown:
        raise bad(f"unknown top-level key {unknown[0]!r}; known keys: {', '.join(sorted(known))}")
    for table in ("init", "failures"):
        for key, value in data.get(table, {}).items():
            if key == "correlation":
                if not isinstance(value, int | float) or not -1 <= value <= 1:
                    raise bad(f"[{table}]: correlation = {value!r} must lie in [-1, 1]")
            elif key != "source":
                _number(value, key, f"[{table}]", bad)
        if data.get(table) and "source" not in data[table]:
            raise bad(f"[{table}] has no source; say where its numbers come from")
        needed = REQUIRED_KEYS[table] - set(data.get(table, {}))
        if data.get(table) and needed:
            raise bad(f"[{table}] needs {', '.join(sorted(needed))}; predict reads it")
    return Topology(
        name=data["name"],
        tiers=tiers,
        description=data.get("description", ""),
        gpus=int(data.get("gpus", 0)),
        planes=int(data.get("planes", 1)),
        rail_optimized=bool(data.get("rail_optimized", True)),
        base_latency_us=float(data.get("base_latency_us", 8.4)),
        jitter_us=float(data.get("jitter_us", 0.0)),
        degraded_link_fraction=float(data.get("degraded_link_fraction", 0.0)),
        degraded_link_speed=float(data.get("degraded_link_speed", 1.0)),
        protocols=protocols,
        init=dict(data.get("init", {})),
        failures=dict(data.get("failures", {})),
        fit=fit_summary(data["fit"], where) if data.get("fit") else None,
        sources=dict(top_sources),
    )


def _number(value, key: str, where: str, bad, *, positive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise bad(f"{where}: {key} = {value!r} is not a number")
    if value < 0 or (positive and value == 0):
        raise bad(f"{where}: {key} = {value!r} must be {'positive' if positive else 'zero or more'}")
    return float(value)


def _tier(raw: dict, index: int, bad) -> Tier:
    if not isinstance(raw, dict):
        raise bad(f"tier {index} is not a table")
    label = f"tier {raw.get('name', index)!r}"
    _check_nic_keys(raw, index, label, bad)
    for key in TIER_REQUIRED:
        if key not in raw and not (key == "bandwidth_GBps" and "nic_GBps" in raw):
            ports = " (or nics_per_domain and nic_GBps, from which it follows)" if index == 1 else ""
            raise bad(f"{label}: missing {key}{ports}")
    known = {*TIER_REQUIRED, *TIER_NUMBERS, "reduction", "switch", "sources"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise bad(f"{label}: unknown key {unknown[0]!r}; known keys: {', '.join(sorted(known))}")
    sources = raw.get("sources", {})
    for key in TIER_NUMBERS:
        if key in raw:
            _number(raw[key], key, label, bad, positive=key not in ("link_W",))
            if key not in sources:
                raise bad(f"{label}: {key} = {raw[key]} has no source; add it to the tier's sources table")
    for key in ("efficiency", "reduction_efficiency"):
        if raw.get(key, 1.0) > 1.0:
            raise bad(f"{label}: {key} = {raw[key]} is above 1; it is a fraction of bandwidth_GBps")
    if raw.get("oversubscription", 1.0) < 1.0:
        raise bad(f"{label}: oversubscription = {raw['oversubscription']} is below 1; write down:up, e.g. 7 for 1:7")
    if raw.get("reduction", "") not in REDUCTIONS:
        raise bad(f"{label}: reduction = {raw['reduction']!r}; choose nvls, sharp or leave it out")
    for key in ("size", "nics_per_domain"):
        if key in raw and int(raw[key]) != raw[key]:
            raise bad(f"{label}: {key} = {raw[key]} is not a whole number")
    switch = None
    if "switch" in raw:
        sw = raw["switch"]
        if not isinstance(sw, dict) or not {"model", "radix", "power_W"} <= set(sw):
            raise bad(f"{label}: switch needs model, radix and power_W")
        _number(sw["radix"], "switch.radix", label, bad)
        _number(sw["power_W"], "switch.power_W", label, bad)
        for key in ("radix", "power_W"):
            if f"switch.{key}" not in sources:
                raise bad(f"{label}: switch.{key} = {sw[key]} has no source; add 'switch.{key}' to its sources")
        switch = Switch(model=str(sw["model"]), radix=int(sw["radix"]), power_W=float(sw["power_W"]))
    if index > 0 and switch is None and "size" not in raw:
        raise bad(f"{label}: a switch tier needs a switch (model, radix, power_W) or a size")
    return Tier(
        name=str(raw["name"]),
        bandwidth_GBps=float(raw.get("bandwidth_GBps", math.nan)),
        latency_us=float(raw["latency_us"]),
        size=int(raw["size"]) if "size" in raw else None,
        efficiency=float(raw.get("efficiency", 1.0)),
        oversubscription=float(raw.get("oversubscription", 1.0)),
        reduction=raw.get("reduction", ""),
        reduction_efficiency=float(raw.get("reduction_efficiency", 1.0)),
        switch=switch,
        link_W=float(raw.get("link_W", 0.0)),
        nics_per_domain=int(raw["nics_per_domain"]) if "nics_per_domain" in raw else None,
        nic_GBps=float(raw["nic_GBps"]) if "nic_GBps" in raw else None,
        sources=dict(sources),
    )


def _check_nic_keys(raw: dict, index: int, label: str, bad) -> None:
    """NIC ports belong to the first switch tier, and a port count comes with its speed."""
    given = [key for key in NIC_KEYS if key in raw]
    if given and index != 1:
        raise bad(f"{label}: {given[0]} belongs to the first switch tier (the one above the scale-up domain)")
    if len(given) == 1:
        other = NIC_KEYS[1 - NIC_KEYS.index(given[0])]
        raise bad(f"{label}: {given[0]} = {raw[given[0]]!r} needs {other} beside it (ports per domain and their speed)")


def _with_nic_bandwidth(tiers: tuple[Tier, ...], planes: int, bad) -> tuple[Tier, ...]:
    """Derive the first switch tier's bandwidth per GPU from its NIC ports, or check the one it states."""
    if len(tiers) < 2 or tiers[1].nics_per_domain is None:
        return tiers
    tier, g = tiers[1], int(tiers[0].size)
    label = f"tier {tier.name!r}"
    if tier.nics_per_domain % planes:
        raise bad(
            f"{label}: nics_per_domain = {tier.nics_per_domain} does not split into {planes} planes; "
            "count the ports of every plane together"
        )
    derived = tier.nics_per_domain * tier.nic_GBps / g
    arithmetic = f"nics_per_domain x nic_GBps / GPUs per domain = {tier.nics_per_domain} x {tier.nic_GBps:g} / {g}"
    if math.isnan(tier.bandwidth_GBps):
        sources = {**tier.sources, "bandwidth_GBps": f"derived: {arithmetic} = {derived:g} GB/s per GPU"}
        return (tiers[0], replace(tier, bandwidth_GBps=derived, sources=sources), *tiers[2:])
    if not math.isclose(tier.bandwidth_GBps, derived, rel_tol=1e-9):
        raise bad(
            f"{label}: bandwidth_GBps = {tier.bandwidth_GBps:g} disagrees with {arithmetic} = {derived:g}; "
            "give one of them or make them agree"
        )
    return tiers


def extended(topology: Topology, gpus: int) -> tuple[Topology, int]:
    """Return the topology with copies of its outermost tier added until it connects `gpus`, and how many.

    Each added tier costs the latency step between the two outermost tiers again (docs/cost-model.md,
    "Growing a design by copying its outer tier"). Copies carry no NIC ports: those belong to the first switch tier.
    """
    added = 0
    while capacity(topology, len(topology.tiers)) < gpus:
        last = topology.tiers[-1]
        step = last.latency_us - topology.tiers[-2].latency_us if len(topology.tiers) > 2 else 0.0
        note = f"added by ncbench to reach {gpus:,} GPUs: a copy of tier {last.name!r}"
        tier = replace(
            last,
            name=f"{last.name}+{added + 1}",
            latency_us=last.latency_us + max(step, 0.0),
            size=last.size if len(topology.tiers) > 1 else None,
            nics_per_domain=None,
            nic_GBps=None,
            sources={k: note for k in last.sources if k not in NIC_KEYS},
        )
        topology = replace(topology, tiers=(*topology.tiers, tier))
        added += 1
        if added > 64:
            raise NcbenchError(f"{topology.name}: cannot grow to {gpus:,} GPUs by copying its outer tier", EXIT_USAGE)
    return topology, added


# ----------------------------------------------------------------------------------------------- writing


def dumps(topology: Topology) -> str:
    """Return the topology as TOML (the format `load` reads), fit results included."""
    lines = [f"name = {toml_value(topology.name)}", f"description = {toml_value(topology.description)}"]
    defaults = Topology(name="", tiers=())
    for key in ("rail_optimized", *TOP_NUMBERS):
        value = getattr(topology, key)
        if key == "gpus" and not value:
            continue  # no design size: `load` refuses gpus = 0
        if key in ("gpus", "rail_optimized") or key in topology.sources or value != getattr(defaults, key):
            lines.append(f"{key} = {toml_value(value)}")
    if topology.protocols != NCCL_PROTOCOLS:
        lines.append(f"protocols = {toml_value(list(topology.protocols))}")
    lines.append("")
    lines += _table("sources", topology.sources)
    for name in ("init", "failures"):
        lines += _table(name, getattr(topology, name))
    tier_defaults = Tier(name="", bandwidth_GBps=0.0, latency_us=0.0)
    for tier in topology.tiers:
        tier = _ports_agreeing(tier, topology.gpus_per_domain)
        lines.append("[[tier]]")
        for key in ("name", *TIER_NUMBERS, "reduction"):
            value = getattr(tier, key)
            if value is None or value == "" or (value == getattr(tier_defaults, key) and key not in tier.sources):
                continue  # a default nobody sourced stays implicit, as in the file it came from
            lines.append(f"{key} = {toml_value(value)}")
        if tier.switch:
            sw = tier.switch
            lines.append(
                f"switch = {{ model = {toml_value(sw.model)}, radix = {sw.radix}, power_W = {toml_value(sw.power_W)} }}"
            )
        lines += ["[tier.sources]", *(f"{_key(k)} = {toml_value(v)}" for k, v in tier.sources.items()), ""]
    lines += _table("fit", topology.fit.to_dict() if topology.fit else {})
    return "\n".join(lines) + "\n"


def _ports_agreeing(tier: Tier, gpus_per_domain: int) -> Tier:
    """Return the tier with nic_GBps following bandwidth_GBps where `ncbench fit` changed the latter."""
    if tier.nics_per_domain is None:
        return tier
    derived = tier.nics_per_domain * tier.nic_GBps / gpus_per_domain
    if math.isclose(tier.bandwidth_GBps, derived, rel_tol=1e-9):
        return tier
    speed = tier.bandwidth_GBps * gpus_per_domain / tier.nics_per_domain
    note = (
        f"follows bandwidth_GBps = {tier.bandwidth_GBps:g} x {gpus_per_domain} GPUs / {tier.nics_per_domain} "
        f"ports (was {tier.nic_GBps:g}: {tier.sources.get('nic_GBps', '')})"
    )
    return replace(tier, nic_GBps=speed, sources={**tier.sources, "nic_GBps": note})


def _table(name: str, values: Mapping) -> list[str]:
    if not values:
        return []
    plain = {k: v for k, v in values.items() if not isinstance(v, dict)}
    out = [f"[{name}]", *(f"{_key(k)} = {toml_value(v)}" for k, v in plain.items()), ""]
    for key, value in values.items():
        if isinstance(value, dict):
            out += _table(f"{name}.{_key(key)}", value)
    return out


def _key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else toml_value(key)


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else "nan"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{text}"'


def shipped(folder: Path | str = "topologies") -> list[Path]:
    """Return the fabric designs in `folder` (not the *.fitted.toml files `ncbench fit` writes beside them)."""
    return sorted(p for p in Path(folder).glob("*.toml") if not p.name.endswith(".fitted.toml"))


def save(topology: Topology, path: Path | str) -> Path:
    """Write the topology TOML atomically."""
    from ..records import write_atomic

    return write_atomic(Path(path), dumps(topology))


def _ports_line(topology: Topology, gpus: int) -> list[str]:
    """Return the line that says how many NIC ports a design that states them has (none for one per GPU)."""
    first = topology.tiers[1] if len(topology.tiers) > 1 else None
    if first is None or first.nics_per_domain is None:
        return []
    ports = host_ports(topology, gpus) * topology.planes
    return [
        f"{first.nics_per_domain} NIC ports of {first.nic_GBps * 8:g} Gb/s per domain = "
        + f"{first.bandwidth_GBps:g} GB/s per GPU; {ports:,} host ports"
    ]


def describe(topology: Topology, gpus: int, *, extend: bool = False) -> str:
    """Return the bill of materials of the fabric sized for `gpus` GPUs, as text a person reads."""
    bom = bill_of_materials(topology, gpus, extend=extend)
    topology, counts = bom.design, bom.counts
    added = f"; {bom.tiers_added} tier(s) added by copying the outermost one" if bom.tiers_added else ""
    lines = [
        f"{topology.name}: {topology.description}",
        (
            f"{gpus:,} GPUs in domains of {topology.gpus_per_domain}; {bom.tiers - 1} switch tier(s) of "
            f"{len(topology.tiers) - 1} in the file; {topology.planes} plane(s){added}"
        ),
        *_ports_line(topology, gpus),
        "",
        _bom_line("tier", "GPUs/group", "switches", "model", "links", "transceivers", "switch kW", "optics kW"),
    ]
    for c, tier in zip(counts, topology.tiers[1:], strict=False):
        model = tier.switch.model if tier.switch else "-"
        kw = (f"{c.switch_W / 1e3:,.1f}", f"{c.optics_W / 1e3:,.1f}")
        lines.append(
            _bom_line(c.tier, f"{c.group_gpus:,}", f"{c.switches:,}", model, f"{c.links:,}", f"{c.transceivers:,}", *kw)
        )
    lines += [
        _bom_line(
            "total",
            "",
            f"{bom.switches:,}",
            "",
            f"{bom.links:,}",
            f"{bom.transceivers:,}",
            f"{bom.switch_W / 1e3:,.1f}",
            f"{bom.optics_W / 1e3:,.1f}",
        ),
        "",
        (
            f"network power {bom.network_W / 1e6:,.2f} MW = {bom.network_W / gpus:,.1f} W per GPU "
            "(switches + transceivers; NICs and NVLink switches not counted)"
        ),
    ]
    used = topology.tiers[1 : bom.tiers]
    notes = sorted({v for t in used for k, v in t.sources.items() if k.startswith("switch.power")})
    lines += [f"switch power: {n}" for n in notes]
    return "\n".join(lines) + "\n"


def _bom_line(*cells: str) -> str:
    """Return one row of the bill of materials: tier, GPUs per group, switches, model, links, transceivers, kW."""
    widths = (-16, 11, 9, -26, 10, 13, 10, 10)  # negative: left-aligned
    return " ".join(f"{c:<{-w}}" if w < 0 else f"{c:>{w}}" for c, w in zip(cells, widths, strict=True))
