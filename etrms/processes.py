"""The processes of `make run` (honcho, Procfile).

`python -m etrms.processes` prints the Procfile processes to start: the embedded Redis
only when no REDIS_URL is set.

`python -m etrms.processes run NAME -- COMMAND...` runs one of them: its output passes
through unchanged, and if it exits on its own with a failure, a last line names the
process, its exit status and its last words, so the reason is on screen before honcho
stops the others. No process exits on a Redis or database outage (they retry until it
answers); a process that exits anyway has met something else, which this line reports.
"""

import collections
import os
import signal
import subprocess
import sys

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


def run(name: str, command: list[str]) -> int:
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    stopping = False

    def forward(signum, frame):
        nonlocal stopping
        stopping = True
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
    code = child.wait()
    if not stopping and code != 0:
        status = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        sys.stderr.write(
            f"\netrms: process '{name}' stopped by itself ({status}): {_last_words(tail)}\n"
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
