"""The factory: each declared load becomes a weekly-partitioned, graph-backed asset.

Why a graph-backed asset: the warehouse table is one asset (what lineage should show:
``lab_results -> warehouse_lab_results``), while each phase is an op, hence a step of the run,
with its own logs, output metadata, duration and ``RetryPolicy``. Dagster's "re-execute from
failure" then resumes at the failed phase: finished steps are skipped and their outputs (the
small :class:`Window` record) are read back from the parent run. The audit is the asset's
blocking check; a failed audit stops the run before stage cleaning, so the stage rows stay for
a person to look at. The asset is materialized by the last step, ``commit``: a materialization
means a whole, audited load of that week.
"""

import dataclasses
import datetime as dt
import time
from typing import Any, Callable, Optional

import dagster as dg
import polars as pl

from pdp_assets.lib.automation import WHEN_INPUTS_CHANGE
from pdp_assets.lib.metadata import markdown_table, ROW_COUNT, TABLE_NAME
from pdp_assets.lib.partitions import week_bounds, weekly_partitions
from pdp_assets.lib.resources.storage import BlobStorage
from pdp_assets.lib.resources.warehouse import Warehouse
from pdp_assets.lib.warehouse import drive, sql
from pdp_assets.lib.warehouse.config import config_path, Load, load_config, WarehouseConfig

GROUP = "warehouse"
OWNERS = ["team:data-platform"]  # who to ask about these assets; the tag selects them across groups
TAGS = {"domain": GROUP}
AUDIT = "audit_counts"  # check name
JOB_TAGS = {
    # A failed step already had its RetryPolicy; run retries are for crashed runs only. dagster.yaml
    # says so for every run; the tag keeps it so on an instance configured otherwise.
    "dagster/retry_on_asset_or_op_failure": "false",
}


@dataclasses.dataclass(frozen=True)
class Window:
    """What one phase hands the next: small, pickled by the IO manager, read back on resume."""

    load: str
    key: str
    load_id: str
    attempt: int
    kind: str
    source_rows: int = 0
    source_files: int = 0
    stage_rows: int = 0
    inserted: int = 0
    updated: int = 0
    target_rows: int = 0
    stage_cleaned: int = 0
    target_cleaned: int = 0
    schema_changes: str = ""


def asset_key(load: Load) -> dg.AssetKey:
    return dg.AssetKey(f"{GROUP}_{load.name}")


# --------------------------------------------------------------------------- errors


# Snowflake error numbers a retry may fix (docs/warehouse.md has the table). Everything else the
# warehouse reports (a compilation error, an unknown object, a bad type) is permanent: retrying
# cannot help, whatever words its text contains.
TRANSIENT_ERRNOS = {
    604: "SQL execution canceled (a timeout or a cancel from outside)",
    625: "statement waited too long for a lock",
    630: "statement reached its statement or warehouse timeout",
    250001: "could not connect to Snowflake",
    250003: "network error during a request (connection reset, HTTP 5xx or 429)",
    390114: "authentication token expired (a new connection gets a new one)",
}
TRANSIENT_SQLSTATE_CLASSES = ("08",)  # connection exceptions, except the server refusing the login:
REFUSED_SQLSTATE = "08004"  # (wrong user or password) which no retry fixes
TRANSIENT_SQLSTATES = {"40001": "serialization failure", "57014": "query canceled"}


def is_transient(error: BaseException) -> bool:
    """Timeouts, lock waits and dropped connections are worth retrying; the rest is not. Decided
    by the error's class, Snowflake error number and SQL state, never by words in its text."""
    if isinstance(error, sql.PermanentLoadError):
        return False
    if isinstance(error, (sql.TransientLoadError, TimeoutError, ConnectionError)):
        return True
    from snowflake.connector import errors as sf

    if isinstance(error, sf.Error):
        state = error.sqlstate or ""
        if state == REFUSED_SQLSTATE:
            return False
        if error.errno in TRANSIENT_ERRNOS or state in TRANSIENT_SQLSTATES or state.startswith(TRANSIENT_SQLSTATE_CLASSES):
            return True
        return isinstance(error, (sf.OperationalError, sf.InterfaceError))  # the connector's network failures
    import duckdb

    # The local warehouse: another process holds the file's lock, or two writers conflicted.
    if isinstance(error, duckdb.IOException) and "Could not set lock on file" in str(error):
        return True
    return isinstance(error, (duckdb.TransactionException, duckdb.ConnectionException))


