"""Nightly fabric health: find the slow node, NIC or link, and say so where operators look.

records of tonight's rounds + baseline -> verdict (entities with a state and a reason code) -> JSON,
Prometheus textfile, JUnit XML, Slurm drain commands, exit code. One orchestrator (`suite.run`) drives
both the real MPI run (`live`) and the simulated fabric (`simulate`), so the two schedule and judge alike.
"""

# Verdict states, worst first as an exit code sees them (Nagios: 0 OK, 1 WARN, 2 FAIL, 3 UNKNOWN; docs/health.md).
PASS, WARN, FAIL, UNKNOWN, SKIPPED = "PASS", "WARN", "FAIL", "UNKNOWN", "SKIPPED"
STATE_VALUE = {PASS: 0, WARN: 1, FAIL: 2, UNKNOWN: 3, SKIPPED: 4}  # the Prometheus gauge's encoding

# Stable reason codes: what was seen, and whether it is a hardware impact or a test/setup problem.
CODES = {
    "NCB-NIC-LOOPBACK": ("a rank's loopback through its NIC/memory path was slow", True),
    "NCB-NODE-LOCAL": ("the intra-node allreduce was slow", True),
    "NCB-NODE-SLOW": ("slow with its first partner and again with a known-good one, on every rail", True),
    "NCB-RAIL-SLOW": ("slow with its first partner and again with a known-good one, on some rails", True),
    "NCB-DATA-CORRUPT": ("data sent from this rank arrived wrong", True),
    "NCB-PAIR-SLOW": ("a pair was slow while neither end was slow with others: the path between them", True),
    "NCB-LINK-SLOW": ("a fabric link that every slow flow crossed and no good flow did", True),
    "NCB-LINK-SUSPECT": ("slow flows that more than one untested link could explain", True),
    "NCB-NOISY": ("looked slow, but its own or its peers' samples scattered too much to judge: not confirmed", False),
    "NCB-UNREACHABLE": ("did not answer within the round's deadline", False),
    "NCB-SHARED-CAUSE": ("many entities failed together, or the whole fleet is below its baseline", True),
    "NCB-SCALE-SLOW": ("the whole-job collective was below its baseline", True),
    "NCB-SETUP": ("the test could not run here (too few nodes or ranks for it)", False),
}
