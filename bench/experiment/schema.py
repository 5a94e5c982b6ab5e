"""The experiment file: a bench.toml (`[run]`, `[method.*]`) plus the experiment's own
sections, checked with pydantic, and the per-seed BenchConfigs it stands for.

    [experiment]  name, seeds, out (run directories), results (the markdown page),
                  figures (default: the page's path without .md), sparsity_seed,
                  method (the method under test, default "spell"), baseline ("none"),
                  default (its config id in Table 1; `spell_default` is the old name)
                  metrics (the keys the tables show), run_reports ("all" or "first")
    [protection]  radius (r of the protection rate), split ("train"), images (the
                  protected images: a dataset of `bench protect build` or a folder;
                  default "digits-<split>"; or "toy2d-train" with count: that many of
                  the toy2d training points), and [protection.<method>]: the config of
                  the method under test that repels from them
    [claims]      the thresholds of the verdicts on the paper's claims, the metric keys
                  each claim reads, and the paired test (significance, test)

Relative paths in [experiment] are relative to the experiment file's folder.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bench.config import BenchConfig, first_error
from bench.errors import BenchError

from .stats import TestName


class ExperimentSection(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)

    name: str | None = Field(None, min_length=1, description="default: the file's stem")
    seeds: list[int] = Field(min_length=1)
    out: Path = Path("runs")
    results: Path | None = Field(None, description="the markdown page (default: <out>/<name>.md)")
    figures: Path | None = Field(None, description="PNG folder (default: results without .md)")
    sparsity_seed: int | None = Field(None, description="the seed run of Figure 5")
    method: str = Field("spell", min_length=1, description="the method under test")
    label: str | None = Field(None, description="its name on the page (default: upper case)")
    baseline: str = Field("none", min_length=1, description="the method it is compared with")
    default: str | None = Field(
        None, alias="spell_default", description="the tested method's config id in Table 1"
    )
    sized_for: str | None = Field(None, description="what the reduced protocol was sized for")
    metrics: list[str] | None = Field(
        None, min_length=1, description="the metric keys the tables show (default: all)"
    )
    run_reports: Literal["all", "first"] = Field(
        "all", description="per-run HTML reports: every run, or the first seed's runs only"
    )

    @field_validator("seeds")
    @classmethod
    def _unique(cls, seeds: list[int]) -> list[int]:
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must be distinct, got {seeds}")
        return seeds


TOY2D_TRAIN = "toy2d-train"


class ProtectionSection(BaseModel):
    """Its one sub-table, named after the method under test, is that method's config."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    split: Literal["train"] = "train"
    radius: float = Field(gt=0, description="r of the protection rate (L2, model space)")
    images: str | None = Field(
        None, description="default: digits-<split>; toy2d-train: the toy2d training points"
    )
    count: int | None = Field(
        None, gt=0, description="toy2d-train: protect a seeded, class-balanced subset of this size"
    )
    subset_seed: int = Field(0, description="the seed of that subset")

    @property
    def source(self) -> str:
        return self.images or f"digits-{self.split}"

    @property
    def points(self) -> bool:
        """The protected set is points of the toy2d training set, not images."""
        return self.source == TOY2D_TRAIN

    @property
    def store_name(self) -> str:
        """The stored shield set's folder name in the experiment's folder."""
        name = Path(self.source).name
        return f"{name}-{self.count}-s{self.subset_seed}" if self.points else name

    def check(self) -> None:
        if self.points != (self.count is not None):
            raise ValueError(f"[protection] count goes with images = {TOY2D_TRAIN!r}, and only")

    def method_params(self, method: str) -> dict[str, Any]:
        extra = dict(self.model_extra or {})
        unknown = sorted(set(extra) - {method})
        if unknown or not isinstance(extra.get(method, {}), dict):
            raise ValueError(f"[protection] has {unknown or [method]}: only [protection.{method}]")
        return dict(extra.get(method, {}))