class _Phase:
    """Runs one phase of one attempt: heartbeat and timing into the drive row, failures
    classified. A transient error is re-raised for the step's RetryPolicy; a permanent one
    becomes a ``dg.Failure`` that is not retried."""

    def __init__(self, context: dg.OpExecutionContext, warehouse: Warehouse, cfg: WarehouseConfig,
                 load: Load, name: str):
        self.context, self.warehouse, self.cfg, self.load, self.name = context, warehouse, cfg, load, name

    def run(self, load_id: Optional[str], work: Callable[[Any], tuple[Any, dict[str, Any]]]) -> Any:
        """``work(cursor) -> (result, drive fields)``; it may set ``self.load_id`` once it opens an attempt."""
        started = time.monotonic()
        table = self.cfg.drive_table
        self.load_id = load_id
        try:
            with self.warehouse.connect() as conn:
                cur = conn.cursor()
                if load_id:
                    row = drive.get(cur, table, load_id) or {}
                    retries = int(row.get("RETRIES") or 0) + (1 if row.get("STATUS") == drive.FAILED else 0)
                    drive.update(cur, table, load_id, STATUS=drive.RUNNING, PHASE=self.name,
                                 RUN_ID=self.context.run.run_id, RETRIES=retries)
                result, fields = work(cur)
                seconds = round(time.monotonic() - started, 3)
                if self.load_id:
                    drive.update(cur, table, self.load_id, **{f"{self.name.upper()}_SECONDS": seconds}, **fields)
            self.context.log.info(f"{self.name} done in {seconds} s: {fields or 'nothing to record'}")
            return result
        except Exception as e:  # noqa: BLE001 - classified and re-raised below
            self._fail(self.load_id, e)

    def _fail(self, load_id: Optional[str], error: Exception) -> None:
        transient = is_transient(error)
        kind = "transient" if transient else "permanent"
        what = f"{self.load.name} {self.context.partition_key} {self.name}"
        if load_id:
            try:  # a fresh connection: the failed one may be the problem
                with self.warehouse.connect() as conn:
                    drive.update(conn.cursor(), self.cfg.drive_table, load_id, STATUS=drive.FAILED,
                                 FAILED_PHASE=self.name, ERROR_KIND=kind, ERROR_CLASS=type(error).__name__,
                                 ERROR_TEXT=str(error)[:4000], FINISHED_AT=drive.now())
            except Exception as record_error:  # noqa: BLE001 - never hide the original error
                self.context.log.warning(f"{what}: could not record the failure in the drive table: {record_error}")
        if transient:
            self.context.log.warning(f"{what}: transient {type(error).__name__}: {error}; the step's RetryPolicy retries it")
            raise error
        raise dg.Failure(
            description=f"{what} failed (permanent, not retried): {type(error).__name__}: {error}",
            metadata={"load_id": load_id or "", "phase": self.name, "error_class": type(error).__name__},
            allow_retries=False,
        ) from error


# --------------------------------------------------------------------------- phases


