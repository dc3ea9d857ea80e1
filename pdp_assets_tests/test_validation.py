"""The validation rules, and the bad-input corpus: each gets a clear reason, nothing is lost."""

import datetime as dt

import polars as pl
import pytest

from pdp_assets.lib.lab_results.validation import validate_upload
from pdp_assets_tests.conftest import csv_bytes, HEADER

TODAY = dt.date(2026, 11, 22)


def run(data: bytes):
    result = validate_upload(data, "upload.csv", TODAY)
    assert result.rows_read == result.rows_valid + result.rows_quarantined, "a row was lost or doubled"
    return result


def reasons(result) -> list[str]:
    return result.quarantine["pipeline_error"].to_list()


def test_valid_rows_are_typed_and_numbered():
    r = run(csv_bytes("A1,2024-01-01,POS,120", "A2,2024-12-30,NEG,0", "A3,2019-12-30,N/A,0"))
    assert r.rows_quarantined == 0
    assert r.valid.schema == {
        "sample_id": pl.String, "test_date": pl.Date, "result": pl.String, "viral_load": pl.Int64, "row_number": pl.Int64,
    }
    assert r.valid["row_number"].to_list() == [1, 2, 3]
    assert r.valid["test_date"].to_list()[0] == dt.date(2024, 1, 1)


@pytest.mark.parametrize(
    "row, reason",
    [
        (",2024-01-01,POS,1", "sample_id is missing"),
        ('"",2024-01-01,POS,1', "sample_id is empty"),
        ("A1,2024-13-01,POS,1", "test_date '2024-13-01' is in YYYY-MM-DD form but no such day exists"),
        ("A1,2026-02-29,POS,1", "test_date '2026-02-29' is in YYYY-MM-DD form but no such day exists"),
        ("A1,2023-02-30,POS,1", "test_date '2023-02-30' is in YYYY-MM-DD form but no such day exists"),
        ("A1,2024-Jan-01,POS,1", "test_date '2024-Jan-01' is not a date in YYYY-MM-DD form"),
        ("A1,01/02/2024,POS,1", "is not a date in YYYY-MM-DD form"),
        ("A1,2019-12-29,POS,1", "test_date 2019-12-29 is before 2019-12-30"),
        ("A1,2026-11-23,POS,1", "test_date 2026-11-23 is in the future (today is 2026-11-22)"),
        ("A1,2024-01-01,Positive,1", "result 'Positive' is not one of POS, NEG, N/A"),
        ("A1,2024-01-01,pos,1", "result 'pos' is not one of"),
        ("A1,2024-01-01,POS,-5", "viral_load -5 is negative"),
        ("A1,2024-01-01,POS,1.5", "viral_load '1.5' is not a whole number"),
        ("A1,2024-01-01,POS,99999999999999999999", "viral_load '99999999999999999999' is not a whole number (64-bit)"),
        ("A1,2024-01-01,POS", "viral_load is missing"),
    ],
)
def test_each_rule_quarantines_with_its_reason(row, reason):
    r = run(csv_bytes(row))
    assert r.rows_valid == 0 and r.rows_quarantined == 1
    assert reason in reasons(r)[0]


def test_every_reason_of_a_row_is_listed_and_values_stay_as_uploaded():
    r = run(csv_bytes("  ,2024-02-31, positive , -1 "))
    (error,) = reasons(r)
    assert error.count(";") == 3, error  # four independent reasons
    # in the order of the columns, as a person reads the row
    columns = [reason.split()[0] for reason in error.split("; ")]
    assert columns == ["sample_id", "test_date", "result", "viral_load"], error
    row = r.quarantine.row(0, named=True)
    assert row["result"] == " positive " and row["viral_load"] == " -1 "  # exactly as uploaded
    assert row["source_file"] == "upload.csv" and row["row_number"] == 1


def test_whitespace_around_values_and_header_case_are_tolerated():
    r = run(b" Sample_ID , Test_Date ,RESULT,viral_load\n  A1 , 2024-01-01 , POS , 7 \n")
    assert r.rows_quarantined == 0
    assert r.valid.select("sample_id", "result", "viral_load").row(0) == ("A1", "POS", 7)


# The bad-input corpus --------------------------------------------------------------------

def test_empty_file():
    r = run(b"")
    assert r.rows_read == 0 and "the file is empty" in r.notes


def test_header_only():
    r = run(HEADER.encode())
    assert (r.rows_read, r.rows_valid, r.rows_quarantined) == (0, 0, 0)


def test_missing_column_quarantines_every_row_with_the_reason():
    r = run(b"sample_id,test_date,result\nA1,2024-01-01,POS\nA2,2024-01-02,NEG\n")
    assert r.rows_quarantined == 2
    assert all("the file has no viral_load column" in e for e in reasons(r))
    assert any("missing columns: viral_load" in n for n in r.notes)


def test_extra_columns_are_ignored_and_reported():
    r = run(b"sample_id,test_date,result,viral_load,lab\nA1,2024-01-01,POS,3,north\n")
    assert r.rows_valid == 1 and r.valid.columns == ["sample_id", "test_date", "result", "viral_load", "row_number"]
    assert "extra columns ignored: lab" in r.notes


def test_utf8_bom_and_crlf():
    r = run(b"\xef\xbb\xbfsample_id,test_date,result,viral_load\r\nA1,2024-01-01,POS,3\r\nA2,2024-01-01,NEG,0\r\n")
    assert r.rows_valid == 2 and r.valid["sample_id"].to_list() == ["A1", "A2"]


