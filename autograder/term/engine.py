"""Where students are graded: a Dask cluster, started on this machine by default.

    with open_engine(jobs=2) as client: ...                      # a local cluster, no set-up
    with open_engine(scheduler="tcp://head:8786") as client: ... # a running cluster's scheduler
    with open_engine(scheduler="scheduler.json") as client: ...  # a scheduler file (dask-jobqueue, `dask scheduler --scheduler-file`)

The client (autograder.term.grading.grade) sends each student as plain data: the notebooks' text, the
grading limits and the course secret, with a gradebook that holds the assignments and no student
(compressed with zlib).
`grade_task` runs on a worker: it unpacks them into a private workspace, runs the grading process
(`python -m autograder.term.worker`) there under a time limit, and returns plain data: each
notebook's status, the log, the autograded notebooks and feedback pages, and the automatic scores.
Workers never see the course's gradebook: only the client writes it, after a result has come back
whole. A worker lost in the middle of a student is Dask's business: the scheduler gives the
student to another worker, and after `distributed.scheduler.allowed-failures` losses the client
reports the student as failed.

Every worker needs the course at the path the client names (a shared folder, or the same image on
every machine) and the same Python environment.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

from autograder.nbgrader_glue.course import with_package_on_path

# The grading process (nbgrader and the checker) computes on one thread: several run at once on few cores.
ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
WORKER_LOG_TAIL = 4000
# Dask's services that serve its dashboard and diagnostics, none of which grading reads, slowed: its
# statistical profiler walks every worker thread's stack each 10 ms, the event loops measure their
# own delay each 20 ms and the system monitor reads the machine's counters each 500 ms. Together
# they cost a local cluster 1.3 s of CPU in 20 idle seconds (0.1 s with these), about one
# second per student graded. (Blocked-loop warnings still come after `distributed.admin.tick.limit`.)
QUIET_DASK = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
}


@contextlib.contextmanager
def open_engine(*, scheduler: str | None = None, jobs: int = 1):
    """A Dask client: on a cluster of `jobs` one-thread workers in this process when `scheduler` is
    None, else on the cluster whose scheduler address (tcp://host:8786) or scheduler file is given.

    The local workers are threads: each student is graded in a process of its own anyway (see
    grade_task), so worker processes would only add their start-up."""
    import dask
    from distributed import Client, LocalCluster

    if scheduler is None:
        try:
            with (
                dask.config.set(QUIET_DASK),
                LocalCluster(
                    n_workers=max(1, jobs),
                    threads_per_worker=1,
                    processes=False,
                    memory_limit=0,  # each student's memory is capped in the sandbox, not by Dask
                    # Every service of the local cluster on this machine's loopback only (the workers talk
                    # in-process; their HTTP servers otherwise listen on all interfaces).
                    dashboard_address=None,
                    worker_dashboard_address="127.0.0.1:0",
                    # The scheduler still serves a few HTTP routes, on 8787 unless told: a second grading
                    # run would warn "Port 8787 is already in use". A free port of this machine instead.
                    scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
                    silence_logs=logging.ERROR,
                ) as cluster,
                Client(cluster) as client,
            ):
                yield client
        finally:
            close_local_workers()
    elif Path(scheduler).suffix == ".json" and Path(scheduler).is_file():
        with Client(scheduler_file=scheduler) as client:
            yield client
    else:
        with Client(scheduler) as client:
            yield client


@contextlib.contextmanager
def process_cluster(folder: Path, *, workers: int = 2, scheduler_config: dict[str, str] | None = None, timeout: float = 120):
    """A Dask cluster of separate processes on this machine, started as on several machines:
    `dask scheduler --scheduler-file` and `workers` x `dask worker` of one thread each, without a
    nanny (a worker that dies stays dead). Yields the scheduler file; the processes' output goes
    to folder/cluster.log. `scheduler_config`: Dask settings as environment variables, e.g.
    {"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"}."""
    from distributed import Client

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    scheduler_file = folder / "scheduler.json"
    scheduler_file.unlink(missing_ok=True)
    quiet = {"DASK_" + key.upper().replace(".", "__").replace("-", "_"): str(value) for key, value in QUIET_DASK.items()}
    env = {**os.environ, "DASK_DISTRIBUTED__LOGGING__DISTRIBUTED": "error", **quiet, **(scheduler_config or {})}
    dask = [sys.executable, "-m", "dask"]
    processes = []
    with open(folder / "cluster.log", "w") as log:
        try:
            processes.append(
                subprocess.Popen(
                    dask + ["scheduler", "--scheduler-file", str(scheduler_file), "--port", "0", "--no-dashboard"], env=env, stdout=log, stderr=log
                )
            )
            deadline = time.monotonic() + timeout
            while not scheduler_file.is_file():
                if time.monotonic() > deadline or processes[0].poll() is not None:
                    raise RuntimeError(f"the Dask scheduler did not start; see {folder / 'cluster.log'}")
                time.sleep(0.2)
            for i in range(workers):
                worker = [
                    "worker",
                    "--scheduler-file",
                    str(scheduler_file),
                    "--nthreads",
                    "1",
                    "--no-nanny",
                    "--no-dashboard",
                    "--memory-limit",
                    "0",
                    "--name",
                    f"worker-{i}",
                ]
                processes.append(subprocess.Popen(dask + worker, env=env, stdout=log, stderr=log, cwd=folder))
            with Client(scheduler_file=str(scheduler_file)) as client:
                client.wait_for_workers(workers, timeout=timeout)
            yield scheduler_file
        finally:
            for process in reversed(processes):
                process.terminate()
            for process in processes:
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()


def grade_task(task: dict, template_gradebook: bytes) -> dict:
    """Grade one student on this worker and return the outcome as plain data (see the module's
    docstring). Nothing here raises for a student's sake: a failure is a returncode and a log."""
    started = time.perf_counter()
    outcome = {"student": task["student"], "host": socket.gethostname(), "returncode": 0, "results": {}, "log": "", "files": {}, "gradebook": {}}
    course_root = Path(task["course_root"])
    if not (course_root / task["source_directory"]).is_dir():
        return refused(
            outcome,
            f"the course's source folder {course_root / task['source_directory']} does not exist on grading machine {outcome['host']}; every worker needs the course at the same path",
        )
    if task["limits"].get("sandbox", True):
        from autograder.sandbox.bubblewrap import sandbox_status

        ok, reason = sandbox_status()
        if not ok:
            return refused(outcome, f"the sandbox for student code cannot start on grading machine {outcome['host']}: {reason}")
    student = task["student"]
    with tempfile.TemporaryDirectory(prefix="autograder-student-") as folder:
        workspace = Path(folder)
        submitted = workspace / "grading" / "submitted" / student
        submitted.mkdir(parents=True)
        (workspace / "source").symlink_to(course_root / task["source_directory"], target_is_directory=True)
        (workspace / "gradebook.db").write_bytes(zlib.decompress(template_gradebook))
        secret = workspace / "checker-secret"
        descriptor = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(task["secret"])
        for item in task["notebooks"]:
            target = submitted / item["assignment"] / f"{item['notebook']}.ipynb"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(item["text"])
            if item.get("timestamp"):
                (target.parent / "timestamp.txt").write_text(item["timestamp"] + "\n")
        status = Path(task["status_path"]) if task.get("status_path") and Path(task["status_path"]).parent.is_dir() else workspace / "status.txt"
        job = {
            "log": str(workspace / "grading.log"),
            "workspace": str(workspace),
            "student": student,
            "autograde": task["autograde"],
            "unreadable": task["unreadable"],
            "limits": task["limits"],
            "result": str(workspace / "result.json"),
            "secret_file": str(secret),
            "check_modules": task["check_modules"],
            "manual": task.get("manual", {}),
            "status": str(status),
        }
        status.write_text("starting")
        job_path = workspace / "job.json"
        job_path.write_text(json.dumps(job, indent=1))
        try:
            code, worker_log = local_worker().grade(job_path, timeout=task["timeout"])
        finally:
            if status.parent != workspace:
                status.unlink(missing_ok=True)
        result_path = Path(job["result"])
        outcome["results"] = json.loads(result_path.read_text()) if result_path.is_file() else {}
        outcome["returncode"] = code if code != 0 or outcome["results"] else -1
        log_path = Path(job["log"])
        outcome["log"] = log_path.read_text(errors="replace") if log_path.is_file() else ""
        if outcome["returncode"] != 0:
            outcome["log"] += f"\n==== the grading process on {outcome['host']} (exit code {code}):\n{worker_log}"
            return outcome
        merged = [a for a, r in outcome["results"].items() if r["status"] in ("graded", "unreadable")]
        outcome["gradebook"] = read_auto_grades("sqlite:///" + str(workspace / "gradebook.db"), student, merged)
        for kind in ("autograded", "feedback"):
            for assignment in merged:
                produced = workspace / "grading" / kind / student / assignment
                for path in sorted(produced.rglob("*")) if produced.is_dir() else []:
                    if path.is_file():
                        outcome["files"][f"{kind}/{assignment}/{path.relative_to(produced).as_posix()}"] = path.read_bytes()
    outcome["seconds"] = time.perf_counter() - started
    return outcome


def refused(outcome: dict, reason: str) -> dict:
    """A student this worker cannot grade at all, and why (reported as failed, with the reason)."""
    return {**outcome, "returncode": -1, "reason": reason, "log": reason + "\n"}


def read_auto_grades(db_url: str, student: str, assignments: list[str]) -> dict:
    """What autograding recorded for one student, as plain data: per assignment, the submission's
    timestamp and, per notebook, the late penalty and each grade's and comment's automatic part."""
    from nbgrader.api import Gradebook

    from autograder.nbgrader_glue.config import COURSE_ID, quiet_gradebook_warnings

    quiet_gradebook_warnings()
    recorded = {}
    with Gradebook(db_url, COURSE_ID) as gb:
        for assignment in assignments:
            submission = gb.find_submission(assignment, student)
            recorded[assignment] = {
                "timestamp": submission.timestamp.isoformat() if submission.timestamp else None,
                "notebooks": {
                    notebook.name: {
                        "late_submission_penalty": notebook.late_submission_penalty,
                        "grades": {grade.name: [grade.auto_score, bool(grade.needs_manual_grade)] for grade in notebook.grades},
                        "comments": {comment.name: comment.auto_comment for comment in notebook.comments},
                    }
                    for notebook in submission.notebooks
                },
            }
    return recorded


class Worker:
    """A long-lived `python -m autograder.term.worker --serve` process that grades one student at a time."""

    def __init__(self, log_path: Path):
        self.log_path = Path(log_path)
        self.log = open(log_path, "a")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "autograder.term.worker", "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            start_new_session=True,  # its own process group: a kill reaches what it started too
            env=with_package_on_path({**os.environ, "PYTHONUNBUFFERED": "1", **ONE_THREAD}),
        )

    def grade(self, job_path: Path, timeout: float) -> tuple[int, str]:
        """(0, "") when the job ran; otherwise an error code, the worker dead if it was killed on
        timeout or died, and what it wrote to its log meanwhile."""
        self.log.flush()
        start = self.log_path.stat().st_size
        code = self._grade(job_path, timeout)
        if code == 0:
            return 0, ""
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, errors="replace") as handle:
            handle.seek(start)
            return code, handle.read()[-WORKER_LOG_TAIL:]

    def _grade(self, job_path: Path, timeout: float) -> int:
        try:
            self.process.stdin.write(f"{job_path}\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            return self.process.poll() or -1
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        if not ready:
            self.log.write(f"\n{job_path}: killed after {timeout:.0f} s\n")
            self.kill()
            return -signal.SIGKILL
        reply = self.process.stdout.readline().strip()
        if reply == f"done {job_path}":
            return 0
        if not reply:  # the worker died
            self.kill()
            return self.process.returncode or -1
        return 1

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        self._release()

    def close(self) -> None:
        """Let the worker finish (end of its input), or kill it after 30 s."""
        if self.process.poll() is None:
            try:
                self.process.stdin.close()
                self.process.wait(timeout=30)
            except (subprocess.TimeoutExpired, OSError):
                self.kill()
        self._release()

    def _release(self) -> None:
        for stream in (self.process.stdin, self.process.stdout, self.log):
            try:
                stream.close()
            except OSError:
                pass


_thread_workers = threading.local()
_started_workers: list[Worker] = []
_started_lock = threading.Lock()


def local_worker() -> Worker:
    """This thread's grading process, started on first use and again after it died or was killed:
    one process grades student after student, which saves nbgrader's start-up (about 2 s) each."""
    worker = getattr(_thread_workers, "worker", None)
    if worker is None or not worker.alive():
        log_dir = Path(tempfile.gettempdir()) / "autograder-workers"
        log_dir.mkdir(exist_ok=True)
        worker = Worker(log_dir / f"worker-{os.getpid()}-{threading.get_ident()}.log")
        _thread_workers.worker = worker
        with _started_lock:
            _started_workers.append(worker)
    return worker


def close_local_workers() -> None:
    """End the grading processes this process started (the local cluster's, when it closes)."""
    with _started_lock:
        workers, _started_workers[:] = list(_started_workers), []
    for worker in workers:
        worker.close()
