"""Read an uploaded CSV and split it into valid rows and quarantined rows, with reasons.

Everything is vectorised: Polars parses, Pandera checks every rule on every row at once, and the
failure cases are folded into one readable ``pipeline_error`` per row. A file that Polars cannot
parse as a rectangle (a row with more fields than the header, an unterminated quote) takes a
careful path through the ``csv`` module so its good rows still get through.
"""

import codecs
import contextvars
import csv
import datetime as dt
import io
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pandera.errors
import polars as pl

from pdp_assets.lib.lab_results import lake
from pdp_assets.lib.lab_results.intake import max_upload_mb
from pdp_assets.lib.lab_results.lake import LAKE_SCHEMA
from pdp_assets.lib.lab_results.schemas import COLUMNS, parsed, raw_schema, with_parsed
from pdp_assets.lib.quarantine import ERROR, ROW, SOURCE, shortened, SURPLUS

_ROW_INDEX = "__row"  # 0-based data row, internal


@dataclass
class ValidationResult:
    valid: pl.DataFrame  # LAKE_SCHEMA columns + row_number, sorted by sample_id (file order within one)
    quarantine: pl.DataFrame  # the file's columns as uploaded + pipeline_error, source_file, row_number
    rows_read: int
    notes: list[str] = field(default_factory=list)  # file-level findings, for the run log
    rejected: bool = False  # the file could not be read as CSV at all

    @property
    def rows_valid(self) -> int:
        return self.valid.height

    @property
    def rows_quarantined(self) -> int:
        return self.quarantine.height


def _read_rectangular(data: bytes, lossy: bool) -> pl.DataFrame:
    return pl.read_csv(
        data, infer_schema=False, encoding="utf8-lossy" if lossy else "utf8", raise_if_empty=False, quote_char='"'
    )


def _read_ragged(data: bytes) -> tuple[pl.DataFrame, dict[int, str]]:
    """Row by row, for files Polars refuses. Returns the frame and per-row problems: a short row is
    padded with nulls, a long row's surplus fields go to a SURPLUS column."""
    text = data.decode("utf-8", errors="replace").lstrip("\ufeff")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    header = rows[0] if rows else []
    body = [r for r in rows[1:] if r]  # csv yields [] for blank lines; Polars skips them too
    width = len(header)
    problems = {
        i: f"row has {len(r)} fields but the header has {width}" for i, r in enumerate(body) if len(r) != width
    }
    # An empty field is null, as Polars reads one: the same row reads the same on either path.
    body = [[f or None for f in r] for r in body]
    padded = [(r + [None] * width)[:width] for r in body]
    frame = pl.DataFrame(padded, schema={h: pl.String for h in _unique_names(header)}, orient="row")
    if any(len(r) > width for r in body):
        frame = frame.with_columns(pl.Series(SURPLUS, [_csv_line(r[width:]) if len(r) > width else None for r in body]))
    return frame, problems


def _csv_line(fields: list[str]) -> str:
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="").writerow(fields)
    return out.getvalue()


def _unique_names(header: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for h in header:
        n = seen.get(h, 0)
        seen[h] = n + 1
        out.append(h if n == 0 else f"{h}_duplicated_{n}")
    return out


UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)