def _stale_handling(context, warehouse, storage, cfg: WarehouseConfig, load: Load) -> dict:
    def work(cur):
        drive.ensure(cur, cfg.drive_table)
        limit = drive.now() - dt.timedelta(minutes=load.stale_after_minutes)
        stale = []
        for row in drive.attempts(cur, cfg.drive_table, load.name):
            if row["STATUS"] != drive.RUNNING or row["RUN_ID"] == context.run.run_id:
                continue
            run = context.instance.get_run_by_id(row["RUN_ID"]) if row["RUN_ID"] else None
            beat = row["UPDATED_AT"]
            if run is not None and not run.is_finished:
                continue  # a live run owns it, however long its MERGE takes: heartbeats only judge lost runs
            if run is not None:
                why = f"its run {row['RUN_ID']} ended ({run.status.value}) while the load was RUNNING"
            elif beat is not None and beat < limit:
                why = f"no heartbeat since {beat.isoformat()} (stale after {load.stale_after_minutes} min)"
            else:
                continue
            drive.update(cur, cfg.drive_table, row["LOAD_ID"], STATUS=drive.STALE, FAILED_PHASE=row["PHASE"],
                         ERROR_KIND="stale", ERROR_CLASS="StaleRun", ERROR_TEXT=why, FINISHED_AT=drive.now())
            stale.append({"load_id": row["LOAD_ID"], "window": row["WINDOW_KEY"], "phase": row["PHASE"], "why": why})
        cleaned = sql.clean_stage(cur, load, [s["load_id"] for s in stale]) if stale else 0
        for s in stale:
            context.log.warning(f"marked {s['load_id']} STALE at phase {s['phase']}: {s['why']}")
        return {"stale": stale, "stage_rows_removed": cleaned}, {}

    return _Phase(context, warehouse, cfg, load, "stale_handling").run(None, work)


def _pre_validation(context, warehouse, storage: BlobStorage, cfg: WarehouseConfig, load: Load, stale: dict) -> Window:
    key = context.partition_key
    phase = _Phase(context, warehouse, cfg, load, "pre_validation")

    def work(cur):
        drive.ensure(cur, cfg.drive_table)
        previous = drive.attempts(cur, cfg.drive_table, load.name, key)
        last = previous[-1] if previous else None
        if last and last["STATUS"] == drive.RUNNING:
            raise sql.PermanentLoadError(
                f"window {key} is being loaded by run {last['RUN_ID']} ({last['LOAD_ID']}, phase {last['PHASE']}, "
                f"heartbeat {last['UPDATED_AT']}); wait for it, or for stale handling after {load.stale_after_minutes} min"
            )
        attempt = int(last["ATTEMPT"]) + 1 if last else 1
        kind = "RETRY" if last and last["STATUS"] in (drive.FAILED, drive.STALE) else "FRESH"
        load_id = f"{load.name}__{key}__a{attempt}"
        first, last_day = week_bounds(key)
        drive.insert(cur, cfg.drive_table, {
            "LOAD_ID": load_id, "LOAD_NAME": load.name, "WINDOW_KEY": key, "WINDOW_START": first,
            "WINDOW_END": last_day, "ATTEMPT": attempt, "RUN_KIND": kind, "STATUS": drive.RUNNING,
            "PHASE": "pre_validation", "RETRIES": 0, "RUN_ID": context.run.run_id, "TOLERANCE_PERCENT": load.tolerance_percent,
            "STALE_HANDLING_SECONDS": stale.get("seconds"), "STARTED_AT": drive.now(), "UPDATED_AT": drive.now(),
        })
        phase.load_id = load_id  # from here on a failure is recorded on this attempt
        frame, files = sql.read_source(storage, load, key)
        sql.check_keys(frame, load)
        drift = sql.ensure_tables(cur, load, frame, cfg.stage_area)
        never_found = not any(int(r.get("SOURCE_FILES") or 0) for r in drive.attempts(cur, cfg.drive_table, load.name))
        if not files and never_found and not sql.any_source_blob(storage, load.source):
            raise sql.PermanentLoadError(
                f"load {load.name}: no file in container {load.source.container!r} matches {load.source.path!r} for "
                "any week: check source.container and source.path in loads.yaml")
        if not files:
            context.log.warning(f"no source files for {key} at {load.source.container}/{load.source.path}: loading 0 rows")
        if drift:
            context.log.warning(f"schema drift handled by policy '{load.schema_drift}': {drift.describe()}")
        window = Window(load.name, key, load_id, attempt, kind, source_rows=frame.height, source_files=len(files),
                        schema_changes=drift.describe())
        return window, {"SOURCE_FILES": len(files), "SOURCE_ROWS": frame.height,
                        "SCHEMA_CHANGES": drift.describe() or None}

    return phase.run(None, work)


