"""The measurement stage: one launch under MPI on every rank, timed, validated and kept as records.

session (a launch: MPI start, job layout, sidecar, stdout) -> harness (the sweep: calibration, timing, the late
rank) and p2p (OSU's latency, bw, bibw) over backends/ (how bytes move: MPI, NCCL, CUDA-aware MPI) -> validate
(exact data checks) -> rows for records. guard (checkpoints, watchdog), inject (faults), job (hosts, nodes),
sysinfo and table (the nccl-tests stdout) serve them.
"""
