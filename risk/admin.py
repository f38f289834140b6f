"""The risk officer's console (SPEC §10): limits, alerts, breakers with their trips, the
desk's configuration (the global one a singleton) and the change history of each.

Every save, delete and action calls the same services as the API; errors reach the
officer through `message_user`. One module a concern, each registering its admins when
imported here: `admin_limits`, `admin_alerts`, `admin_breakers` (with their trips),
`admin_config`, `admin_history` (audited changes), and issue 15's `admin_kill_switch`,
`admin_limit_changes`, `admin_trading_state`.
"""

from risk import (  # noqa: F401  (imported for their admin registrations)
    admin_alerts,
    admin_breakers,
    admin_config,
    admin_history,
    admin_kill_switch,
    admin_limit_changes,
    admin_limits,
    admin_trading_state,
)
