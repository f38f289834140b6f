"""Small helpers the risk services share: who is acting, and after-commit hooks."""

from etrms.roles import is_risk_officer


def actor_id(actor):
    return None if actor is None else actor.pk


def actor_is_officer(actor) -> bool:
    """A system actor (None: a job, the feed, bootstrap) acts with an officer's rights."""
    return actor is None or is_risk_officer(actor)
