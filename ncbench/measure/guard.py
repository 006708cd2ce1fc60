"""Never hang: arrival checkpoints that name the ranks that did not come, and a watchdog per rank.

Checkpoint: every rank reports to rank 0 on a private communicator and waits for its go; after
`timeout_s` rank 0 names the missing ranks and hosts and aborts the job with exit code 3.
Watchdog: a thread that ends this rank with exit code 3 when an armed step outlives `timeout_s`
(a collective that every rank entered but that never completed). mpi4py releases the GIL inside
blocking MPI calls, so the thread runs while the main thread waits in MPI.
"""

import os
import sys
import threading
import time

from ..errors import EXIT_UNKNOWN

POLL_S = 200e-6  # checkpoint polling interval: outside every timed region, and gentle on shared cores
REPORT_GRACE_S = 1.0  # a firing watchdog waits this long before exiting (see Watchdog._watch)
ANSWER_GRACE = 2.0  # non-root ranks wait this much longer than rank 0 before blaming rank 0 (arrival skew)
ABORT_GRACE_S = 0.5  # MPI_Abort can tear down the launcher's output forwarding before a line just written gets out


def _say(message: str) -> None:
    sys.stderr.write(f"ncbench: {message}\n")
    sys.stderr.flush()


def abort_job(comm, code: int, reason: str = "the job was aborted") -> None:
    """End every rank of the job with `code`, once the launcher has had time to forward what we wrote.

    Without the pause, mpiexec lost the line naming a stalled rank in 1 of 30 runs (2-core VM).
    """
    from ..records import end_open_runs

    end_open_runs(code, reason)  # the sidecar says timed_out / failed / aborted, not running
    sys.stdout.flush()
    sys.stderr.flush()
    time.sleep(ABORT_GRACE_S)
    comm.Abort(code)


class Watchdog:
    """Ends this process (exit 3) when an armed step is still running after `timeout_s`."""

    def __init__(self, who: str, timeout_s: float):
        self.who = who
        self.timeout_s = timeout_s
        self._deadline = None
        self._what = ""
        self._wake = threading.Event()
        self.on_fire = []  # callables run before exiting: abort what could keep peers blocked (NCCL)
        if timeout_s > 0:
            threading.Thread(target=self._watch, name="ncbench-watchdog", daemon=True).start()

    def arm(self, what: str) -> None:
        self._what = what
        self._deadline = time.monotonic() + self.timeout_s

    def disarm(self) -> None:
        self._deadline = None

    def _watch(self) -> None:
        while True:
            deadline = self._deadline
            now = time.monotonic()
            if deadline is None:
                self._wake.wait(self.timeout_s)
                continue
            if now < deadline:
                self._wake.wait(deadline - now)
                continue
            if deadline == self._deadline:
                _say(
                    f"{self.who}: waited {self.timeout_s:g} s inside {self._what}, which every rank had "
                    f"entered; ranks that print this line were waiting, a rank that does not is the one "
                    f"that stopped; ending the run (exit {EXIT_UNKNOWN})"
                )
                from ..records import end_open_runs

                end_open_runs(EXIT_UNKNOWN, f"{self.who} waited {self.timeout_s:g} s inside {self._what}")
                for hook in self.on_fire:
                    try:
                        hook()
                    except Exception as err:  # noqa: BLE001 - the exit below matters more than a failed abort
                        _say(f"{self.who}: abort failed: {err}")
                time.sleep(REPORT_GRACE_S)  # let the other waiting ranks print theirs before the job dies
                _abort_from_thread(EXIT_UNKNOWN)


def _abort_from_thread(code: int) -> None:
    """End the whole job with `code` from the watchdog's thread.

    Each waiting rank leaving by os._exit(3) let mpiexec report the stalled rank's SIGKILL instead: exit 9
    in 1 of 12 runs of the stall test (2-core VM); MPI_Abort carries the code to the launcher. Should the
    library refuse a call from this thread, the process still ends with the code.
    """
    try:
        from mpi4py import MPI

        MPI.COMM_WORLD.Abort(code)
    finally:
        os._exit(code)


class Guard:
    """Checkpoints for one communicator, and the process's watchdog; `hosts[i]` is member i's host."""

    def __init__(self, comm, world, world_ranks, hosts, *, timeout_s: float, watchdog: Watchdog, injector=None):
        self.comm = comm.Dup()  # private tags: nothing the benchmark sends can match a checkpoint
        self.world = world
        self.world_ranks = world_ranks
        self.hosts = hosts
        self.timeout_s = timeout_s
        self.injector = injector
        self.seq = 0
        self.watchdog = watchdog

    def checkpoint(self, what: str) -> None:
        """Return once every rank has arrived at `what`; otherwise name the absent ranks and exit 3."""
        self.seq += 1
        if self.injector is not None and self.injector.stall_at_checkpoint:
            self.watchdog.disarm()  # a stalled rank does not report itself; the others must find it
            from .inject import stall_forever

            stall_forever()
        if self.comm.size == 1:
            return
        tag = self.seq % 30000
        if self.comm.rank == 0:
            self._collect(what, tag)
        else:
            self._report(what, tag)

    def _wait(self, requests, limit_s: float) -> bool:
        from mpi4py import MPI

        end = time.monotonic() + limit_s if limit_s > 0 else None
        while not MPI.Request.Testall(requests):
            if end is not None and time.monotonic() > end:
                return False
            time.sleep(POLL_S)
        return True

    def _collect(self, what: str, tag: int) -> None:
        import numpy as np
        from mpi4py import MPI

        arrived = np.zeros(self.comm.size, dtype=np.int64)
        requests = [self.comm.Irecv(arrived[r : r + 1], source=r, tag=tag) for r in range(1, self.comm.size)]
        if not self._wait(requests, self.timeout_s):
            missing = [r for r, req in zip(range(1, self.comm.size), requests) if not req.Test()]
            names = ", ".join(f"rank {self.world_ranks[r]} ({self.hosts[r]})" for r in missing)
            why = f"{len(missing)} of {self.comm.size} ranks did not arrive at {what} within {self.timeout_s:g} s: {names}"
            _say(f"{why}; ending the run (exit {EXIT_UNKNOWN})")
            abort_job(self.world, EXIT_UNKNOWN, why)
        go = np.ones(1, dtype=np.int64)
        MPI.Request.Waitall([self.comm.Isend(go, dest=r, tag=tag) for r in range(1, self.comm.size)])

    def _report(self, what: str, tag: int) -> None:
        import numpy as np

        token = np.full(1, self.seq, dtype=np.int64)
        go = np.zeros(1, dtype=np.int64)
        requests = [self.comm.Isend(token, dest=0, tag=tag), self.comm.Irecv(go, source=0, tag=tag)]
        if not self._wait(requests, self.timeout_s * ANSWER_GRACE + 1.0 if self.timeout_s > 0 else 0):
            me = self.world_ranks[self.comm.rank]
            _say(
                f"rank {me} waited {self.timeout_s * ANSWER_GRACE + 1.0:g} s at {what} for rank "
                f"{self.world_ranks[0]} ({self.hosts[0]}), which did not answer; ending the run (exit {EXIT_UNKNOWN})"
            )
            abort_job(self.world, EXIT_UNKNOWN)

    def free(self) -> None:
        self.watchdog.disarm()
        self.comm.Free()
