"""Command-line strings to config values: counts, id lists, dataset specs, thresholds
(one-line errors for what cannot be read)."""

from __future__ import annotations

from bench.errors import BenchError


def parse_samples(value: str | None) -> int | str | None:
    """A count, or "references" (each prompt as many as its reference images)."""
    if value is None or value == "references":
        return value
    try:
        return int(value)
    except ValueError:
        raise BenchError(f"--samples {value!r}: give a count or 'references'") from None


def parse_prompts(spec: str | None):
    """A count, "all", a dataset spec (imagenet, file:PATH, cc12m:DIR) or ids."""
    from bench.data.sets import dataset_spec

    if spec is None:
        return None
    spec = spec.strip()
    if spec.isdigit():
        return int(spec)
    if spec == "all" or dataset_spec(spec):
        return spec
    return [p for p in spec.split(",") if p]


def parse_methods(spec: str | None) -> list[str] | None:
    """`--methods a,b`; given but empty is an error, not "the config's methods"."""
    if spec is None:
        return None
    names = [m.strip() for m in spec.split(",") if m.strip()]
    if not names:
        raise BenchError(
            f"--methods {spec!r} names no method: give e.g. --methods spell (bench list methods)"
        )
    return names


def parse_names(extractors: str | None) -> list[str] | None:
    return extractors.split(",") if extractors else None


def parse_thresholds(text: str | None) -> dict[str, float]:
    """`0.5` (every copy space) or `sscd=0.5,digits=0.998` -> {space or "*": threshold}."""
    out: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        name, _, value = item.rpartition("=")
        try:
            threshold = float(value)
        except ValueError:
            threshold = float("nan")
        if not -1.0 <= threshold <= 1.0:
            raise BenchError(f"bad --copy-threshold {item!r}: a cosine in [-1, 1], e.g. sscd=0.5")
        out[name or "*"] = threshold
    return out