def as_utf8(data: bytes) -> bytes:
    """A UTF-16 file (by its byte order mark) as UTF-8; other bytes as they are. Characters that
    are not UTF-16 become \ufffd, and their rows are quarantined for it."""
    return data.decode("utf-16", errors="replace").encode("utf-8") if data.startswith(UTF16_BOMS) else data


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def read_upload(data: bytes) -> tuple[pl.DataFrame, dict[int, str], list[str]]:
    """The upload as strings, exactly as typed (fields beyond the header's in SURPLUS); per-row
    problems found while parsing; notes."""
    notes: list[str] = []
    limit = max_upload_mb()
    if len(data) > limit * 1024 * 1024:
        raise ValueError(f"{len(data) / 1024 / 1024:,.1f} MB is more than the {limit} MB an upload may be "
                         "(PDP_MAX_UPLOAD_MB): split the file and upload the parts")
    if data.startswith(UTF16_BOMS):
        data = as_utf8(data)
        notes.append("the file is UTF-16 (it starts with a byte order mark): read as such")
    if b"\x00" in data[:65536] and not _is_utf8(data):
        raise ValueError("this is a binary file (it contains NUL bytes), not a CSV")
    if not data or data.isspace():  # not data.strip(): that copies the whole upload
        return pl.DataFrame(schema={c: pl.String for c in COLUMNS}), {}, ["the file is empty"]
    try:
        data.decode("utf-8")
        lossy = False
    except UnicodeDecodeError as e:
        notes.append(f"the file is not valid UTF-8 (first bad byte at offset {e.start}); such rows are quarantined")
        lossy = True  # bad bytes become \ufffd (slower to read, so only when needed)
    try:
        frame, problems = _read_rectangular(data, lossy), {}
    except pl.exceptions.PolarsError as e:
        notes.append(f"rows of uneven length, read row by row ({str(e).splitlines()[0]})")
        frame, problems = _read_ragged(data)
    return frame, problems, notes


def record_keys(raw: pl.DataFrame) -> pl.DataFrame | None:
    """The (sample_id, test_date) of each row of an upload as read_upload returns it, read exactly as
    validation reads them (stripped, the date parsed; null where it does not parse). None when the
    file has no such columns."""
    names = {c.strip().lower(): c for c in raw.columns}
    if "sample_id" not in names or "test_date" not in names:
        return None
    keys = with_parsed(raw.select(pl.col(names[c]).str.strip_chars().alias(c) for c in ("sample_id", "test_date")))
    return keys.select("sample_id", pl.col(parsed("test_date")).alias("test_date"))


def without_records(data: bytes, erased: pl.DataFrame) -> tuple[bytes, int]:
    """The upload less its rows of erased records, and how many went. Every other row keeps every
    field it had and its bytes (a file that is not UTF-8 too), whatever its shape; only quoting may
    be normalised."""
    data = as_utf8(data)  # a UTF-16 upload's copy is kept in UTF-8
    text = data.decode("utf-8", errors="surrogateescape")
    bom = "\ufeff" if text.startswith("\ufeff") else ""
    rows = list(csv.reader(io.StringIO(text[len(bom):], newline="")))
    header = [h.strip().lower() for h in rows[0]] if rows else []
    if "sample_id" not in header or "test_date" not in header:
        return data, 0
    at = [header.index("sample_id"), header.index("test_date")]
    body = [r for r in rows[1:] if r]
    keys = record_keys(pl.DataFrame([[r[i] if i < len(r) else None for i in at] for r in body],
                                    schema={"sample_id": pl.String, "test_date": pl.String}, orient="row"))
    gone = lake.is_erased(keys, erased)
    if not gone.any():
        return data, 0
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\n").writerows([rows[0]] + [r for r, g in zip(body, gone) if not g])
    return (bom + out.getvalue()).encode("utf-8", errors="surrogateescape"), int(gone.sum())