class ClaimsSection(BaseModel):
    """The thresholds of the verdicts, the metric keys each claim reads (defaults: the
    digits experiment's), and the paired test over seeds (`significance`: unset, a
    verdict compares the seed means, as on the digits page)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    precision_cost: float = Field(0.05, ge=0, description="largest 'small' relative drop")
    time_tolerance: float = Field(0.05, ge=0, description="'within a few %' of none")
    sparse_share: float = Field(0.5, gt=0, le=1, description="max share of corrected steps")
    sparse_ratio: float = Field(0.1, gt=0, description="max median correction/score ratio")
    early_t: float = Field(0.5, gt=0, lt=1, description="'early' means t >= early_t")
    diversity: list[str] = Field(
        ["recall", "vendi", "coverage"], min_length=1, description="Table 1's diversity keys"
    )
    quality: str = Field("precision", description="the quality key of Tables 1, 2, Figure 3")
    context: list[str] = Field(
        default_factory=list, description="keys Table 1's claim reports without deciding on"
    )
    sweep_diversity: str = Field("vendi", description="Figure 3's diversity key")
    fronts: list[tuple[str, str]] | None = Field(
        None, description="Figure 4's (x, y) pairs (default: reports.axes.pareto_pairs)"
    )
    significance: float | None = Field(
        None, gt=0, lt=1, description="a verdict needs the paired test's p below this"
    )
    test: TestName = Field("sign", description="the paired test: sign or bootstrap")

    def keys(self) -> list[str]:
        """Every metric key a claim reads."""
        pairs = [k for pair in self.fronts or [] for k in pair]
        return [*self.diversity, self.quality, *self.context, self.sweep_diversity, *pairs]


class ExperimentFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    experiment: ExperimentSection
    protection: ProtectionSection | None = None
    claims: ClaimsSection = Field(default_factory=ClaimsSection)
    run: dict[str, Any] = Field(default_factory=dict)
    method: dict[str, dict[str, Any]] = Field(default_factory=dict)


@dataclass
class Experiment:
    """A checked experiment file and where its outputs go."""

    name: str
    source: Path
    spec: ExperimentFile
    out: Path
    results: Path
    figures: Path

    @property
    def seeds(self) -> list[int]:
        return self.spec.experiment.seeds

    @property
    def method(self) -> str:
        return self.spec.experiment.method

    @property
    def baseline(self) -> str:
        return self.spec.experiment.baseline

    @property
    def label(self) -> str:
        return self.spec.experiment.label or self.method.upper()

    @property
    def folder(self) -> Path:
        """The experiment's own files: the stored shield set and the stage log."""
        return self.out / self.name

    @property
    def shield_path(self) -> Path:
        assert self.spec.protection is not None
        return self.folder / self.spec.protection.store_name

    def seed_config(self, seed: int) -> BenchConfig:
        return self._config(f"{self.name}-seed{seed}", seed, self.spec.run, self.spec.method)

    def protection_config(self, seed: int) -> BenchConfig:
        """The baseline and the tested method repelling from the stored protected set."""
        protection = self.spec.protection
        assert protection is not None
        run = {**self.spec.run, "methods": [self.baseline, self.method]}
        params = {
            **protection.method_params(self.method),
            "protect": str(self.shield_path.resolve()),
        }
        return self._config(f"{self.name}-protect-seed{seed}", seed, run, {self.method: params})

    def configs(self, seed: int) -> list[BenchConfig]:
        """The runs of one seed: the main run, then the protection run if any."""
        found = [self.seed_config(seed)]
        if self.spec.protection is not None:
            found.append(self.protection_config(seed))
        return found

    def _config(self, name: str, seed: int, run: dict, method: dict) -> BenchConfig:
        data = {"run": {**run, "name": name, "seed": seed, "out": str(self.out)}, "method": method}
        try:
            return BenchConfig(**data)
        except ValidationError as err:
            raise BenchError(f"invalid experiment {self.source}: {first_error(err)}") from err


def _resolve(base: Path, path: Path) -> Path:
    return (path if path.is_absolute() else base / path).resolve()


def read_file(path: Path) -> ExperimentFile:
    """Parse and validate; every problem is a one-line BenchError."""
    if not path.is_file():
        raise BenchError(f"experiment file {path} not found")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise BenchError(f"malformed experiment file {path}: {err}") from err
    for key in ("name", "seed", "out"):
        if key in data.get("run", {}):
            raise BenchError(
                f"{path}: [run] {key} is set by the experiment; use [experiment] "
                f"{'seeds' if key == 'seed' else key} instead"
            )
    try:
        spec = ExperimentFile(**data)
        if spec.protection is not None:
            spec.protection.method_params(spec.experiment.method)
            spec.protection.check()
    except (ValidationError, ValueError) as err:
        where = first_error(err) if isinstance(err, ValidationError) else str(err)
        raise BenchError(f"invalid experiment {path}: {where}") from err
    return spec


def load_experiment(path: Path, out: Path | None = None) -> Experiment:
    """Read and check an experiment file; `out` replaces [experiment] out."""
    from bench.generate import select_methods

    path = Path(path)
    spec = read_file(path)
    section = spec.experiment
    base = path.resolve().parent
    name = section.name or path.stem
    out_dir = Path(out) if out is not None else _resolve(base, section.out)
    results = _resolve(base, section.results) if section.results else out_dir / f"{name}.md"
    figures = _resolve(base, section.figures) if section.figures else results.with_suffix("")
    if section.sparsity_seed is not None and section.sparsity_seed not in section.seeds:
        raise BenchError(f"{path}: sparsity_seed {section.sparsity_seed} is not one of the seeds")
    exp = Experiment(name, path, spec, out_dir, results, figures)
    # Fail early, before any run: a bad [run], [method.*] or [protection.<method>].
    for config in exp.configs(section.seeds[0]):
        select_methods(config)
    return exp
