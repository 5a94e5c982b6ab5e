"""The run directory: the one owner of its layout and of its stage status.

```
RUN/config.toml                          resolved config
RUN/manifest.json                        status, ids, versions, machine, config hash
RUN/samples/<method-id>/method.json      the method-config: id, method, params, defaults
RUN/samples/<method-id>/<prompt>.npz     images, latents, seeds, nfe, traces (byte-stable)
RUN/samples/<method-id>/<prompt>.time.json   wall times (they differ run to run)
RUN/features/<extractor>/...             the feature cache (metrics.cache)
RUN/metrics.json, RUN/metrics.csv        scores
RUN/neighbours.npz                       each sample's nearest protected item, per space
RUN/report/                              figures, grids, tables, index.html
RUN/.lock, RUN/.lock.pid                 held by the command writing the run; its pid
```

A sample file exists only once complete (written to a temporary name, then
renamed, after its time file), so a killed run never leaves a file that reads as
finished; one that cannot be read is moved aside (`<prompt>.npz.corrupt`) so that
`bench generate` makes it again. No other module spells a file name of this layout.
"""

from __future__ import annotations

import errno
import io
import json
import os
import shlex
import shutil
import tomllib
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w
from filelock import FileLock, Timeout

from bench.atomic import atomic_save_npz, atomic_write_text
from bench.environment import git_sha, hardware, is_global_zero, package_versions
from bench.errors import BenchError, EnvironmentFailure

STATUSES = ("generating", "generated", "scoring", "scored", "reported")
_SCORED = ("scored", "reported")
_SAMPLE_SUFFIX = ".npz"
_CORRUPT_SUFFIX = ".corrupt"
_LOCK_NAMES = (".lock", ".lock.pid")
# What a damaged .npz raises when read (truncated, overwritten, not a zip at all).
_UNREADABLE = (ValueError, EOFError, OSError, zipfile.BadZipFile)


def sort_prompt_ids(ids: list[str]) -> list[str]:
    """Numeric ids in numeric order, then the others alphabetically."""
    return sorted(ids, key=lambda s: (0, int(s), s) if s.isdigit() else (1, 0, s))


