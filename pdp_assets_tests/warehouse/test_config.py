"""loads.yaml validation: errors name the file, the load and the field; nothing reaches SQL unchecked."""

import pytest

from pdp_assets.lib.warehouse.config import check_sources, CONFIG_PATH, load_config, parse_config, WarehouseConfigError

GOOD = """
loads:
  - name: lab_results
    source: {asset: lab_results, container: data, path: "{week_path}/data.parquet"}
    target_table: LAB_RESULTS
    merge_keys: [sample_id]
"""


def error(text: str) -> str:
    with pytest.raises(WarehouseConfigError) as e:
        parse_config(text, "loads.yaml")
    return str(e.value)


def test_the_shipped_file_is_valid():
    cfg = load_config(CONFIG_PATH)
    loads = {load.name: load for load in cfg.enabled}
    assert set(loads) == {"lab_results", "health_daily_metrics", "retail_gold_devices"}
    lab = loads["lab_results"]
    assert (lab.target_table, lab.stage, lab.merge_keys) == ("LAB_RESULTS", "LAB_RESULTS_STAGE", ["SAMPLE_ID", "TEST_DATE"])
    assert loads["retail_gold_devices"].merge_keys == ["WEEK_START", "DEVICE_TYPE", "BROWSER"]


def test_defaults():
    [load] = parse_config(GOOD).loads
    assert (load.stage, load.schema_drift, load.tolerance_percent, load.phases.audit, load.retry.max_retries) == (
        "LAB_RESULTS_STAGE", "reject", 0.0, True, 3)


@pytest.mark.parametrize("bad", ['LAB"; DROP TABLE X; --', "LAB RESULTS", "1LAB", "LAB.RESULTS"])
def test_sql_cannot_be_injected_through_a_table_name(bad):
    message = error(GOOD.replace("LAB_RESULTS", bad.replace('"', '\\"').join('""')))
    assert message.startswith("loads.yaml: load 'lab_results', field 'target_table':")
    assert "is not a plain Snowflake identifier" in message


def test_a_trailing_newline_is_not_part_of_an_identifier():
    message = error(GOOD.replace("target_table: LAB_RESULTS", 'target_table: "LAB_RESULTS\\n"'))
    assert "field 'target_table'" in message and "is not a plain Snowflake identifier" in message
    message = error(GOOD.replace("name: lab_results", 'name: "lab_results\\n"'))
    assert "field 'name'" in message and "lower-case" in message


@pytest.mark.parametrize("field,line", [("target_table", "target_table: SELECT"),
                                        ("stage_area", "stage_area: select")])
def test_a_reserved_word_is_refused_where_it_would_break_the_sql(field, line):
    text = GOOD.replace("target_table: LAB_RESULTS", line) if field == "target_table" else f"{line}\n{GOOD}"
    message = error(text)
    assert f"field '{field}'" in message and "is a Snowflake reserved word" in message, message


def test_sql_cannot_be_injected_through_a_key():
    message = error(GOOD.replace("[sample_id]", "[\"sample_id = 1 OR 1\"]"))
    assert "load 'lab_results', field 'merge_keys'" in message


@pytest.mark.parametrize("change,where,says", [
    (("target_table: LAB_RESULTS", "target_tabel: LAB_RESULTS"), "field 'target_tabel'", "Extra inputs"),
    (("target_table: LAB_RESULTS", ""), "field 'target_table'", "Field required"),
    (("{week_path}/data.parquet", "{wek}/data.parquet"), "field 'source.path'", "unknown field(s) ['wek']"),
    (("{week_path}/data.parquet", "all/data.parquet"), "field 'source.path'", "names no week"),
    (("{week_path}/data.parquet", "{week_path}/../x.parquet"), "field 'source.path'", "relative path"),
    (("[sample_id]", "[]"), "field 'merge_keys'", "at least 1 item"),
    (("name: lab_results", "name: Lab-Results"), "load 'Lab-Results', field 'name'", "lower-case"),
    (("merge_keys: [sample_id]", "merge_keys: [sample_id]\n    tolerance_percent: -1"), "field 'tolerance_percent'", "greater than or equal to 0"),
    (("merge_keys: [sample_id]", "merge_keys: [sample_id]\n    schema_drift: ignore"), "field 'schema_drift'", "'add' or 'reject'"),
    (("merge_keys: [sample_id]", "merge_keys: [sample_id]\n    phases: {audit: maybe}"), "field 'phases.audit'", "boolean"),
])
def test_errors_name_the_file_the_load_and_the_field(change, where, says):
    message = error(GOOD.replace(*change))
    assert message.startswith("loads.yaml: ") and where in message and says in message, message


def test_two_loads_cannot_share_a_name_or_a_table():
    twice = GOOD + GOOD.split("loads:\n")[1]
    assert "load name 'lab_results' is used twice" in error(twice)
    other = twice.replace("name: lab_results", "name: other", 1)
    assert "load 'lab_results': target_table 'LAB_RESULTS' is already a table of load 'other'" in error(other)


def test_bad_yaml_and_a_missing_file(tmp_path):
    assert error("loads: [").startswith("loads.yaml: not valid YAML")
    with pytest.raises(WarehouseConfigError, match="nope.yaml: cannot be read"):
        load_config(tmp_path / "nope.yaml")


def test_a_key_given_twice_in_one_load_is_refused():
    message = error(GOOD.replace("    merge_keys: [sample_id]", "    merge_keys: [sample_id]\n    target_table: OTHER"))
    assert message.startswith("loads.yaml: not valid YAML") and "'target_table' is given twice" in message


def test_an_empty_file_is_refused():
    assert "the file is empty" in error("")
    assert parse_config("loads: []").loads == []  # none, said on purpose


def test_a_source_asset_that_names_no_asset_is_refused():
    cfg = parse_config(GOOD.replace("asset: lab_results", "asset: lab_reslts"))
    with pytest.raises(WarehouseConfigError, match="load 'lab_results', field 'source.asset': 'lab_reslts' is no asset"):
        check_sources(cfg, {"lab_results", "health_daily_metrics"})
    check_sources(parse_config(GOOD), {"lab_results"})
