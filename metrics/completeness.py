"""Which prompts `bench score` scores: every prompt of a finished generation, or, with
`--partial`, only the prompts that every method-config has finished, so that each
comparison stays paired (same prompts, same seeds). An unfinished run is refused."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.errors import BenchError
from bench.run_dir import RunDir

_SHOWN = 3  # method-configs and prompt ids named in an error line


@dataclass(frozen=True)
class ScoringScope:
    """The prompts to score; `missing` (per method-config) is empty for a finished run."""

    prompt_ids: list[str]
    missing: dict[str, list[str]] = field(default_factory=dict)

    @property
    def partial(self) -> bool:
        return bool(self.missing)

    def record(self) -> dict:
        """What metrics.json says of it: `partial`, the prompts used, what was missing."""
        out: dict = {"partial": self.partial, "prompts": self.prompt_ids}
        if self.partial:
            out["missing"] = self.missing
        return out


def scoring_scope(run: RunDir, partial: bool = False) -> ScoringScope:
    """Every prompt of a finished run; else a one-line error, or with `partial` the
    prompts complete for every method-config."""
    missing = run.missing_prompts()
    prompts = run.prompt_ids()
    if not missing:
        return ScoringScope(prompts)
    if not partial:
        raise BenchError(
            f"{_incomplete(run, missing)}; finish it with `{run.generate_command()}`, or score "
            f"the prompts every method has finished with `bench score {run.path} --partial`"
        )
    lacking = {p for ids in missing.values() for p in ids}
    paired = [p for p in prompts if p not in lacking]
    if not paired:
        raise BenchError(
            f"{_incomplete(run, missing)}, and no prompt is complete for every method-config; "
            f"finish it with `{run.generate_command()}`"
        )
    return ScoringScope(paired, missing)


def _incomplete(run: RunDir, missing: dict[str, list[str]]) -> str:
    done, planned = run.progress()
    named = [f"{m} lacks prompts {_ids(ids)}" for m, ids in list(missing.items())[:_SHOWN]]
    more = f" and {len(missing) - _SHOWN} more" if len(missing) > _SHOWN else ""
    return (
        f"the generation of {run.path} is unfinished ({done} of {planned} prompt items): "
        f"{'; '.join(named)}{more}"
    )


def _ids(ids: list[str]) -> str:
    shown = ", ".join(ids[:_SHOWN])
    return shown + (f" (+{len(ids) - _SHOWN})" if len(ids) > _SHOWN else "")
