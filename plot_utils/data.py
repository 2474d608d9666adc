"""Finished runs (local run directories, W&B, an exported CSV, or the shipped example) as one tidy table.

Columns: model, game, seed, step, metric, value (one row per logged value), plus the run's metadata
run, encoder, scale, distribution_mode, track, exp_name. W&B exports are cached to disk as CSV so that
re-plotting needs no network. The example (`load_example`, source "example") is OpenAI's published PPO runs.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import math
import re
import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from impoola import reference_curves
from impoola.envs.games import DISTRIBUTION_MODES, GAMES, normalized_score
from impoola.models.encoders import ENCODERS
from impoola.run.rundir import METRICS_FILE, RunDir
from plot_utils import published

COLUMNS = ("model", "game", "seed", "step", "metric", "value")
META_COLUMNS = ("run", "encoder", "scale", "distribution_mode", "track", "exp_name")
DTYPES = {
    "model": "string", "game": "string", "seed": "Int64", "step": "int64", "metric": "string", "value": "float64",
    "run": "string", "encoder": "string", "scale": "float64", "distribution_mode": "string", "track": "string",
    "exp_name": "string",
}
DEFAULT_METRICS = (
    "scores/*", "charts/total_network_params", "dormant_neurons/dormant_fraction", "dormant_neurons/zero_fraction",
)
PARAMS_METRIC = "charts/total_network_params"
# A normalized key a run did not log is computed from its raw return key with the package constants.
NORMALIZED_FROM_RAW = {
    "scores/normalized_score_train": "scores/eval_avg_return_train",
    "scores/normalized_score_test": "scores/eval_avg_return_test",
    "charts/episodic_return_normalized": "charts/episodic_return",
}
DEFAULT_LABEL_KEYS = ("model_name",)
DEFAULT_CACHE_DIR = ".plot_cache"
EXAMPLE_SOURCE = "example"
EXAMPLE_MODEL = "impala_s1 (train-procgen)"
EXAMPLE_EXP_NAME = "train-procgen"
EXAMPLE_EVERY = 16  # of the published updates, keep 1, 17, 33, ... (about 100 points per 25M-step curve)
_MODEL_TAG = re.compile(rf"^(?:{'|'.join(map(re.escape, ENCODERS))})_(?:s\d+(?:\.\d+)?|f[\d-]+)(?:_[\w.-]+)?$")
_ENV_ID = re.compile(r"^(?:procgen[-:])?([a-z]+)(?:-v\d+)?$")


def _is_glob(pattern: str) -> bool:
    """Whether a metric pattern has shell-style wildcards."""
    return any(c in pattern for c in "*?[")


def _matches(key: str, patterns: Sequence[str]) -> bool:
    """Whether a metric key matches one of the exact names or shell-style patterns."""
    return any(fnmatch.fnmatchcase(key, pattern) for pattern in patterns)


def _needed(patterns: Sequence[str]) -> tuple[str, ...]:
    """The requested patterns plus the raw keys that requested normalized keys are computed from."""
    raw = [r for norm, r in NORMALIZED_FROM_RAW.items() if _matches(norm, patterns) and not _matches(r, patterns)]
    return (*patterns, *raw)


def game_of(env_id: Any) -> str | None:
    """The Procgen game of an env id ("bigfish", "procgen-bigfish-v0"), or None."""
    match = _ENV_ID.match(str(env_id))
    return match.group(1) if match and match.group(1) in GAMES else None


def model_label(
    config: Mapping[str, Any], tags: Sequence[str], label_keys: Sequence[str] = DEFAULT_LABEL_KEYS
) -> str | None:
    """Model name: config `label_keys` joined by "/", else a `model:NAME` or model-name tag, else encoder_s<scale>."""
    values = [config.get(key) for key in label_keys]
    if values and all(value not in (None, "") for value in values):
        return "/".join(str(value) for value in values)
    for tag in tags:
        if tag.startswith(("model:", "model=")):
            return tag[len("model:"):]
    for tag in tags:
        if _MODEL_TAG.match(tag):
            return tag
    if config.get("encoder") and config.get("scale") is not None:
        return f"{config['encoder']}_s{float(config['scale']):g}"
    return None


def run_frame(
    records: Iterable[Mapping[str, Any]],
    config: Mapping[str, Any],
    tags: Sequence[str],
    run: str,
    metrics: Sequence[str] = DEFAULT_METRICS,
    label_keys: Sequence[str] = DEFAULT_LABEL_KEYS,
) -> pd.DataFrame:
    """Tidy rows of one run from its logged records (dicts with `global_step`, or W&B's `_step`, and metric keys)."""
    model, game = model_label(config, tags, label_keys), game_of(config.get("env_id"))
    if model is None or game is None:
        warnings.warn(f"skipping run {run}: model {model!r}, game {config.get('env_id')!r} not recognised",
                      stacklevel=2)
        return pd.DataFrame(columns=[*COLUMNS, *META_COLUMNS])
    needed, wanted = _needed(metrics), {"global_step": False, "_step": False}
    rows = []
    for record in records:
        step = record.get("global_step", record.get("_step"))
        if step is None:
            continue
        for key, value in record.items():
            if key not in wanted:
                wanted[key] = _matches(key, needed)
            numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
            if wanted[key] and numeric and not math.isnan(value):
                rows.append((int(step), key, float(value)))
    long = pd.DataFrame(rows, columns=["step", "metric", "value"]).drop_duplicates(["step", "metric"], keep="last")
    mode = config.get("distribution_mode", "easy")
    for norm, raw in NORMALIZED_FROM_RAW.items():
        if not _matches(norm, metrics) or mode not in DISTRIBUTION_MODES:
            continue
        have = set(long.loc[long.metric == norm, "step"])
        todo = long[(long.metric == raw) & ~long.step.isin(have)]
        derived = todo.assign(metric=norm, value=[normalized_score(game, mode, v) for v in todo.value])
        long = pd.concat([long, derived], ignore_index=True)
    long = long[long.metric.isin([key for key in long.metric.unique() if _matches(key, metrics)])]
    seed, scale = config.get("seed"), config.get("scale")
    return long.assign(
        model=model, game=game, seed=pd.NA if seed is None else int(seed), run=run, encoder=config.get("encoder"),
        scale=float("nan") if scale is None else float(scale), distribution_mode=mode, track=config.get("track"),
        exp_name=config.get("exp_name"),
    )[[*COLUMNS, *META_COLUMNS]]


def _finish(frames: list[pd.DataFrame], where: str) -> pd.DataFrame:
    """Concatenate run frames, drop repeated runs (same model, game, seed, mode, track, exp), set dtypes, sort."""
    frames = [frame for frame in frames if len(frame)]
    if not frames:
        raise ValueError(f"no runs with the requested metrics found in {where}")
    table = pd.concat(frames, ignore_index=True).astype(DTYPES)
    identity = ["model", "game", "seed", "distribution_mode", "track", "exp_name"]
    last = table.groupby("run", sort=False).agg(**{c: (c, "first") for c in identity}, step=("step", "max"))
    for column in ("distribution_mode", "track", "exp_name"):
        mixed = last.groupby("model")[column].nunique()
        if (mixed > 1).any():
            warnings.warn(f"models {list(mixed[mixed > 1].index)} mix several {column} values: add {column} to "
                          "the label keys to tell them apart", stacklevel=2)
    keep = last.sort_values("step").groupby(identity, dropna=False).tail(1).index
    if len(keep) < len(last):
        warnings.warn(f"{len(last) - len(keep)} duplicate run(s) of the same model, game, seed and setting dropped "
                      "(the one that got furthest is kept)", stacklevel=2)
        table = table[table.run.isin(keep)]
    return table.sort_values(["model", "game", "seed", "run", "metric", "step"]).reset_index(drop=True)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The records of a metrics.jsonl file; a torn last line (run killed mid-write) is skipped."""
    records = []
    for line in Path(path).read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def load_local(
    root: str | Path,
    metrics: Sequence[str] = DEFAULT_METRICS,
    *,
    label_keys: Sequence[str] = DEFAULT_LABEL_KEYS,
    finished_only: bool = False,
) -> pd.DataFrame:
    """Tidy table of every run directory (config.json + metrics.jsonl) under `root`; `finished_only`: `done` marker."""
    root, frames = Path(root), []
    for path in sorted(root.rglob(METRICS_FILE)):
        run_dir = RunDir.at(path.parent)
        if not run_dir.config.is_file() or (finished_only and not run_dir.is_done()):
            continue
        config = run_dir.read_config()
        tags = config.get("wandb_tags") or []
        run = path.parent.relative_to(root).as_posix() if path.parent != root else run_dir.name
        frames.append(run_frame(read_jsonl(run_dir.metrics), config, tags, run, metrics, label_keys))
    return _finish(frames, str(root))


def save_table(table: pd.DataFrame, path: str | Path) -> Path:
    """Write a tidy table as CSV atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    table.to_csv(tmp, index=False)
    tmp.replace(path)
    return path


def load_table(path: str | Path) -> pd.DataFrame:
    """Read a tidy table written by `save_table`."""
    table = pd.read_csv(path)
    return table.astype({column: dtype for column, dtype in DTYPES.items() if column in table})


def wandb_filters(tags: Sequence[str] = (), config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """W&B server-side run filter (MongoDB syntax): all `tags` present and config keys equal."""
    clauses = [{"tags": {"$in": [tag]}} for tag in tags]
    clauses += [{f"config.{key}": value} for key, value in (config or {}).items()]
    return {"$and": clauses} if clauses else {}


def _selected(run: Any, tags: Sequence[str], config: Mapping[str, Any], finished_only: bool) -> bool:
    """Client-side check of the same filter (and of the run state)."""
    if not set(tags) <= set(run.tags) or (finished_only and getattr(run, "state", "finished") != "finished"):
        return False
    return all(str(run.config.get(key)) == str(value) for key, value in config.items())


def _history(run: Any, patterns: Sequence[str]) -> list[dict[str, Any]]:
    """Unsampled history of the metric keys matching `patterns` (globs are expanded against the run summary)."""
    keys = {pattern for pattern in patterns if not _is_glob(pattern)}
    keys |= {key for key in getattr(run, "summary", {}).keys() if not key.startswith("_") and _matches(key, patterns)}
    records = []
    for key in sorted(keys):
        rows = list(run.scan_history(keys=["global_step", key])) or list(run.scan_history(keys=[key]))
        records += [{"global_step": row.get("global_step", row.get("_step")), key: row[key]} for row in rows]
    return records


def cache_path(cache_dir: str | Path, entity: str, project: str, **query: Any) -> Path:
    """Cache file of a W&B query: one CSV per (entity, project, query) under `cache_dir`."""
    digest = hashlib.sha1(json.dumps(query, sort_keys=True, default=list).encode()).hexdigest()[:10]
    return Path(cache_dir) / f"wandb_{entity}_{project}_{digest}.csv"


def load_wandb(
    entity: str,
    project: str,
    *,
    tags: Sequence[str] = (),
    config: Mapping[str, Any] | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
    label_keys: Sequence[str] = DEFAULT_LABEL_KEYS,
    finished_only: bool = False,
    cache_dir: str | Path = DEFAULT_CACHE_DIR,
    refresh: bool = False,
    api: Any = None,
) -> pd.DataFrame:
    """Tidy table of the W&B runs with all `tags` and the `config` values; cached as CSV, re-fetched on `refresh`."""
    config = dict(config or {})
    globs = [p for p in metrics if _is_glob(p)]
    key_metrics = sorted({p for p in metrics if p in globs or not _matches(p, globs)})
    query = dict(tags=sorted(tags), config=config, metrics=key_metrics, label_keys=list(label_keys),
                 finished_only=finished_only)
    path = cache_path(cache_dir, entity, project, **query)
    if path.exists() and not refresh:
        return load_table(path)
    if api is None:
        import wandb

        api = wandb.Api()
    frames = []
    for run in api.runs(f"{entity}/{project}", filters=wandb_filters(tags, config)):
        if _selected(run, tags, config, finished_only):
            run_config = dict(run.config)
            records = _history(run, _needed(metrics))
            frames.append(run_frame(records, run_config, list(run.tags), f"{run.name} ({run.id})", metrics, label_keys))
    table = _finish(frames, f"W&B project {entity}/{project} with filter {wandb_filters(tags, config)}")
    save_table(table, path)
    path.with_suffix(".json").write_text(json.dumps({"entity": entity, "project": project, **query}, indent=1))
    return table


def parse_filters(items: Sequence[str]) -> dict[str, Any]:
    """KEY=VALUE strings to a config filter; values are JSON where they parse (2, true), else strings."""
    config = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"config filter {item!r} is not KEY=VALUE")
        try:
            config[key] = json.loads(value)
        except json.JSONDecodeError:
            config[key] = value
    return config


def load_example(max_steps: int = reference_curves.PAPER_BUDGET_STEPS, every: int = EXAMPLE_EVERY) -> pd.DataFrame:
    """OpenAI's published PPO runs (`impoola.reference_curves`) as a tidy table of one model, `EXAMPLE_MODEL`.

    16 games x 3 runs (seeds 0-2), easy mode, 200 training levels, Impala-CNN τ=1 with train-procgen's settings
    (`table.attrs["settings"]`; `table.attrs["source"]` says where the numbers come from). Up to `max_steps` (the
    paper's 25M-step budget) every `every`-th published update and the last one. `eprewmean` of the training
    worker becomes `scores/normalized_score_train`, that of the full-distribution worker
    `scores/normalized_score_test`, normalized with this package's constants (easy mode). Note that `eprewmean` is
    the running mean of the last 100 episodes of the sampling policy, not a separate evaluation. Each run also
    logs `charts/total_network_params` (626,256) at its first step.
    """
    if every < 1 or max_steps < reference_curves.STEPS_PER_UPDATE:
        raise ValueError(f"every {every} must be >= 1 and max_steps {max_steps} >= one update "
                         f"({reference_curves.STEPS_PER_UPDATE} steps)")
    curves = reference_curves.load()
    updates = curves["update"]
    final = updates[updates <= max_steps // reference_curves.STEPS_PER_UPDATE].max()
    curves = curves[(updates <= final) & (((updates - 1) % every == 0) | (updates == final))]
    settings = reference_curves.SETTINGS
    mode = settings["distribution_mode"]
    values = [normalized_score(game, mode, value) for game, value in zip(curves.game, curves.eprewmean)]
    table = pd.DataFrame({
        "model": EXAMPLE_MODEL, "game": curves.game, "seed": curves.run, "step": curves.total_timesteps,
        "metric": "scores/normalized_score_" + curves.split, "value": values,
        "run": curves.game + "__" + EXAMPLE_EXP_NAME + "__run" + curves.run.astype(str),
        "encoder": settings["encoder"], "scale": settings["scale"], "distribution_mode": mode,
        "track": "generalization", "exp_name": EXAMPLE_EXP_NAME,
    })
    # train-procgen's network is this package's Impala-CNN τ=1 PPO agent, layer for layer: the same parameter count
    first = table.drop_duplicates("run").assign(metric=PARAMS_METRIC,
                                                value=float(published.PARAM_COUNTS["impala"][1]))
    table = _finish([table, first], "the shipped reference curves")
    table.attrs.update(source=reference_curves.SOURCE, settings=dict(settings))
    return table


def load_runs(source: str | Path, **kwargs: Any) -> pd.DataFrame:
    """Dispatch on `source`: "wandb" (needs entity= and project=), "example", a tidy CSV file, or a run directory."""
    if str(source) == EXAMPLE_SOURCE:
        return load_example()
    if str(source) == "wandb":
        return load_wandb(kwargs.pop("entity"), kwargs.pop("project"), **kwargs)
    if Path(source).is_file():
        return load_table(source)
    local = {key: kwargs[key] for key in ("metrics", "label_keys", "finished_only") if key in kwargs}
    return load_local(source, **local)


def model_info(table: pd.DataFrame) -> pd.DataFrame:
    """Per model: encoder, scale (τ) and the median over runs of the last logged parameter count (NaN if none)."""
    info = table.groupby("model").agg(encoder=("encoder", "first"), scale=("scale", "first"))
    params = table[table.metric == PARAMS_METRIC].sort_values("step").groupby("run").agg(
        model=("model", "first"), params=("value", "last"))
    info["params"] = params.groupby("model").params.median()
    return info.reset_index()


def load_heatmap(path: str | Path) -> pd.DataFrame:
    """A translation-sensitivity CSV: rows dy=-k..k (index column), columns dx=-k..k (header row); a one-line
    ValueError naming the file otherwise."""
    valid = "valid: a CSV of analyze.py --what translation, a (2k+1)x(2k+1) matrix with dy and dx labels -k..k"
    try:
        frame = pd.read_csv(path, index_col=0)
        frame.columns = frame.columns.astype(float).astype(int)
        frame.index = frame.index.astype(int)
        values = frame.to_numpy(dtype=float)
    except (ValueError, TypeError, UnicodeDecodeError) as exc:  # not a CSV of numbers (pandas' errors included)
        raise ValueError(f"invalid translation {str(path)!r}: {exc}; {valid}") from None
    k = (len(frame) - 1) // 2
    expected = list(range(-k, k + 1))
    if list(frame.index) != expected or list(frame.columns) != expected or not values.size:
        raise ValueError(f"invalid translation {str(path)!r}: a {frame.shape[0]}x{frame.shape[1]} table; {valid}")
    return frame
