"""The declared loads (``loads.yaml``): read, validated, and turned into typed objects.

Validation runs when the code location loads, so a bad file stops the deployment with a
message naming the file, the load and the field. Every name that ends up in SQL (tables,
columns, the stage) must be a plain Snowflake identifier, so no config value can inject SQL.
"""

import os
import re
import string
from pathlib import Path
from typing import Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

CONFIG_PATH = Path(__file__).with_name("loads.yaml")


def config_path() -> Path:
    """The loads file the project uses: ``PDP_WAREHOUSE_LOADS`` (to try another before deploying
    it; `pdp warehouse validate FILE` checks one), else the shipped loads.yaml."""
    return Path(os.environ.get("PDP_WAREHOUSE_LOADS") or CONFIG_PATH)

# Matched with fullmatch: "$" would let a trailing newline through ("LAB_RESULTS\n").
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
LOAD_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")  # also part of op names and stage paths
# Snowflake's reserved keywords: not usable as a table, column or stage name in this project's SQL.
RESERVED = frozenset("""
ACCOUNT ALL ALTER AND ANY AS BETWEEN BY CASE CAST CHECK COLUMN CONNECT CONNECTION CONSTRAINT CREATE
CROSS CURRENT CURRENT_DATE CURRENT_TIME CURRENT_TIMESTAMP CURRENT_USER DATABASE DELETE DISTINCT DROP
ELSE EXISTS FALSE FOLLOWING FOR FROM FULL GRANT GROUP GSCLUSTER HAVING ILIKE IN INCREMENT INNER INSERT
INTERSECT INTO IS ISSUE JOIN LATERAL LEFT LIKE LOCALTIME LOCALTIMESTAMP MINUS NATURAL NOT NULL OF ON
OR ORDER ORGANIZATION QUALIFY REGEXP REVOKE RIGHT RLIKE ROW ROWS SAMPLE SCHEMA SELECT SET SOME START
TABLE TABLESAMPLE THEN TO TRIGGER TRUE TRY_CAST UNION UNIQUE UPDATE USING VALUES VIEW WHEN WHENEVER
WHERE WITH""".split())
PATH_FIELDS = {"week_path", "week", "iso_year", "iso_week"}

PHASES = ("stale_handling", "pre_validation", "source_to_stage", "stage_to_target", "audit",
          "stage_cleaning", "target_cleaning")
OPTIONAL_PHASES = ("stale_handling", "audit", "stage_cleaning", "target_cleaning")


class WarehouseConfigError(ValueError):
    """A problem in the loads file; the message names the file, the load and the field."""


def identifier(value: str) -> str:
    """A validated Snowflake identifier, upper case (how Snowflake stores unquoted names)."""
    if not isinstance(value, str) or not IDENT.fullmatch(value):
        raise ValueError(f"{value!r} is not a plain Snowflake identifier: letters, digits and _, "
                         "not starting with a digit, at most 255 characters")
    if value.upper() in RESERVED:
        raise ValueError(f"{value!r} is a Snowflake reserved word: choose another name")
    return value.upper()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Strict):
    asset: str = Field(description="Key of the Dagster asset whose data this load copies (lineage), '/'-separated")
    container: str = Field(description="Container in the storage resource")
    path: str = Field(description="Blob path of a week: '{week_path}/data.parquet', or a folder of part "
                                  "files ending in '*.parquet'. Fields: " + ", ".join(sorted(PATH_FIELDS)))

    @field_validator("asset")
    @classmethod
    def _asset(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_]+(/[A-Za-z0-9_]+)*", v):
            raise ValueError(f"{v!r} is not an asset key (names of letters, digits and _, joined by '/')")
        return v

    @field_validator("container")
    @classmethod
    def _container(cls, v: str) -> str:
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{1,62}", v):
            raise ValueError(f"{v!r} is not a container name (lower-case letters, digits and -)")
        return v

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        names = {f for _, f, _, _ in string.Formatter().parse(v) if f is not None}
        if unknown := names - PATH_FIELDS:
            raise ValueError(f"unknown field(s) {sorted(unknown)} in {v!r}; use {sorted(PATH_FIELDS)}")
        if not names & {"week_path", "week", "iso_week"}:
            raise ValueError(f"{v!r} names no week: it must hold {{week_path}}, {{week}} or {{iso_week}}")
        if not v.endswith(".parquet") or v.startswith("/") or ".." in v.split("/"):
            raise ValueError(f"{v!r} must be a relative path to Parquet file(s), ending in .parquet")
        if "*" in v and not v.endswith("/*.parquet"):
            raise ValueError(f"{v!r}: a folder of part files is written '<folder>/*.parquet'")
        return v


class Phases(_Strict):
    """Optional phases; pre-validation, source -> stage and stage -> target always run."""

    stale_handling: bool = True
    audit: bool = True
    stage_cleaning: bool = True
    target_cleaning: bool = False


class Retry(_Strict):
    max_retries: int = Field(3, ge=0, le=10)
    delay_seconds: float = Field(10.0, ge=0, le=3600)


