"""Loaded by pytest before Django's settings (`-p tests.pytest_env`): the test run
keeps its files (SQLite database, embedded Redis socket, dev secrets) under var/test,
apart from a `make run` that may be running beside it."""

import os
from pathlib import Path

os.environ.setdefault("ETRMS_VAR_DIR", str(Path(__file__).resolve().parent.parent / "var" / "test"))
