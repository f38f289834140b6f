"""Writes of the accounts app, split by sub-domain.

`users` (roles, the admin user) is re-exported here because the platform imports it from
`accounts.services`; the exchange-side services are imported from their modules
(`accounts.services.sync`, `.paper`, `.marks`, `.trading`, `.monitoring`,
`.credentials`, `.exchange_accounts`) so that importing this package stays cheap.
"""

from accounts.services.users import (
    OFFICER_APP_LABELS,
    OFFICER_EXCLUDED_MODELS,
    admin_user_ensure,
    risk_officer_grant,
    risk_officer_group_sync,
)

__all__ = [
    "OFFICER_APP_LABELS",
    "OFFICER_EXCLUDED_MODELS",
    "admin_user_ensure",
    "risk_officer_grant",
    "risk_officer_group_sync",
]
