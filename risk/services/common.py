"""Small helpers the risk services share: who is acting, after-commit hooks, and the
garbage collector held off while one evaluation builds its views."""

import gc
from contextlib import contextmanager

from etrms.roles import is_risk_officer


def actor_id(actor):
    return None if actor is None else actor.pk


def actor_is_officer(actor) -> bool:
    """A system actor (None: a job, the feed, bootstrap) acts with an officer's rights."""
    return actor is None or is_risk_officer(actor)


@contextmanager
def collector_held():
    """Hold Python's cyclic garbage collector off for the block (reference counting
    still frees everything at once). An evaluation of 10,000 positions allocates some
    25,000 container objects (rows, views, statuses) that live until it returns; with
    the collector on they are traversed by some fifty young collections, promoted, and
    every second evaluation or so pay a full collection of the whole process
    (bench/README.md: a third of the evaluation's time). Views hold no cycles, so
    nothing waits for the collector; whatever other threads allocate meanwhile is
    collected once the block ends. Only the block that turned it off turns it back on,
    so nested or concurrent blocks never leave it off."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()