def validate_upload(data: bytes, source_file: str, today: dt.date) -> ValidationResult:
    """Validate one uploaded file. Never raises for bad content: it quarantines with a reason."""
    try:
        raw, parse_problems, notes = read_upload(data)
    except ValueError as e:
        # No rows can be read from it: the reason goes to the run's log and the raw-upload
        # check; its bytes stay in the archive.
        empty = pl.DataFrame(schema={ERROR: pl.String, SOURCE: pl.String, ROW: pl.Int64})
        return ValidationResult(_empty_valid(), empty, rows_read=0, notes=[f"file rejected: {e}"], rejected=True)

    # Header names are matched loosely (" Sample_ID " -> sample_id); values keep what was typed.
    # Surplus fields are not a column of the file: they only go to the quarantine, with their row.
    fields = raw.drop(SURPLUS, strict=False)
    names = {c: c.strip().lower() for c in fields.columns}
    # A column the header names twice (the readers call the second "<name>_duplicated_N"): which
    # one holds the value is a guess, so no row of the file is taken.
    loose = [re.sub(r"_duplicated_\d+$", "", c).strip().lower() for c in fields.columns]
    repeated = sorted({c for c in loose if c in COLUMNS and loose.count(c) > 1})
    if repeated:
        reason = f"the header names {', '.join(repeated)} more than once: which column holds the value is ambiguous"
        notes.append(f"{reason}; every row is quarantined")
        every = _add(pl.DataFrame(schema={_ROW_INDEX: pl.UInt32, ERROR: pl.String}), dict.fromkeys(range(raw.height), reason))
        return ValidationResult(_empty_valid(), _quarantined(raw, every, source_file), raw.height, notes)
    lowered = list(names.values())
    header = fields.rename({c: n for c, n in names.items() if lowered.count(n) == 1})  # "Notes" and "notes" stay apart
    missing = [c for c in COLUMNS if c not in header.columns]
    extra = [c for c in header.columns if c not in COLUMNS]
    if extra:
        notes.append(f"extra columns ignored: {', '.join(extra)}")
    if missing:
        notes.append(f"missing columns: {', '.join(missing)}: every row is quarantined")

    present = [c for c in COLUMNS if c in header.columns]
    stripped = with_parsed(header.select(pl.col(present).str.strip_chars())).with_row_index(_ROW_INDEX)
    reasons = _rule_failures(stripped, present, today)
    reasons = _add(reasons, {i: p for i, p in parse_problems.items()})
    if missing:
        every = {i: f"the file has no {', '.join(missing)} column" for i in range(raw.height)}
        reasons = _add(reasons, every)
    if any("not valid UTF-8" in n or "UTF-16" in n for n in notes):
        bad = header.with_row_index(_ROW_INDEX).filter(
            pl.any_horizontal(pl.col(header.columns).str.contains("\ufffd", literal=True))
        )
        reasons = _add(reasons, {i: "contains bytes that are not valid UTF-8 or UTF-16 (shown as \ufffd)" for i in bad[_ROW_INDEX]})
    if b"\x00" in data:  # a stray one in a text file: its row is held back, not the whole file
        nul = header.with_row_index(_ROW_INDEX).filter(
            pl.any_horizontal(pl.col(header.columns).str.contains("\x00", literal=True)))
        reasons = _add(reasons, {i: "contains a NUL byte (\\x00), which no value may hold" for i in nul[_ROW_INDEX]})

    if missing:  # every row has its reason already
        return ValidationResult(_empty_valid(), _quarantined(raw, reasons, source_file), raw.height, notes)

    # Rows every rule passed, in sample_id order (file order within one id): repeats of an id are
    # neighbours, found in one pass, and staging wants this order anyway.
    ok = _without(stripped, reasons).sort("sample_id", maintain_order=True)
    ids = ok.get_column("sample_id")
    repeated = ids.filter(ids == ids.shift(1))
    if repeated.len():
        # Same sample_id with different values in one file: which one is meant is a human decision.
        conflicts = (
            ok.filter(pl.col("sample_id").is_in(repeated.implode()))
            .group_by("sample_id")
            .agg(pl.col(_ROW_INDEX), pl.struct("test_date", "result", "viral_load").n_unique().alias("n"))
            .filter(pl.col("n") > 1)
            .explode(_ROW_INDEX)
            .select(
                _ROW_INDEX,
                # The row holds the id; the reason does not repeat it (reasons reach the UI's metadata).
                pl.lit("sample_id appears more than once in this file with different values").alias(ERROR),
            )
        )
        reasons = _add(reasons, conflicts)
        ok = _without(ok, conflicts)

    valid = ok.select(
        pl.col("sample_id"),
        pl.col(parsed("test_date")).alias("test_date"),
        pl.col("result"),
        pl.col(parsed("viral_load")).alias("viral_load"),
        (pl.col(_ROW_INDEX) + 1).cast(pl.Int64).alias(ROW),
    )
    return ValidationResult(valid, _quarantined(raw, reasons, source_file), rows_read=raw.height, notes=notes)


def _quarantined(raw: pl.DataFrame, reasons: pl.DataFrame, source_file: str) -> pl.DataFrame:
    """The failing rows exactly as uploaded, in file order, with their reasons, file and row number."""
    return (
        raw.with_row_index(_ROW_INDEX)
        .join(reasons, on=_ROW_INDEX, how="inner")
        .sort(_ROW_INDEX)
        .with_columns(pl.lit(source_file).alias(SOURCE), (pl.col(_ROW_INDEX) + 1).cast(pl.Int64).alias(ROW))
        .drop(_ROW_INDEX)
    )


