"""What a book chapter needs besides narrative: validated parameters, data, and missing runs.

Each chapter's papermill ``parameters`` cell is passed to :func:`setup`, which fails at once
with a clear message on invalid input. ``MDMTN_DEVICE`` (auto, cpu, cuda[:N]) is where a chapter
trains missing runs. ``MDMTN_BOOK_PRESET`` overrides the preset (CI executes
every chapter with ``MDMTN_BOOK_PRESET=smoke``). Records live in ``results/<preset>/``; the
``quick`` ones are committed, so the book renders without training.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from mdmtn.core.config import DATASETS, PRESETS, ConfigError, RunConfig, env_flag, make_config, shorten, validate_k
from mdmtn.records.schema import RunRecord

REPO_ROOT = Path(__file__).resolve().parents[2]
ENV_SYNTHETIC = "MDMTN_BOOK_ALLOW_SYNTHETIC"


def resolve_data_dir(data_dir: str | None) -> str | None:
    """``data_dir`` (else ``$MDMTN_DATA``) with a relative path taken relative to where the user
    ran the command (``$PWD``: the repository root for ``jupyter-book build .``), not to the
    folder the notebook executes in (``book/``)."""
    from mdmtn.data.sources import data_root

    d = data_root(data_dir)
    if d is None or Path(d).expanduser().is_absolute():
        return d
    base = Path(os.environ.get("PWD") or os.getcwd())
    return str((base / Path(d).expanduser()).resolve())


# k trained by a smoke-preset chapter when none is given, so CI exercises the training path.
SMOKE_K = (0.01, 0.5, 0.49)


@dataclass
class Chapter:
    """Validated chapter parameters and where its records live."""

    dataset: str
    preset: str
    seeds: list[int]
    k: tuple[float, ...] | None
    data_dir: str | None
    results_dir: Path
    notes: list[str] = field(default_factory=list)
    _splits: dict = field(default_factory=dict, repr=False)
    _synthetic: bool = field(default=False, repr=False)  # some splits fell back to synthetic data
    _unverified: bool = field(default=False, repr=False)  # CIFAR-10 loaded without its md5 check (noted)

    @property
    def records_dir(self) -> Path:
        return self.results_dir / self.preset

    def note(self, text: str) -> None:
        """Add a note for the page (each one once)."""
        if text not in self.notes:
            self.notes.append(text)

    def splits(self, dataset: str | None = None, allow_synthetic: bool = False):
        """The dataset's splits from ``data_dir`` / ``MDMTN_DATA``. When no real data is found the
        page fails with the loader's message, unless synthetic data were asked for explicitly
        (``MDMTN_BOOK_ALLOW_SYNTHETIC=1``, as CI sets without data): then tiny synthetic data
        written through the same loading code is used, and the page says so once.
        ``allow_synthetic`` is accepted for older notebooks and changes nothing."""
        from mdmtn.data import DatasetError, UnverifiedDataError, load_splits
        from mdmtn.data.synthetic import write_all

        name = dataset or self.dataset
        if name not in self._splits:
            try:
                try:
                    self._splits[name] = load_splits(name, self.data_dir)
                except UnverifiedDataError:  # rebuilt CIFAR-10 pickles: load them, and say so on the page
                    self._splits[name] = load_splits(name, self.data_dir, allow_unverified_cifar=True)
                    self._unverified = True
                    self.note(
                        "The CIFAR-10 files used here fail torchvision's md5 check (a rebuilt copy), "
                        "so they were loaded with that check skipped (allow_unverified_cifar), "
                        "each batch through a restricted unpickler; the sha256 of the inputs is "
                        f"{self._splits[name].info['input_sha256'][:16]}… (in every run record)."
                    )
            except UnverifiedDataError:
                raise
            except DatasetError as e:
                if not env_flag(ENV_SYNTHETIC):
                    raise DatasetError(
                        f"{e} (This page needs the real data; to build it on tiny synthetic data "
                        f"instead, set {ENV_SYNTHETIC}=1.)"
                    ) from None
                root = write_all(Path(tempfile.mkdtemp(prefix="mdmtn-synthetic-")))
                self._synthetic = True
                self.note(
                    f"No real data found and {ENV_SYNTHETIC}=1: this page was built on tiny SYNTHETIC data "
                    f"({self.preset} preset); its pictures and any runs trained here are not MNIST / CIFAR-10."
                )
                self._splits[name] = load_splits(name, root, allow_unverified_cifar=True, allow_unverified_mnist=True)
        return self._splits[name]

    def config(self, model: str, k: Sequence[float], seed: int = 0, dataset: str | None = None, **kw: Any) -> RunConfig:
        return make_config(dataset or self.dataset, model, k, self.preset, seed, **kw)

    @property
    def synthetic(self) -> bool:
        """Whether some data on this page are the synthetic stand-in (see :meth:`splits`)."""
        return self._synthetic

    @property
    def trains(self) -> bool:
        """Whether this execution may train missing runs: only when the reader asked for a ``k``
        or at the smoke preset; a plain build only shows what the records hold."""
        return self.k is not None or self.preset == "smoke"

    @property
    def workers(self) -> int:
        """Processes :meth:`ensure` trains with: ``MDMTN_BOOK_WORKERS`` if set, else one per 2
        cores (at most 2) beyond the smoke preset, where process start-up would outweigh the runs.
        Two 1-thread workers run a sweep in 0.73x the time of one 2-thread process on a 2-core
        CPU (benchmarks/README.md)."""
        env = os.environ.get("MDMTN_BOOK_WORKERS")
        if env:
            try:
                n = int(env)
            except ValueError:
                n = 0
            if not 1 <= n <= 64:
                raise ConfigError(f"environment variable MDMTN_BOOK_WORKERS={env!r}: expected an integer from 1 to 64")
            return n
        return 1 if self.preset == "smoke" else max(1, min(2, os.cpu_count() or 1))

    def ensure(self, cfgs: Sequence[RunConfig]) -> list[RunRecord]:
        """Train the configs that have no record yet in :attr:`records_dir` (resumable) and return
        all their records; if this execution may not train (:attr:`trains`), only the existing."""
        from mdmtn.data import SplitsLoader
        from mdmtn.experiments.sweep import run_sweep
        from mdmtn.records.store import find_record

        if not self.trains:
            return [r for r in (find_record(self.records_dir, c) for c in cfgs) if r is not None]
        workers = self.workers
        if workers > 1:
            for name in {c.dataset for c in cfgs}:  # resolve real or synthetic data here, once
                self.splits(name)
            if self._synthetic:  # worker processes load real data only: train the tiny runs here
                workers = 1
        load: Any = (
            SplitsLoader(self.data_dir, allow_unverified_cifar=self._unverified)
            if workers > 1
            else lambda c: self.splits(c.dataset)
        )
        return run_sweep(
            cfgs,
            self.records_dir,
            load,
            checkpoints=True,
            progress=False,
            log=lambda s: None,
            workers=workers,
            device=os.environ.get("MDMTN_DEVICE", "cpu"),
        )

    def ensure_joint(self, jcs: Sequence[Any]) -> list[RunRecord]:
        """Joint (MT2O-v / independent) records of ``jcs`` from ``records_dir/mt2o``, solving the
        missing ones when this execution may train (as :meth:`ensure`)."""
        from mdmtn.experiments.joint_runs import find_joint_record, run_joint

        out = self.records_dir / "mt2o"
        if not self.trains:
            return [r for r in (find_joint_record(out, jc) for jc in jcs) if r is not None]
        return run_joint(jcs, out, lambda c: self.splits(c.dataset), progress=False, log=lambda s: None)


def check_book_environment() -> None:
    """The book's environment variables, checked where a chapter starts, each named in its own
    one-line error: ``MDMTN_BOOK_PRESET`` (a preset), ``MDMTN_BOOK_ALLOW_SYNTHETIC`` (on / off),
    ``MDMTN_DEVICE`` (a device this machine has)."""
    preset = os.environ.get("MDMTN_BOOK_PRESET")
    if preset not in (None, "") and preset not in PRESETS:
        raise ConfigError(f"environment variable MDMTN_BOOK_PRESET={shorten(preset, 40)!r}: expected one of {PRESETS}")
    env_flag(ENV_SYNTHETIC)
    device = os.environ.get("MDMTN_DEVICE")
    if device not in (None, ""):
        from mdmtn.records.machine import resolve_device

        try:
            resolve_device(device)
        except ConfigError as e:
            raise ConfigError(f"environment variable MDMTN_DEVICE: {e}") from None


def setup(
    *,
    dataset: str = "multimnist",
    preset: str = "quick",
    seeds: Sequence[int] = (0,),
    k: Sequence[float] | None = None,
    data_dir: str | None = None,
    results_dir: str | os.PathLike | None = None,
    dense_k: bool = False,
) -> Chapter:
    """Validate a chapter's parameters; raises :class:`ConfigError` saying what to fix. ``dense_k``:
    the chapter's ``k`` joins a set of k0 = 0 vectors (chapter 10's joint set), so k0 must be 0."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    # affinity propagation rarely converges on these layers (recorded behaviour of the method);
    # its per-layer warnings would drown the pages
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    check_book_environment()
    preset = os.environ.get("MDMTN_BOOK_PRESET") or preset
    if dataset not in DATASETS:
        raise ConfigError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    if preset not in PRESETS:
        raise ConfigError(f"preset must be one of {PRESETS}, got {preset!r}")
    if isinstance(seeds, str):  # papermill -p seeds "[0, 1, 2]", as k
        import json

        try:
            seeds = json.loads(seeds)
        except json.JSONDecodeError as e:
            raise ConfigError(f'seeds must be a list like "[0, 1, 2]", got {seeds!r}') from e
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = [seeds]
    try:
        if any(isinstance(s, bool) or float(s) != int(s) or int(s) < 0 for s in seeds):
            raise ValueError
        seeds = list(dict.fromkeys(int(s) for s in seeds))
    except (TypeError, ValueError, OverflowError) as e:  # 1e999 from papermill's JSON is inf
        raise ConfigError(f"seeds must be a list of integers >= 0, e.g. [0, 1, 2]; got {shorten(repr(seeds))}") from e
    if not seeds:
        raise ConfigError("seeds must not be empty")
    if isinstance(k, str):
        import json

        try:
            k = json.loads(k)
        except json.JSONDecodeError as e:
            raise ConfigError(f'k must be a list like "[0.01, 0.8, 0.19]", got {k!r}') from e
    k = None if k is None else validate_k(k)
    if dense_k and k is not None and k[0] != 0:
        raise ConfigError(
            f"k = {list(k)} has k0 > 0, but this chapter's joint set is dense (k0 = 0, one schedule for all): "
            f"give k0 = 0, e.g. [0, {k[1]:g}, {1 - k[1]:g}]"
        )
    if k is None and preset == "smoke":
        k = SMOKE_K
    results = Path(results_dir) if results_dir is not None else REPO_ROOT / "results"
    return Chapter(dataset, preset, seeds, k, resolve_data_dir(data_dir), results)