def _source_to_stage(context, warehouse, storage, cfg, load: Load, window: Window) -> Window:
    def work(cur):
        frame, files = sql.read_source(storage, load, window.key)
        # The source may have changed since pre-validation (a resume days later): apply the drift
        # policy again, so a new column is added or rejected, never dropped by the COPY.
        sql.ensure_tables(cur, load, frame, cfg.stage_area)
        staged = sql.stage_window(cur, load, cfg.stage_area, frame, window.key, window.load_id)
        return dataclasses.replace(window, source_rows=frame.height, source_files=len(files), stage_rows=staged), {
            "SOURCE_ROWS": frame.height, "STAGE_ROWS": staged}

    return _Phase(context, warehouse, cfg, load, "source_to_stage").run(window.load_id, work)


def _stage_to_target(context, warehouse, storage, cfg, load: Load, window: Window) -> Window:
    def work(cur):
        inserted, updated = sql.merge_window(cur, load, window.load_id)
        return dataclasses.replace(window, inserted=inserted, updated=updated), {
            "INSERTED_ROWS": inserted, "UPDATED_ROWS": updated}

    return _Phase(context, warehouse, cfg, load, "stage_to_target").run(window.load_id, work)


def _stage_cleaning(context, warehouse, storage, cfg, load: Load, window: Window) -> Window:
    def work(cur):
        # This attempt's rows and those every earlier attempt of the window left (a failed audit
        # stops before cleaning): no other run is loading the window (pre_validation saw to it).
        ids = [r["LOAD_ID"] for r in drive.attempts(cur, cfg.drive_table, load.name, window.key)]
        cleaned = sql.clean_stage(cur, load, sorted({*ids, window.load_id}))
        return dataclasses.replace(window, stage_cleaned=cleaned), {"STAGE_CLEANED_ROWS": cleaned}

    return _Phase(context, warehouse, cfg, load, "stage_cleaning").run(window.load_id, work)


def _target_cleaning(context, warehouse, storage, cfg, load: Load, window: Window) -> Window:
    def work(cur):
        if window.source_files == 0:
            # No source file is no evidence the week is empty (a wrong container, a lake week not
            # built yet): never wipe the target on it. Deletions reach the target on their own.
            context.log.warning(f"no source files for {window.key}: target cleaning skipped, the target keeps its rows")
            return dataclasses.replace(window, target_cleaned=0), {"TARGET_CLEANED_ROWS": 0}
        pruned = sql.prune_target(cur, load, window.key, window.load_id)
        return dataclasses.replace(window, target_cleaned=pruned), {"TARGET_CLEANED_ROWS": pruned}

    return _Phase(context, warehouse, cfg, load, "target_cleaning").run(window.load_id, work)


PHASE_DOCS = {
    "stale_handling": "Marks this load's attempts left RUNNING by a crashed run (its run ended, or no heartbeat "
                      "past stale_after_minutes) as STALE and removes their stage rows, so the window can be retried.",
    "pre_validation": "Opens a drive-table attempt (FRESH, or RETRY after a failed/stale one), reads the source "
                      "week, checks the merge keys, creates the tables and applies the schema-drift policy.",
    "source_to_stage": "Puts the week's rows, tagged with the load id, into the stage table (PUT + COPY INTO).",
    "stage_to_target": "MERGEs the load id's stage rows into the target on the merge keys (idempotent).",
    "audit": "Compares source, stage and target counts within the tolerance: the asset's blocking check. The "
             "target is the week's whole target as the load leaves it (without target cleaning, rows the source "
             "no longer has stay and count).",
    "stage_cleaning": "Removes the stage rows of this (audited) load.",
    "target_cleaning": "Removes the week's target rows the source no longer has (not written by this load).",
    "commit": "Marks the attempt SUCCEEDED in the drive table and materializes the warehouse asset.",
}

_PHASE_FNS = {"source_to_stage": _source_to_stage, "stage_to_target": _stage_to_target,
              "stage_cleaning": _stage_cleaning, "target_cleaning": _target_cleaning}


