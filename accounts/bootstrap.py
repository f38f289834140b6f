"""Bootstrap step of the accounts app: the admin user and the risk officer group."""

import os

from accounts.services import admin_user_ensure, risk_officer_group_sync


def bootstrap(*, stdout) -> None:
    risk_officer_group_sync()
    username = os.environ.get("ETRMS_ADMIN_USERNAME", "admin")
    _, password = admin_user_ensure(username=username)
    if password:
        stdout.write(f"Created admin user '{username}' with password: {password}  (shown once; keep it)")
    else:
        stdout.write(f"Admin user '{username}' exists (its password was printed when it was created).")