class RunDir:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    # ------------------------------------------------------------------ paths
    @property
    def config_file(self) -> Path:
        return self.path / "config.toml"

    @property
    def manifest_file(self) -> Path:
        return self.path / "manifest.json"

    @property
    def metrics_file(self) -> Path:
        return self.path / "metrics.json"

    @property
    def metrics_csv_file(self) -> Path:
        return self.path / "metrics.csv"

    @property
    def neighbours_file(self) -> Path:
        return self.path / "neighbours.npz"

    @property
    def samples(self) -> Path:
        return self.path / "samples"

    @property
    def features(self) -> Path:
        return self.path / "features"

    @property
    def report(self) -> Path:
        return self.path / "report"

    @property
    def report_index(self) -> Path:
        return self.report / "index.html"

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    @property
    def lock_file(self) -> Path:
        return self.path / _LOCK_NAMES[0]

    @property
    def holder_file(self) -> Path:
        return self.path / _LOCK_NAMES[1]

    def method_dir(self, method_id: str) -> Path:
        return self.samples / method_id

    def method_file(self, method_id: str) -> Path:
        return self.method_dir(method_id) / "method.json"

    def sample_file(self, method_id: str, prompt_id: str) -> Path:
        return self.method_dir(method_id) / f"{prompt_id}{_SAMPLE_SUFFIX}"

    def time_file(self, method_id: str, prompt_id: str) -> Path:
        return self.method_dir(method_id) / f"{prompt_id}.time.json"

    def sample_files(self) -> list[Path]:
        """Every complete sample file of the run (for freshness checks)."""
        return sorted(self.samples.glob(f"*/*{_SAMPLE_SUFFIX}"))

    # ---------------------------------------------------------------- readers
    def exists(self) -> bool:
        return self.manifest_file.is_file()

    def manifest(self) -> dict[str, Any] | None:
        return _read_json(self.manifest_file)

    def status(self) -> str | None:
        return (self.manifest() or {}).get("status")

    def config(self) -> dict[str, Any]:
        """The resolved config.toml as a dict; a one-line error when it is missing."""
        if not self.config_file.is_file():
            raise BenchError(f"{self.config_file} is missing: is {self.path} a run directory?")
        try:
            return tomllib.loads(self.config_file.read_text())
        except tomllib.TOMLDecodeError as err:
            raise BenchError(f"{self.config_file} is malformed ({err}): regenerate it") from err

    def config_text(self) -> str:
        return self.config_file.read_text() if self.config_file.exists() else ""

    def run_settings(self) -> dict[str, Any]:
        """The `[run]` table of config.toml, empty when there is none."""
        return self.config().get("run", {}) if self.config_file.is_file() else {}

    def model(self) -> str:
        model = self.run_settings().get("model")
        if not isinstance(model, str):
            raise BenchError(f'{self.config_file} has no [run] model = "..." entry')
        return model

    def method_ids(self) -> list[str]:
        """The manifest's order; else every method dir that holds samples, sorted."""
        ids = list((self.manifest() or {}).get("method_ids") or [])
        if ids:
            return ids
        if not self.samples.is_dir():
            return []
        return sorted(p.name for p in self.samples.iterdir() if p.is_dir())

    def sampled_method_ids(self) -> list[str]:
        """Method dirs with at least one complete prompt, sorted by id."""
        if not self.samples.is_dir():
            return []
        dirs = sorted(p for p in self.samples.iterdir() if p.is_dir())
        return [p.name for p in dirs if any(p.glob(f"*{_SAMPLE_SUFFIX}"))]

    def prompt_ids(self) -> list[str]:
        """The manifest's prompts; else every prompt some method has completed."""
        ids = (self.manifest() or {}).get("prompt_ids")
        if ids:
            return [str(p) for p in ids]
        found = {p for m in self.method_ids() for p in self.complete_prompt_ids(m)}
        return sorted(found)

    def complete_prompt_ids(self, method_id: str) -> list[str]:
        files = self.method_dir(method_id).glob(f"*{_SAMPLE_SUFFIX}")
        return sort_prompt_ids([p.name.removesuffix(_SAMPLE_SUFFIX) for p in files])

    def is_complete(self, method_id: str, prompt_id: str) -> bool:
        return self.sample_file(method_id, prompt_id).exists()

    def method_info(self, method_id: str) -> dict[str, Any]:
        return _read_json(self.method_file(method_id)) or {}

    def sample_bytes(self, method_id: str, prompt_id: str) -> bytes:
        return self.sample_file(method_id, prompt_id).read_bytes()

    def read_prompt(
        self, method_id: str, prompt_id: str, keys: tuple[str, ...] | None = None
    ) -> tuple[bytes, dict[str, np.ndarray]]:
        """The sample file's bytes and its arrays (only `keys` that are present, when
        given). A file that cannot be read is moved aside and reported, one line."""
        data = self.sample_bytes(method_id, prompt_id)
        try:
            return data, load_npz_bytes(data, keys)
        except _UNREADABLE as err:
            raise self._set_aside(method_id, prompt_id, err) from err

    def load_samples(
        self, method_id: str, prompt_id: str, keys: tuple[str, ...] | None = None
    ) -> dict[str, np.ndarray]:
        """The prompt's arrays (only `keys` that are present, when given)."""
        return self.read_prompt(method_id, prompt_id, keys)[1]

    def wall_times(self, method_id: str, prompt_id: str) -> list[float] | None:
        """Seconds per image; None when the time file is absent."""
        times = _read_json(self.time_file(method_id, prompt_id))
        return None if times is None else list(times.get("seconds_per_image", []))

    def read_neighbours(self) -> dict[str, np.ndarray]:
        """The scorer's nearest protected items (empty without a protected set)."""
        if not self.neighbours_file.exists():
            return {}
        with np.load(self.neighbours_file, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}

    def metrics(self) -> dict[str, Any] | None:
        return _read_json(self.metrics_file)

    def generated_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of the run's generated images (the first sample file found)."""
        for path in self.sample_files():
            images = self.load_samples(path.parent.name, path.stem, ("images",)).get("images")
            if images is not None:
                return tuple(images.shape[1:4])
        raise BenchError(f"no generated samples under {self.samples}: run `bench generate` first")

    # ------------------------------------------------------------ stage status
    def missing_prompts(self) -> dict[str, list[str]]:
        """Per method-config of the run, the run's prompts not on disk (empty: complete)."""
        prompts = self.prompt_ids()
        missing = {}
        for method_id in self.method_ids():
            done = set(self.complete_prompt_ids(method_id))
            lacking = [p for p in prompts if p not in done]
            if lacking:
                missing[method_id] = lacking
        return missing

    def progress(self) -> tuple[int, int]:
        """(complete, planned) (method-config, prompt) items."""
        planned = len(self.method_ids()) * len(self.prompt_ids())
        return planned - sum(len(p) for p in self.missing_prompts().values()), planned

    def generate_command(self) -> str:
        """The command that completes this run's generation, from any directory."""
        args = ["--config", self.config_file, "--out", self.path.parent, "--name", self.path.name]
        return "bench generate " + " ".join(shlex.quote(str(a)) for a in args)

    def is_generated(self, config_hash: str) -> bool:
        """Every (method-config, prompt) of that config is on disk and the manifest says so."""
        manifest = self.manifest()
        if manifest is None or manifest.get("config_hash") != config_hash:
            return False
        if manifest.get("status") not in STATUSES[1:]:
            return False
        ids, prompts = manifest.get("method_ids") or [], manifest.get("prompt_ids") or []
        return bool(ids and prompts) and all(self.is_complete(m, p) for m in ids for p in prompts)

    def is_scored(self) -> bool:
        """The manifest says scored, metrics.json covers every method-config and is newer
        than every sample file."""
        if self.status() not in _SCORED:
            return False
        try:
            results = (self.metrics() or {}).get("results") or []
            scored = {r["method_id"] for r in results}
        except (BenchError, KeyError, TypeError):
            return False
        wanted = set((self.manifest() or {}).get("method_ids") or [])
        newest = max((p.stat().st_mtime for p in self.sample_files()), default=0.0)
        return bool(scored) and wanted <= scored and self.metrics_file.stat().st_mtime >= newest

    def is_reported(self) -> bool:
        index, metrics = self.report_index, self.metrics_file
        return (
            index.is_file()
            and metrics.is_file()
            and index.stat().st_mtime >= metrics.stat().st_mtime
        )

    # ---------------------------------------------------------------- writers
    @contextmanager
    def lock(self, create: bool = False) -> Iterator[None]:
        """Hold the run directory (re-entrant within a process) while writing it; another
        command on it fails at once, naming this one's pid. Only the launching process
        (rank 0) takes it: the ranks it starts write under its hold."""
        if not is_global_zero():
            yield
            return
        if create:
            self.path.mkdir(parents=True, exist_ok=True)
        elif not self.path.is_dir():
            raise BenchError(f"{self.path} is not a run directory: run `bench generate` first")
        lock = FileLock(self.lock_file.resolve(), is_singleton=True, blocking=False)
        try:
            lock.acquire()
        except Timeout:
            raise EnvironmentFailure(
                f"{self.path} is in use by another bench command (pid {self._holder()}); "
                "wait for it to finish or stop it, then rerun"
            ) from None
        try:
            if lock.lock_counter == 1:
                atomic_write_text(self.holder_file, f"{os.getpid()}\n")
            yield
        finally:
            if lock.lock_counter == 1:
                self.holder_file.unlink(missing_ok=True)
            lock.release()

    def preflight(self) -> None:
        """Fail now, not after a model has loaded, when the run cannot be written here (a
        file where a folder should be, a read-only or unwritable folder) or is held by
        another command. Creates nothing (an existing lock is only tried)."""
        found = self.path
        while not found.exists() and found != found.parent:
            found = found.parent
        if not found.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(self.path))
        if not os.access(found, os.W_OK | os.X_OK):
            read_only = os.statvfs(found).f_flag & os.ST_RDONLY
            code = errno.EROFS if read_only else errno.EACCES
            raise OSError(code, os.strerror(code), str(found))
        if self.lock_file.exists():
            with self.lock():
                pass

    def _holder(self) -> str:
        try:
            return self.holder_file.read_text().strip() or "unknown"
        except OSError:
            return "unknown"

    def prepare(self, config: Any, force: bool = False) -> None:
        """Create the directory, or check an existing one was made by the same config."""
        old = self.manifest()
        if old is not None and old.get("config_hash") != config.hash():
            if not force:
                raise BenchError(
                    f"{self.path} holds a run with another config (hash {old.get('config_hash')}); "
                    "use another --name, or --force to start it afresh"
                )
            self._clear()
        self.path.mkdir(parents=True, exist_ok=True)
        for stale in self.samples.glob("*/.*.tmp"):  # left by a killed run
            stale.unlink()
        config_text = tomli_w.dumps(config.model_dump(mode="json", exclude_none=True))
        atomic_write_text(self.config_file, config_text)

    def write_manifest(self, config: Any, status: str, **extra: Any) -> None:
        manifest = {
            "status": status,
            "config_hash": config.hash(),
            "seed": config.run.seed,
            "threads": config.run.threads,
            "git_sha": git_sha(),
            "versions": package_versions(),
            "hardware": hardware(config.run.device),
            "updated": _now(),
            **extra,
        }
        atomic_write_text(self.manifest_file, json.dumps(manifest, indent=2))

    def _clear(self) -> None:
        """Remove everything but the lock (held by this command)."""
        for child in self.path.iterdir():
            if child.name in _LOCK_NAMES:
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()

    def set_status(self, status: str, **extra: Any) -> None:
        """Record what the directory now holds (generating ... reported)."""
        if status not in STATUSES:
            raise ValueError(f"unknown run status {status!r}")
        manifest = self.manifest()
        if manifest is None:
            return
        manifest.update(status=status, updated=_now(), **extra)
        atomic_write_text(self.manifest_file, json.dumps(manifest, indent=2))

    def _set_aside(self, method_id: str, prompt_id: str, err: Exception) -> BenchError:
        """Move an unreadable sample file aside (nothing is lost) so generation redoes it."""
        path = self.sample_file(method_id, prompt_id)
        aside = path.with_name(path.name + _CORRUPT_SUFFIX)
        n = 1
        while aside.exists():  # an earlier one stays too
            aside, n = path.with_name(f"{path.name}{_CORRUPT_SUFFIX}{n}"), n + 1
        os.replace(path, aside)
        self.set_status("generating")
        return BenchError(
            f"{path} is truncated or corrupt ({type(err).__name__}); moved it aside to "
            f"{aside.name}: run `{self.generate_command()}` to generate it again"
        )

    def write_method_info(self, method_id: str, info: dict[str, Any]) -> None:
        atomic_write_text(self.method_file(method_id), json.dumps(info, indent=2))

    def save_prompt(self, method_id: str, prompt_id: str, arrays: dict[str, np.ndarray]) -> None:
        """Wall times go beside the samples (they differ run to run); the .npz holds only
        what is reproducible, byte for byte, and is written last: it marks completion."""
        arrays = dict(arrays)
        seconds = arrays.pop("seconds")
        times = {"seconds_per_image": [round(float(x), 6) for x in seconds]}
        atomic_write_text(self.time_file(method_id, prompt_id), json.dumps(times))
        atomic_save_npz(self.sample_file(method_id, prompt_id), arrays)

    def write_neighbours(self, arrays: dict[str, np.ndarray]) -> None:
        """Written before metrics.json; an empty dict removes a stale file."""
        if arrays:
            atomic_save_npz(self.neighbours_file, arrays)
        else:
            self.neighbours_file.unlink(missing_ok=True)

    def write_metrics(self, json_text: str, csv_text: str, partial: bool = False) -> None:
        """The pair is one result: the manifest says `scoring` while either file may be
        from another pass, and `scored` (written last) once both agree. Scores of an
        unfinished generation (`partial`) leave the run `generating`."""
        self.set_status("scoring")
        atomic_write_text(self.metrics_csv_file, csv_text)
        atomic_write_text(self.metrics_file, json_text)
        self.set_status("generating" if partial else "scored", partial_metrics=partial)


def load_npz_bytes(data: bytes, keys: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as f:
        names = f.files if keys is None else [k for k in keys if k in f.files]
        return {k: f[k] for k in names}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise BenchError(
            f"{path} is not valid JSON ({err}); rerun the stage that writes it"
        ) from err