def build_load_asset(cfg: WarehouseConfig, load: Load) -> dg.AssetsDefinition:
    """The graph-backed asset ``warehouse_<load>`` and its blocking audit check."""
    key = asset_key(load)
    retry = dg.RetryPolicy(max_retries=load.retry.max_retries, delay=load.retry.delay_seconds,
                           backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
    resources = {"warehouse", "storage"}
    pool = f"warehouse_{load.name}"  # one window of a load at a time (dagster.yaml)

    def op(phase: str, **kwargs):
        return dg.op(name=f"{load.name}__{phase}", description=PHASE_DOCS[phase], retry_policy=retry,
                     required_resource_keys=resources, tags={"pdp/phase": phase}, pool=pool, **kwargs)

    @op("stale_handling", out=dg.Out(dict))
    def stale_handling(context: dg.OpExecutionContext):
        started = time.monotonic()
        result = _stale_handling(context, context.resources.warehouse, context.resources.storage, cfg, load)
        result["seconds"] = round(time.monotonic() - started, 3)
        yield dg.Output(result, metadata={"stale_marked": len(result["stale"]),
                                          "stage_rows_removed": result["stage_rows_removed"],
                                          "stale": dg.MetadataValue.json(result["stale"])})

    @op("pre_validation", ins={"source": dg.In(dg.Nothing), "stale": dg.In(dict, default_value={})},
        out=dg.Out(Window))
    def pre_validation(context: dg.OpExecutionContext, stale: dict):
        window = _pre_validation(context, context.resources.warehouse, context.resources.storage, cfg, load, stale)
        yield dg.Output(window, metadata={
            "load_id": window.load_id, "attempt": window.attempt, "run_kind": window.kind,
            "source_rows": window.source_rows, "source_files": window.source_files,
            "schema_changes": window.schema_changes or "none", "stale_marked": len(stale.get("stale", [])),
        })

    def phase_op(phase: str):
        fn = _PHASE_FNS[phase]

        @op(phase, out=dg.Out(Window))
        def run_phase(context: dg.OpExecutionContext, window: Window):
            out = fn(context, context.resources.warehouse, context.resources.storage, cfg, load, window)
            changed = {f.name: getattr(out, f.name) for f in dataclasses.fields(out)
                       if isinstance(getattr(out, f.name), int) and getattr(out, f.name) != getattr(window, f.name)}
            yield dg.Output(out, metadata={"load_id": out.load_id, **changed})

        return run_phase

    check_spec = dg.AssetCheckSpec(AUDIT, asset=key, blocking=True, partitions_def=weekly_partitions,
                                   description=f"source = stage = target row counts, within {load.tolerance_percent}%")

    @op("audit", out={"window": dg.Out(Window), "check": dg.Out(dg.Nothing)})
    def audit(context: dg.OpExecutionContext, window: Window):
        result: dict = {}

        def work(cur):
            stage = sql.count_stage(cur, load, window.load_id)
            # The week's whole target as it stands after this load: target cleaning (later) removes
            # the rows this load did not write; without it they stay and count. A week with no
            # source file says nothing about its rows (as target cleaning holds): not counted then.
            whole_week = not load.phases.target_cleaning and window.source_files > 0
            extra, listing = sql.target_rows_not_written(cur, load, window.key, window.load_id) if whole_week else (0, "")
            target = sql.count_target(cur, load, window.load_id) + extra
            passed, diff = sql.audit_counts(window.source_rows, stage, target, load.tolerance_percent)
            result.update(passed=passed, diff=diff, stage=stage, target=target, extra=extra)
            fields = {"STAGE_ROWS": stage, "TARGET_ROWS": target, "AUDIT_DIFF_PERCENT": diff,
                      "AUDIT_STATUS": "PASSED" if passed else "FAILED"}
            if not passed:  # the blocking check fails the step after this: say why in the drive row
                not_in_source = f"; {extra} target row(s) the source does not have ({listing})" if extra else ""
                fields.update(STATUS=drive.FAILED, FAILED_PHASE="audit", ERROR_KIND="permanent",
                              ERROR_CLASS="AuditFailed", FINISHED_AT=drive.now(),
                              ERROR_TEXT=f"counts differ by {diff}% > tolerance {load.tolerance_percent}%: "
                                         f"source {window.source_rows}, stage {stage}, target {target}{not_in_source}")
            return None, fields

        _Phase(context, context.resources.warehouse, cfg, load, "audit").run(window.load_id, work)
        counts = {"source_rows": window.source_rows, "stage_rows": result["stage"], "target_rows": result["target"],
                  "diff_percent": result["diff"], "tolerance_percent": load.tolerance_percent,
                  "target_rows_not_in_source": result["extra"], "load_id": window.load_id}
        if not result["passed"]:
            context.log.error(f"audit failed for {window.load_id}: {counts}; stage rows kept for inspection")
        yield dg.AssetCheckResult(asset_key=key, check_name=AUDIT, passed=result["passed"], metadata=counts)
        yield dg.Output(dataclasses.replace(window, target_rows=result["target"]), "window")

    @op("commit", out=dg.Out(dg.Nothing))
    def commit(context: dg.OpExecutionContext, window: Window):
        warehouse: Warehouse = context.resources.warehouse
        with warehouse.connect() as conn:
            cur = conn.cursor()
            drive.update(cur, cfg.drive_table, window.load_id, STATUS=drive.SUCCEEDED, PHASE="commit",
                         RUN_ID=context.run.run_id, FINISHED_AT=drive.now())
            row = drive.get(cur, cfg.drive_table, window.load_id) or {}
        seconds = {p: row.get(f"{p.upper()}_SECONDS") for p in
                   ("stale_handling", "pre_validation", "source_to_stage", "stage_to_target", "audit",
                    "stage_cleaning", "target_cleaning")}
        timing = pl.DataFrame({"phase": list(seconds), "seconds": [s for s in seconds.values()]}, strict=False)
        yield dg.Output(None, metadata={
            "load_id": window.load_id, "attempt": window.attempt, "run_kind": window.kind,
            "source_rows": window.source_rows, "stage_rows": row.get("STAGE_ROWS") or 0,
            "inserted": window.inserted, "updated": window.updated, "target_rows": row.get("TARGET_ROWS") or 0,
            "target_cleaned": row.get("TARGET_CLEANED_ROWS") or 0, "retries": row.get("RETRIES") or 0,
            "schema_changes": window.schema_changes or "none", "phase_seconds": markdown_table(timing),
            ROW_COUNT: row.get("TARGET_ROWS") or 0,
            TABLE_NAME: f"{warehouse.database}.{warehouse.schema_name}.{load.target_table}",
            "where": warehouse.describe(),
        })

    ins = {"source": dg.AssetIn(key=dg.AssetKey(load.source.asset.split("/")), dagster_type=dg.Nothing)}
    check_specs = [check_spec] if load.phases.audit else []

    @dg.graph_asset(
        key=key, ins=ins, partitions_def=weekly_partitions, group_name=GROUP, owners=OWNERS, tags=TAGS,
        check_specs=check_specs,
        description=load.description or f"{load.source.asset} loaded into {load.target_table}",
        kinds={"snowflake"}, automation_condition=WHEN_INPUTS_CHANGE,
        backfill_policy=dg.BackfillPolicy.multi_run(1),  # a week window per run, as the drive table tracks
        metadata={"target_table": load.target_table, "stage_table": load.stage,
                                       "merge_keys": ", ".join(load.merge_keys), "schema_drift": load.schema_drift},
    )
    def _load(source):
        stale = stale_handling() if load.phases.stale_handling else None
        window = pre_validation(source=source, stale=stale) if stale is not None else pre_validation(source=source)
        window = phase_op("source_to_stage")(window)
        window = phase_op("stage_to_target")(window)
        outputs = {}
        if load.phases.audit:
            window, outputs[check_spec.get_python_identifier()] = audit(window)
        if load.phases.stage_cleaning:
            window = phase_op("stage_cleaning")(window)
        if load.phases.target_cleaning:
            window = phase_op("target_cleaning")(window)
        return {"result": commit(window), **outputs}

    return _load


def build_load_job(load: Load):
    return dg.define_asset_job(
        f"warehouse_{load.name}_job", selection=dg.AssetSelection.assets(asset_key(load)),
        tags=JOB_TAGS,
        description=f"Load weeks of {load.source.asset} into {load.target_table}.",
    )


# Reading loads.yaml at load time means a bad file stops the code location from loading, with a
# message that names the file, the load and the field.
CONFIG = load_config(config_path())
load_assets = [build_load_asset(CONFIG, load) for load in CONFIG.enabled]