def _without(frame: pl.DataFrame, reasons: pl.DataFrame) -> pl.DataFrame:
    """``frame`` less the rows that have a reason: a filter on the row index, which is cheaper
    than an anti join."""
    if not reasons.height:
        return frame
    return frame.filter(pl.col(_ROW_INDEX).is_in(reasons.get_column(_ROW_INDEX).implode()).not_())


def _empty_valid() -> pl.DataFrame:
    return pl.DataFrame(schema={**LAKE_SCHEMA, ROW: pl.Int64})


def _rule_failures(frame: pl.DataFrame, present: list[str], today: dt.date) -> pl.DataFrame:
    """One row per failing data row: (row index, every reason joined by '; ')."""
    schema = raw_schema(today)
    # Pandera runs one short Polars query per check, one after another, which keeps one core of
    # two busy; a column per thread keeps both.
    # That equals one validation of every column only while no rule spans columns.
    assert not schema.checks and not schema.unique, "the raw schema has rules across columns"
    # Each thread runs in a copy of this one's context: Pandera keeps its config_context there.
    contexts = [contextvars.copy_context() for _ in present]
    with ThreadPoolExecutor(max_workers=max(1, len(present))) as pool:
        found = pool.map(lambda ctx, column: ctx.run(_failure_cases, schema, column, frame), contexts, present)
        found = [cases for cases in found if cases is not None]
    if not found:
        return pl.DataFrame(schema={_ROW_INDEX: pl.UInt32, ERROR: pl.String})
    cases = pl.concat(found)  # in column order, as one validation of every column reports them
    per_row = cases.filter(pl.col("index").is_not_null()).select(
        pl.col("index").cast(pl.UInt32).alias(_ROW_INDEX),
        pl.col("column"),
        pl.col("check"),
        pl.col("failure_case"),
    )
    # Render once per distinct (column, check, value), not per row: bad files repeat themselves.
    distinct = per_row.select("column", "check", "failure_case").unique()
    distinct = distinct.with_columns(
        pl.Series(ERROR, [_render(*r) for r in distinct.iter_rows()], dtype=pl.String)
    )
    return _joined(
        # In Pandera's order: a row's reasons are listed in the order of its columns and checks.
        per_row.join(
            distinct, on=["column", "check", "failure_case"], how="left", nulls_equal=True, maintain_order="left"
        )
        .group_by(_ROW_INDEX)
        .agg(pl.col(ERROR).unique(maintain_order=True))
    )


def _failure_cases(schema, column: str, frame: pl.DataFrame) -> pl.DataFrame | None:
    """Pandera's failure cases of one column's checks, None when it passes them all."""
    try:
        schema.select_columns([column]).validate(frame, lazy=True)
        return None
    except pandera.errors.SchemaErrors as e:
        return e.failure_cases


def _render(column: str, check: str, value) -> str:
    """Pandera names a failed check by its ``error`` text, our reason template."""
    if check == "not_nullable":
        return f"{column} is missing"
    return check.format(value=shortened(value) if isinstance(value, str) else value)


def _add(reasons: pl.DataFrame, more) -> pl.DataFrame:
    """Merge more (row index -> reason) into the reasons table, joining reasons of one row."""
    if isinstance(more, dict):
        if not more:
            return reasons
        more = pl.DataFrame({_ROW_INDEX: list(more), ERROR: list(more.values())}, schema={_ROW_INDEX: pl.UInt32, ERROR: pl.String})
    if more.height == 0:
        return reasons
    return _joined(
        pl.concat([reasons, more.with_columns(pl.col(_ROW_INDEX).cast(pl.UInt32))])
        .group_by(_ROW_INDEX, maintain_order=True)
        .agg(pl.col(ERROR))
    )


def _joined(reasons: pl.DataFrame) -> pl.DataFrame:
    """A row's list of reasons as one text. Gathered as a list first: ``str.join`` inside the
    aggregation is several times slower."""
    return reasons.with_columns(pl.col(ERROR).list.join("; "))