class Load(_Strict):
    name: str
    description: str = ""
    enabled: bool = True
    source: Source
    target_table: str
    stage_table: Optional[str] = None  # default <target_table>_STAGE
    merge_keys: list[str] = Field(min_length=1)
    tolerance_percent: float = Field(0.0, ge=0, le=100)
    schema_drift: Literal["add", "reject"] = "reject"
    stale_after_minutes: int = Field(60, ge=1)
    phases: Phases = Phases()
    retry: Retry = Retry()
    honour_lab_deletions: bool = False

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not LOAD_NAME.fullmatch(v):
            raise ValueError(f"{v!r}: a load name is lower-case letters, digits and _, starting with a letter")
        return v

    @field_validator("target_table", "stage_table")
    @classmethod
    def _table(cls, v: Optional[str]) -> Optional[str]:
        return None if v is None else identifier(v)

    @field_validator("merge_keys")
    @classmethod
    def _keys(cls, v: list[str]) -> list[str]:
        keys = [identifier(k) for k in v]
        if len(set(keys)) != len(keys):
            raise ValueError(f"{v} repeats a key")
        return keys

    @model_validator(mode="after")
    def _tables_differ(self) -> "Load":
        if self.stage_table == self.target_table:
            raise ValueError("stage_table must differ from target_table")
        if self.honour_lab_deletions and not {"SAMPLE_ID", "TEST_DATE"} <= set(self.merge_keys):
            raise ValueError("honour_lab_deletions needs sample_id and test_date among the merge_keys")
        return self

    @property
    def stage(self) -> str:
        return self.stage_table or f"{self.target_table}_STAGE"


class WarehouseConfig(_Strict):
    drive_table: str = "PDP_LOAD_DRIVE"
    stage_area: str = Field("PDP_LOADS", description="Snowflake internal stage that window files are PUT into")
    loads: list[Load] = []

    @field_validator("drive_table", "stage_area")
    @classmethod
    def _ident(cls, v: str) -> str:
        return identifier(v)

    @model_validator(mode="after")
    def _unique(self) -> "WarehouseConfig":
        names: set[str] = set()
        tables: dict[str, str] = {self.drive_table: "the drive table"}
        for load in self.loads:
            if load.name in names:
                raise ValueError(f"load name {load.name!r} is used twice")
            names.add(load.name)
            for what, table in (("target_table", load.target_table), ("stage_table", load.stage)):
                if table in tables:
                    raise ValueError(f"load {load.name!r}: {what} {table!r} is already {tables[table]}")
                tables[table] = f"a table of load {load.name!r}"
        return self

    @property
    def enabled(self) -> list[Load]:
        return [load for load in self.loads if load.enabled]


def _where(raw: object, loc: tuple) -> str:
    """'load 'x', field 'a.b'' for a pydantic error location like ('loads', 0, 'source', 'path')."""
    if len(loc) >= 2 and loc[0] == "loads" and isinstance(loc[1], int):
        items = raw.get("loads") if isinstance(raw, dict) else None
        item = items[loc[1]] if isinstance(items, list) and loc[1] < len(items) else None
        name = item.get("name") if isinstance(item, dict) else None
        who = f"load {name!r}" if name else f"load #{loc[1] + 1}"
        field = ".".join(str(p) for p in loc[2:]) or "(the load itself)"
        return f"{who}, field {field!r}"
    return f"field {'.'.join(str(p) for p in loc) or '(top level)'!r}"


class _UniqueKeys(yaml.SafeLoader):
    """YAML where a key given twice in one mapping is an error, not the later one silently winning."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"{key!r} is given twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def parse_config(text: str, source: str = "loads.yaml") -> WarehouseConfig:
    try:
        raw = yaml.load(text, Loader=_UniqueKeys)
    except yaml.YAMLError as e:
        raise WarehouseConfigError(f"{source}: not valid YAML: {e}") from None
    if raw is None:
        raise WarehouseConfigError(f"{source}: the file is empty; list the loads under 'loads:' ('loads: []' for none)")
    if not isinstance(raw, dict):
        raise WarehouseConfigError(f"{source}: expected a mapping with a 'loads' list at the top")
    try:
        return WarehouseConfig.model_validate(raw)
    except ValidationError as e:
        problems = [f"{source}: {_where(raw, tuple(err['loc']))}: {err['msg'].removeprefix('Value error, ')}"
                    for err in e.errors()]
        raise WarehouseConfigError("\n".join(problems)) from None


def check_sources(cfg: WarehouseConfig, assets: set[str], source: str = "loads.yaml") -> None:
    """Every enabled load's ``source.asset`` is one of ``assets`` (the project's materializable
    asset keys, '/'-joined): an unknown key would add an external asset and cut the lineage."""
    problems = [f"{source}: load {load.name!r}, field 'source.asset': {load.source.asset!r} is no asset of this "
                "project (see `make defs`)" for load in cfg.enabled if load.source.asset not in assets]
    if problems:
        raise WarehouseConfigError("\n".join(problems))


def load_config(path: Path = CONFIG_PATH) -> WarehouseConfig:
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise WarehouseConfigError(f"{path}: cannot be read: {e}") from None
    return parse_config(text, str(path))
