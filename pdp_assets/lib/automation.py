"""When the automation sensor requests a week of an asset: the one rule every source shares.

A week is requested when it was never built, its code changed or its inputs did; never while it
or an upstream week is running, nor before its inputs exist. Unlike ``AutomationCondition.eager()``
it looks at every week, not only the latest, so a correction to an old week is applied too.
"""

import dagster as dg

AC = dg.AutomationCondition


def refresh(inputs_changed: dg.AutomationCondition, blocked_by_missing: dg.AutomationCondition) -> dg.AutomationCondition:
    return (
        (AC.missing() | AC.code_version_changed() | inputs_changed).since_last_handled()
        & ~blocked_by_missing
        & ~AC.any_deps_in_progress()
        & ~AC.in_progress()
    )


# Downstream of assets that are materialized: a week changed when it was rebuilt (or will be, this
# tick). A week with inputs from only some of several upstreams is still built.
WHEN_INPUTS_CHANGE = refresh(AC.any_deps_updated(), AC.all_deps_match(AC.missing() & ~AC.will_be_requested()))

# Downstream of observed sources: a week changed only when an observation found new content (a
# new data version), not at every observation.
WHEN_SOURCE_CHANGES = refresh(AC.any_deps_match(AC.data_version_changed()), AC.any_deps_missing())


def on_schedule(cron: str, timezone: str = "UTC") -> dg.AutomationCondition:
    """A root asset: its latest week, once per cron tick."""
    return AC.in_latest_time_window() & AC.cron_tick_passed(cron, timezone).since_last_handled() & ~AC.in_progress()