# what the chapters publish for download: Sphinx copies this folder to the site's root
# (html_extra_path in _config.yml), so files/<name> sits beside book/ in _build/html. The folder is
# in the repository (files/.gitkeep; its other files are ignored): Sphinx drops an html_extra_path
# that does not exist when the build starts, before any chapter has published anything, and a
# fresh clone's `jupyter-book build .` then had download links that led nowhere
BOOK_FILES = REPO_ROOT / "book" / "_published"


def publish(name: str, text: str) -> str:
    """Write ``text`` as the book's downloadable ``files/<name>`` (atomically: a reader never gets
    half a file) and return the link a chapter page (``book/*.html``) uses for it."""
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"a published file needs a plain name, got {name!r}")
    from mdmtn.core.files import atomic_write

    data = text.encode("utf-8")
    atomic_write(BOOK_FILES / "files" / name, lambda f: f.write(data))
    return f"../files/{name}"


def provenance_line(what: str, keys: Sequence[str], records: Sequence[RunRecord]) -> None:
    """Display, under a table or figure, how many run records it reads, the commits that made
    them, and a link to the list of their keys (published beside the page)."""
    import hashlib
    import html

    from IPython.display import HTML, display

    from mdmtn.study.verdict_table import provenance

    p = provenance(keys, records)
    listing = "\n".join(p["keys"]) + "\n"
    name = f"keys-{hashlib.sha256(listing.encode()).hexdigest()[:12]}.txt"
    href = publish(name, listing)
    commits = p["commits"]
    made = (
        f"commit {commits[0]}"
        if len(commits) == 1
        else f"{len(commits)} commits ({', '.join(commits[:3])}{', ...' if len(commits) > 3 else ''})"
    )
    display(
        HTML(
            f'<p class="mdmtn-provenance"><small>{html.escape(what)}: reads {p["n"]} run records, made at '
            f'{html.escape(made)}; <a href="{href}">their keys</a>.</small></p>'
        )
    )


def show(fig: Any) -> None:
    """Display a matplotlib figure here, at this point of the cell's output, and close it, so that
    a figure appears under the heading and before the text that follows it, not at the cell's end."""
    import matplotlib.pyplot as plt
    from IPython.display import display

    display(fig)
    plt.close(fig)