def test_non_utf8_bytes_quarantine_only_their_rows():
    r = run(csv_bytes("A1,2024-01-01,POS,3") + b"B\xff\xfe2,2024-01-01,NEG,0\n")
    assert r.rows_valid == 1 and r.rows_quarantined == 1
    assert "not valid UTF-8" in reasons(r)[0]
    assert any("not valid UTF-8" in n for n in r.notes)


def test_quoted_fields_with_commas_and_newlines():
    r = run(csv_bytes('"A,1",2024-01-01,POS,3', '"B\n2",2024-01-01,NEG,0'))
    assert r.valid["sample_id"].to_list() == ["A,1", "B\n2"]


def test_ragged_rows_are_quarantined_and_the_rest_kept():
    r = run(csv_bytes("A1,2024-01-01,POS,3", "A2,2024-01-01,POS,3,surplus,fields", "A3,2024-01-01", "A4,2024-01-02,NEG,0"))
    assert r.valid["sample_id"].to_list() == ["A1", "A4"]
    by_row = dict(zip(r.quarantine["row_number"], reasons(r)))
    assert "row has 6 fields but the header has 4" in by_row[2]
    assert "row has 2 fields but the header has 4" in by_row[3]
    # Kept whole: the surplus in a column of its own, a short row's missing fields null.
    kept = r.quarantine.select("sample_id", "test_date", "result", "viral_load", "surplus_fields").rows()
    assert kept == [("A2", "2024-01-01", "POS", "3", "surplus,fields"), ("A3", "2024-01-01", None, None, None)]


def test_unterminated_quote_does_not_crash():
    r = run(csv_bytes("A1,2024-01-01,POS,3", '"A2,2024-01-01,POS,3', "A3,2024-01-01,POS,3"))
    assert r.rows_quarantined >= 1 and r.valid["sample_id"].to_list() == ["A1"]


def test_binary_file_named_csv_is_rejected_whole():
    r = run(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00")
    assert r.rejected and r.rows_read == 0
    assert r.notes == ["file rejected: this is a binary file (it contains NUL bytes), not a CSV"]


def test_duplicate_sample_ids_in_one_file():
    r = run(csv_bytes("A1,2024-01-01,POS,3", "A1,2024-01-01,POS,3", "B1,2024-01-01,POS,3", "B1,2024-01-01,NEG,0"))
    # identical repeats are harmless and kept; conflicting ones go to a person
    assert r.valid["sample_id"].to_list() == ["A1", "A1"]
    assert r.quarantine["row_number"].to_list() == [3, 4]
    assert all("appears more than once in this file with different values" in e for e in reasons(r))


def test_a_large_file_is_validated_without_a_row_loop():
    rows = [f"S{i},2024-03-0{1 + i % 7},{'POS' if i % 3 else 'Positive'},{i}" for i in range(30_000)]
    r = run(csv_bytes(*rows))
    assert r.rows_quarantined == 10_000 and r.rows_valid == 20_000


@pytest.mark.parametrize("header", ["sample_id,test_date,result,viral_load,result\n",
                                    "sample_id,test_date,result,viral_load, Result \n"])
def test_a_required_column_named_twice_quarantines_every_row(header):
    r = run(csv_bytes("A1,2024-01-01,NEG,0,POS", "A2,2024-01-02,POS,5,POS", header=header))
    assert r.rows_valid == 0 and r.quarantine["sample_id"].to_list() == ["A1", "A2"]
    assert set(reasons(r)) == {"the header names result more than once: which column holds the value is ambiguous"}
    assert r.quarantine.columns[:5] == ["sample_id", "test_date", "result", "viral_load", r.quarantine.columns[4]]


def test_other_columns_named_twice_are_only_noted():
    r = run(csv_bytes("A1,2024-01-01,NEG,0,x,y", header="sample_id,test_date,result,viral_load,Notes,notes\n"))
    assert r.valid["sample_id"].to_list() == ["A1"] and "extra columns ignored: Notes, notes" in r.notes


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be"])
def test_a_utf16_file_is_read_as_text(encoding):
    text = HEADER + "A1,2024-01-01,POS,5\nA2,2024-01-02,Positive,7\n"
    data = text.encode(encoding) if encoding == "utf-16" else b"\xfe\xff" + text.encode(encoding)
    r = run(data)
    assert r.valid["sample_id"].to_list() == ["A1"] and r.quarantine["sample_id"].to_list() == ["A2"]
    assert any("UTF-16" in n for n in r.notes)


def test_a_stray_nul_byte_holds_back_its_row_only():
    r = run(csv_bytes("A1,2024-01-01,POS,5", "A\x002,2024-01-02,NEG,0", "A3,2024-01-03,NEG,0"))
    assert r.valid["sample_id"].to_list() == ["A1", "A3"]
    assert reasons(r) == ["contains a NUL byte (\\x00), which no value may hold"]


def test_a_huge_value_is_quoted_short_in_its_reason():
    r = run(csv_bytes("A1,2024-01-01," + "X" * 100_000 + ",5"))
    (reason,) = reasons(r)
    assert reason.startswith("result 'XXXX") and "(100,000 characters)" in reason and len(reason) < 200


def test_an_upload_over_the_size_limit_is_rejected_before_it_is_parsed(monkeypatch):
    monkeypatch.setenv("PDP_MAX_UPLOAD_MB", "1")
    r = run(csv_bytes(*["A1,2024-01-01,POS,5"] * 60_000))  # over the 1 MB limit
    assert r.rejected and r.rows_read == 0
    assert r.notes == ["file rejected: 1.1 MB is more than the 1 MB an upload may be (PDP_MAX_UPLOAD_MB): "
                       "split the file and upload the parts"]
