"""The processes of `make run` (honcho, Procfile).

`python -m etrms.processes` prints the Procfile processes to start: the embedded Redis
only when no REDIS_URL is set.

`python -m etrms.processes run NAME -- COMMAND...` runs one of them: its output passes
through unchanged. Killed by a signal (kill -9, the out-of-memory killer), it is started
again after a short pause (`run`). If it exits on its own with a failure, a last line
names the process, its exit status and its last words, so the reason is on screen before
honcho stops the others. No process exits on a Redis or database outage (they retry
until it answers); a process that exits anyway has met something else, which this line
reports.
"""

import collections
import os
import signal
import subprocess
import sys
import time

TAIL_LINES = 20


def processes() -> list[str]:
    names = ["web", "worker", "beat", "feed"]
    if "REDIS_URL" not in os.environ:
        names.insert(0, "redis")
    return names


def _last_words(tail) -> str:
    """The line that says why: a Python exception's last line, else the last line."""
    lines = [line.strip() for line in tail if line.strip()]
    for line in reversed(lines):
        head = line.split(":", 1)[0]
        if head.endswith(("Error", "Exception", "Exit")) or head in ("KeyboardInterrupt", "SystemExit"):
            return line
    return lines[-1] if lines else "(no output)"


RESTART_DELAYS = (0.5, 1, 2, 5, 10)  # seconds before each restart in a row; the last repeats
STEADY_SECONDS = 30  # a process that ran this long before it was killed starts the delays afresh


def _run_once(command: list[str], stopping: list) -> tuple[int, collections.deque]:
    """Run `command` to its end, its output passed through; (exit status, last lines)."""
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def forward(signum, frame):
        stopping.append(signum)
        if child.poll() is None:
            child.send_signal(signum)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, forward)
    tail = collections.deque(maxlen=TAIL_LINES)
    out = sys.stdout.buffer
    for raw in iter(child.stdout.readline, b""):
        out.write(raw)
        out.flush()
        tail.append(raw.decode(errors="replace"))
    return child.wait(), tail


def _wait(seconds: float, stopping: list) -> None:
    deadline = time.monotonic() + seconds
    while not stopping and time.monotonic() < deadline:
        time.sleep(0.05)


def run(name: str, command: list[str]) -> int:
    """Run one process of `make run` until honcho stops it. Killed by a signal nobody sent
    through honcho (kill -9, the out-of-memory killer), it is started again after a short
    pause, as compose's restart policy would; one that exits with an error of its own
    (a configuration it cannot read) stops the run, after a line that says why."""
    stopping: list = []
    restarts = 0
    while True:
        started = time.monotonic()
        code, tail = _run_once(command, stopping)
        if stopping or code >= 0:
            break
        if time.monotonic() - started > STEADY_SECONDS:
            restarts = 0
        delay = RESTART_DELAYS[min(restarts, len(RESTART_DELAYS) - 1)]
        restarts += 1
        sys.stderr.write(
            f"\netrms: process '{name}' was killed ({signal.Signals(-code).name}); starting it again in {delay} s\n"
        )
        sys.stderr.flush()
        _wait(delay, stopping)
        if stopping:
            break
    if not stopping and code != 0:
        sys.stderr.write(
            f"\netrms: process '{name}' stopped by itself (exit code {code}): {_last_words(tail)}\n"
            f"etrms: make run stops the other processes now; the lines above say more.\n"
        )
        sys.stderr.flush()
    return 128 - code if code < 0 else code


def main(argv: list[str]) -> int:
    if argv[:1] == ["run"] and "--" in argv:
        split = argv.index("--")
        (name,), command = argv[1:split], argv[split + 1 :]
        return run(name, command)
    print(" ".join(processes()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
