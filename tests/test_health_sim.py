"""Health planning at scale: the real scheduling and attribution on simulated 25k- and 125k-node fabrics."""

import json

import pytest
from typer.testing import CliRunner

from ncbench.cli import app
from ncbench.health.simulate import simulate, trials
from ncbench.model import topology

COLOSSUS = topology.load("topologies/colossus-spectrum-x-200k.toml")
MAX_ROUNDS = 12  # the target at 125k nodes (an all-pairs sweep needs N-1)


def test_hundred_seeded_trials_at_25k_nodes_blame_nobody_wrongly():
    result = trials(
        COLOSSUS,
        trials=100,
        seed=0,
        round_s=10,
        nodes=25000,
        bad_nodes=5,
        bad_links=3,
        bad_nics=1,
        factor=0.5,
        noise=0.02,
        suite="nightly",
    )
    assert result["wrongly_blamed"] == []
    assert result["rounds"] <= MAX_ROUNDS
    faults = 100 * (5 + 3 + 1)
    assert len(result["found"]) + len(result["missed"]) == faults
    assert len(result["found"]) >= 0.99 * faults, result["missed"]


@pytest.mark.parametrize("seed", [0, 1])
def test_ten_bad_nodes_and_three_links_at_125k_nodes_within_twelve_rounds(seed):
    result = simulate(COLOSSUS, nodes=125000, bad_nodes=10, bad_links=3, seed=seed)
    assert result["rounds"] <= MAX_ROUNDS and result["wrongly_blamed"] == []
    assert len(result["found"]) == 13, result["missed"]


def test_rounds_do_not_grow_with_nodes():
    rounds = [simulate(COLOSSUS, nodes=n, bad_nodes=3, bad_links=1, seed=3)["rounds"] for n in (5000, 25000, 125000)]
    assert max(rounds) - min(rounds) <= 1, rounds  # a partial last pod may cost or save a round, not more


def test_simulate_command_prints_the_planning_object():
    done = CliRunner().invoke(
        app, ["health", "simulate", "--nodes", "3000", "--bad-nodes", "2", "--bad-links", "1", "--format", "json"]
    )
    assert done.exit_code == 0, done.output
    result = json.loads(done.output)
    assert {"rounds", "found", "missed", "wrongly_blamed", "wall_s"} <= set(result)
    assert result["wall_s"] == result["rounds"] * 10


@pytest.mark.parametrize(
    "args, message",
    [
        (["--nodes", "1"], "at least 2 nodes"),
        (["--nodes", "100", "--bad-nodes", "50"], "under a quarter"),
        (["--suite", "weekly"], "unknown suite"),
        (["--factor", "1.5"], "0 < f < 1"),
        (["--topology", "nope.toml"], "nope.toml"),
    ],
)
def test_simulate_bad_input_is_one_sentence_and_exit_64(args, message):
    from ncbench.cli import main

    with pytest.raises(SystemExit) as done:
        main(["health", "simulate", *args])
    assert done.value.code in (64, 65, 66)
