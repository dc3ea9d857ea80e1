"""The raw Google sources carry a soft `source_readable` check, run with their observation: it
warns when the sheet lacks a column or an export cannot be read, and passes on good sources."""

import dagster as dg

from pdp_assets.defs.health.assets import RAW_BP, RAW_MI_BAND
from pdp_assets.defs.health.checks import SOURCE_READABLE
from pdp_assets_tests.health.conftest import mi_row, observe, write_export, write_sheet

WEEK = "2024-01-01"


def _checks(result: dg.ExecuteInProcessResult) -> dict[dg.AssetKey, dg.AssetCheckEvaluation]:
    return {e.asset_key: e for e in result.get_asset_check_evaluations() if e.check_name == SOURCE_READABLE}


def test_good_sources_pass(defs, google_root, instance):
    write_sheet(google_root, [["2024-01-02", "08:00", "120", "80", "60"]],
                header=["date", " SYS (mmHg) ", "Diastolic", "Pulse", "Time", "Notes"])  # aliases, order, extras
    write_export(google_root, "a.csv", [mi_row("heart_rate", 1704182400, {"bpm": 60})])
    checks = _checks(observe(defs, instance, [WEEK]))
    assert set(checks) == {RAW_BP, RAW_MI_BAND}
    assert all(c.passed for c in checks.values()), checks
    assert checks[RAW_BP].metadata["sheet_rows"].value == 1
    assert checks[RAW_MI_BAND].metadata["files"].value == 1


def test_a_missing_column_or_an_unreadable_export_warns(defs, google_root, instance):
    write_sheet(google_root, [["2024-01-02", "08:00", "120", "80"]], header=["Date", "Time", "Systolic", "Diastolic"])
    write_export(google_root, "good.csv", [mi_row("heart_rate", 1704182400, {"bpm": 60})])
    write_export(google_root, "bad.csv", [["x", "y"]], header=["Key", "When"])
    checks = _checks(observe(defs, instance, [WEEK]))  # a warning does not fail the observation
    bp, mi = checks[RAW_BP], checks[RAW_MI_BAND]
    assert not bp.passed and bp.severity == dg.AssetCheckSeverity.WARN
    assert bp.metadata["columns_missing"].value == ["pulse"]
    assert not mi.passed and mi.severity == dg.AssetCheckSeverity.WARN
    assert mi.metadata["files"].value == 2 and mi.metadata["files_with_problems"].value == 1
    (problem,) = mi.metadata["problems"].value
    assert problem.startswith("bad.csv:") and "time" in problem and "value" in problem
