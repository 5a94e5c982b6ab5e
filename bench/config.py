"""bench.toml: the run settings and each method's hyperparameters (lists are sweeps)."""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bench.errors import BenchError, first_error

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "bench.toml"


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str = Field("digits", min_length=1, description="run directory name under `out`")
    out: Path = Field(Path("runs"), description="parent folder of run directories")
    model: str = "digits"
    model_path: str | None = Field(None, description="local weights folder of the model")
    dtype: str | None = Field(None, description="float32, float16, bfloat16 (model default)")
    methods: list[str] = Field(default_factory=lambda: ["none", "spell"])
    prompts: int | list[str] | str = Field(
        "all", description="'all', a count, ids, or a dataset: imagenet, file:PATH, cc12m:DIR"
    )
    references: Path | None = Field(
        None, description="reference image folder of a dataset prompt set (scoring only)"
    )
    samples: int | Literal["references"] = Field(
        32, description="samples per prompt, or 'references': as many as its reference images"
    )
    batch_size: int = Field(8, gt=0)
    steps: int | None = Field(None, gt=0, description="default: the model's")
    guidance: float | None = Field(
        None, description="CFG weight w (1 = none); default: the model's"
    )
    scheduler: str = "native"
    seed: int = 0
    threads: int | None = Field(
        None, gt=0, description="torch threads per process (unset: the idle cores, up to 4)"
    )
    device: str = "cpu"
    channels_last: bool = Field(False, description="the denoiser in channels-last memory format")
    compile: str | None = Field(
        None, description="torch.compile the denoiser with this backend (e.g. inductor)"
    )

    @field_validator("name")
    @classmethod
    def _one_folder(cls, name: str) -> str:
        """The run directory is `out/name`: a name that is a path would write elsewhere."""
        if "/" in name or "\\" in name or name in (".", "..") or name != name.strip():
            raise ValueError(f"{name!r} must be a plain folder name (no /, \\, . or ..)")
        return name

    @field_validator("samples")
    @classmethod
    def _positive(cls, samples: int | str) -> int | str:
        if isinstance(samples, int) and samples <= 0:
            raise ValueError(f"must be positive, got {samples}")
        return samples

    @field_validator("prompts")
    @classmethod
    def _each_once(cls, prompts: int | list[str] | str) -> int | list[str] | str:
        if isinstance(prompts, list):
            repeated = sorted({p for p in prompts if prompts.count(p) > 1})
            if repeated:
                raise ValueError(f"prompt ids {repeated} are given more than once: name each once")
        return prompts


class BenchConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run: RunConfig = Field(default_factory=RunConfig)
    method: dict[str, dict[str, Any]] = Field(default_factory=dict)

    def hash(self) -> str:
        """Identity of what gets generated: every setting except where it is written."""
        data = self.model_dump(mode="json")
        data["run"].pop("out")
        data["run"].pop("name")
        data["run"].pop("threads")
        data["run"].pop("references")  # read by scoring only: same samples either way
        for key in ("channels_last", "compile"):  # unset, they leave older hashes as they were
            if not data["run"][key]:
                data["run"].pop(key)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def apply_preset(data: dict[str, Any], preset: str, model: str, prompts: object = None) -> None:
    """`--preset paper`: the paper's Table 1 protocol (presets.py); `sd3` with ImageNet
    prompts takes the class-to-image settings. CC12M's folder comes from `--prompts`."""
    if preset != "paper":
        raise BenchError(f"unknown preset {preset!r}: the only preset is 'paper'")
    from bench.models.presets import CC12M, IMAGENET, paper_preset

    given = data["run"].get("prompts", "") if prompts is None else prompts
    prompts = str(given[0] if isinstance(given, list) and len(given) == 1 else given)
    imagenet = prompts.startswith(IMAGENET)
    settings = paper_preset("sd3-imagenet" if model == "sd3" and imagenet else model)
    if settings["prompts"] == CC12M and not prompts.startswith(CC12M + ":"):
        raise BenchError(
            f"the paper evaluates {model} on its CC12M split (Appendix E): "
            "add --prompts cc12m:DIR:test"
        )
    if settings["prompts"] == IMAGENET:
        data["run"]["prompts"] = prompts if imagenet else IMAGENET
    for key in ("guidance", "steps", "batch_size", "samples"):
        data["run"][key] = settings[key]
    data["run"]["methods"] = list(settings["run_methods"])
    for method, params in settings["methods"].items():
        data.setdefault("method", {}).setdefault(method, {}).update(params)


def apply_model_tables(data: dict[str, Any], model: str, path: Path) -> None:
    """`[models.<model>.method.<name>]` tables: the method settings of one model (method
    parameters are scale-dependent: SPELL's radius on toy2d is not the one on digits).
    The running model's tables update its [method.<name>] tables, key by key; the
    resolved config (config.toml of the run) holds the result, not the tables."""
    tables = data.pop("models", {})
    if not isinstance(tables, dict):
        raise BenchError(f"invalid config {path}: [models] must hold [models.<model>] tables")
    for name, table in tables.items():
        extra = set(table) - {"method"} if isinstance(table, dict) else {"(not a table)"}
        if extra:
            raise BenchError(
                f"invalid config {path}: [models.{name}] takes only method tables, "
                f"got {sorted(extra)}"
            )
    for method, params in tables.get(model, {}).get("method", {}).items():
        data.setdefault("method", {}).setdefault(method, {}).update(params)


def load_config(
    path: Path | None,
    overrides: dict[str, Any] | None = None,
    preset: str | None = None,
    method_flags: dict[str, dict[str, Any]] | None = None,
) -> BenchConfig:
    """Read bench.toml (or the packaged default), apply a preset, then command-line flags:
    `overrides` for [run], `method_flags` for [method.<name>] (None values are unset)."""
    if path is None:
        path = Path("bench.toml") if Path("bench.toml").exists() else DEFAULT_CONFIG
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as err:
            raise BenchError(f"malformed config {path}: {err}") from err
    elif path != DEFAULT_CONFIG:
        raise BenchError(f"config file {path} not found")
    data["run"] = dict(data.get("run", {}))
    flags = {k: v for k, v in (overrides or {}).items() if v is not None}
    model = flags.get("model", data["run"].get("model", "digits"))
    if preset is not None:
        apply_preset(data, preset, model, flags.get("prompts"))
    data["run"].update(flags)
    data["run"].setdefault("name", model.replace(":", "-").replace(".", "-"))
    apply_model_tables(data, model, path)
    for method, params in (method_flags or {}).items():
        given = {
            k: str(v) if isinstance(v, Path) else v for k, v in params.items() if v is not None
        }
        if given:
            data.setdefault("method", {}).setdefault(method, {}).update(given)
    try:
        return BenchConfig(**data)
    except ValidationError as err:
        raise BenchError(f"invalid config {path}: {first_error(err)}") from err
