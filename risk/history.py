"""Who made a change, for the audit history (django-simple-history).

API callers are stateless token users (no database row loaded): the history row still
records them, by id. A service may name the actor explicitly with `history_actor_set`.
"""

from django.contrib.auth import get_user_model


def user_ref(user_id):
    """A user instance for a foreign key, without a query (the id is all a FK needs)."""
    if user_id is None:
        return None
    User = get_user_model()
    return User(pk=user_id)


def history_user_get(instance=None, request=None, **kwargs):
    explicit = getattr(instance, "_history_user", None) if instance is not None else None
    if explicit is not None:
        return explicit
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    if isinstance(user, get_user_model()):
        return user
    return user_ref(user.pk)


def history_actor_set(instance, actor_id) -> None:
    """Record `actor_id` as the author of the next history row of `instance`."""
    if actor_id is not None:
        instance._history_user = user_ref(actor_id)
