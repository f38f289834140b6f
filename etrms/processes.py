"""Prints the Procfile processes `make run` starts: the embedded Redis only when no
REDIS_URL is set."""

import os


def processes() -> list[str]:
    names = ["web", "worker", "beat", "feed"]
    if "REDIS_URL" not in os.environ:
        names.insert(0, "redis")
    return names


if __name__ == "__main__":
    print(" ".join(processes()))
