"""A run's outputs in its run directory (impoola.run.rundir): resolved config, metrics file, TensorBoard, W&B and the
progress bar; their option group (`LoggingOptions`)."""

from __future__ import annotations

import base64
import json
import math
import netrc
import os
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from tqdm import tqdm

from impoola.options import Checked
from impoola.run.files import atomic_write_bytes, write_json
from impoola.run.rundir import RunDir

WandbMode = Literal["offline", "online", "disabled"]


@dataclass(frozen=True)
class LoggingOptions(Checked):
    """Logging: W&B and the progress bar (metrics.jsonl and TensorBoard are always written)."""

    wandb_mode: WandbMode = "offline"
    """W&B mode: offline (default, no account needed; `wandb sync` later), online or disabled"""
    wandb_project: str = "impoola"
    """W&B project (letters, digits, - _ .)"""
    wandb_entity: str | None = None
    """W&B entity (letters, digits, - _ .)"""
    wandb_tags: tuple[str, ...] = ()
    """extra W&B tags (the model name, game and track are always added)"""
    progress_bar: bool = True
    """show a tqdm progress bar"""

    def check(self) -> None:
        for name in ("wandb_project", "wandb_entity"):
            value = getattr(self, name)
            if value is not None and (not value or len(value) > 128 or not all(
                    c.isalnum() or c in "-_." for c in value)):
                raise ValueError(f"invalid {name} {value!r}; valid: 1 to 128 letters, digits, '-', '_' or '.'")
        for tag in self.wandb_tags:
            if not tag or len(tag) > 64:
                raise ValueError(f"invalid wandb_tags value {tag!r}; valid: 1 to 64 characters")


WANDB_INIT_TIMEOUT = 90  # seconds W&B online may take to start once its server answers
WANDB_CONNECT_TIMEOUT = 10  # seconds per network operation of the W&B server check before a run logs offline


def _json_value(value: Any) -> Any:
    value = float(value) if hasattr(value, "item") else value
    return None if isinstance(value, float) and not math.isfinite(value) else value


def duration(seconds: float) -> str:
    """A duration for people: 45s, 12m05s, 3h07m."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m"


class Progress:
    """Two live lines on stderr: a headline (what runs, and the time to the end at the measured speed) and a bar
    that advances with the rollout, showing steps/s and the latest return."""

    HEADLINE_EVERY_S = 2.0

    def __init__(self, total_steps: int, start_step: int = 0, enabled: bool = True):
        self.total_steps, self.start_step, self.step = total_steps, start_step, start_step
        self.text = ""
        self.head = tqdm(total=0, bar_format="{desc}", position=0, disable=not enabled, file=sys.stderr,
                         dynamic_ncols=True)
        self.bar = tqdm(total=total_steps, initial=start_step, unit="step", position=1, disable=not enabled,
                        file=sys.stderr, dynamic_ncols=True, smoothing=0.05, leave=True)
        self.start_time = self.head_time = time.monotonic()

    def headline(self, text: str) -> None:
        """Set the headline (device, threads, precision, model); the time to the end is added as speed is measured."""
        self.text = text
        self._refresh_head(time.monotonic())

    def _refresh_head(self, now: float) -> None:
        done, left = self.step - self.start_step, self.total_steps - self.step
        eta = f"{duration(left * (now - self.start_time) / done)} to the end" if done > 0 else "measuring speed"
        self.head.set_description_str(f"{self.text} | {eta}" if self.text else eta)
        self.head_time = now

    def update(self, global_step: int, **postfix: Any) -> None:
        """Advance to `global_step`; `postfix` (e.g. ret=...) replaces the values shown after the bar."""
        self.bar.update(global_step - self.step)
        self.step = global_step
        if postfix:
            self.bar.set_postfix({k: (f"{v:.3g}" if isinstance(v, float) else v) for k, v in postfix.items()},
                                 refresh=False)
        now = time.monotonic()
        if now - self.head_time >= self.HEADLINE_EVERY_S and not self.head.disable:
            self._refresh_head(now)

    def close(self) -> None:
        self.bar.close()
        self.head.close()


class RunLog:
    """Writes every logged row to metrics.jsonl, TensorBoard and W&B, and drives a tqdm bar."""

    # Resuming (the run directory already has a metrics file): metrics.jsonl keeps its first `keep_rows` rows,
    # the number a checkpoint recorded (`rows` when it was written); without a count, the rows up to
    # `start_step`. TensorBoard purges everything from `start_step` on and gets the kept rows at `start_step`
    # again, so rows the continued run re-logs are never doubled. W&B keeps the run id (run_dir/wandb_id):
    # online, the run resumes and rows below its resumed step are not sent again; offline, W&B cannot resume,
    # so each attempt writes its own wandb/offline-run-*-<id> directory and the newest one gets the kept rows
    # first: it holds the whole history (`wandb sync` that one).

    def __init__(
        self,
        run_dir: RunDir,
        config: dict[str, Any],
        total_steps: int,
        wandb_mode: str = "offline",
        wandb_project: str = "impoola",
        wandb_entity: str | None = None,
        wandb_tags: tuple[str, ...] = (),
        start_step: int = 0,
        progress: bool = True,
        keep_rows: int | None = None,
    ):
        from torch.utils.tensorboard import SummaryWriter

        self.run_dir = run_dir
        write_json(run_dir.config, config)
        self.metrics_path = run_dir.metrics
        resuming = self.metrics_path.exists()
        kept = self._truncate_metrics(start_step, keep_rows) if resuming else []
        self.rows = len(kept)
        self.metrics_file = open(self.metrics_path, "a")
        self.tb = SummaryWriter(str(run_dir.tb), purge_step=start_step if resuming else None)
        for row in kept:
            if row["global_step"] >= start_step:
                self._log_tb(row)
        self.wandb_run = self._init_wandb(config, wandb_mode, wandb_project, wandb_entity, wandb_tags)
        if self.wandb_run is not None and self.wandb_run.offline:  # each offline attempt is its own directory:
            # the newest gets the whole history
            for row in kept:
                self.wandb_run.log(dict(row), step=row["global_step"])
        self.bar = Progress(total_steps, start_step, progress)

    def _truncate_metrics(self, start_step: int, keep_rows: int | None) -> list[dict[str, Any]]:
        """Keep the first `keep_rows` complete rows (or those up to `start_step`); return them."""
        # The text after the last newline is a row a killed writer left half-written: dropped.
        lines = [line for line in self.metrics_path.read_text().split("\n")[:-1] if line.strip()]
        rows = [json.loads(line) for line in lines]
        keep = keep_rows if keep_rows is not None else sum(row["global_step"] <= start_step for row in rows)
        atomic_write_bytes(self.metrics_path, lambda f: f.write("".join(line + "\n" for line in lines[:keep]).encode()))
        return rows[:keep]

    def _init_wandb(self, config, mode, project, entity, tags):
        """The W&B run (None when disabled); online when the server takes it, else offline with a warning."""
        if mode == "disabled":
            return None
        import wandb

        id_file = self.run_dir.wandb_id
        run_id = id_file.read_text().strip() if id_file.exists() else wandb.util.generate_id()
        atomic_write_bytes(id_file, lambda f: f.write(run_id.encode()))
        kwargs = dict(project=project, entity=entity, tags=list(tags), config=config, name=self.run_dir.name,
                      id=run_id, dir=str(self.run_dir.path))
        if mode == "online":
            refusal = wandb_refusal()
            if refusal is None:
                return wandb.init(mode="online", resume="allow", **kwargs,
                                  settings=wandb.Settings(silent=True, init_timeout=WANDB_INIT_TIMEOUT))
            print(f"warning: the W&B server {wandb_base_url()} cannot take the run: {refusal}; logging offline to "
                  f"{str(self.run_dir.wandb)!r} instead (`wandb sync` it later)", file=sys.stderr)
        return wandb.init(mode="offline", **kwargs, settings=wandb.Settings(silent=True))

    def log(self, metrics: dict[str, Any], global_step: int) -> None:
        """One row: metrics.jsonl line, TensorBoard scalars, one W&B log call."""
        row = {"global_step": int(global_step), **{k: _json_value(v) for k, v in metrics.items()}}
        self.metrics_file.write(json.dumps(row) + "\n")
        self.metrics_file.flush()
        self.rows += 1
        self._log_tb(row)
        if self.wandb_run is not None and row["global_step"] >= self.wandb_run.step:
            self.wandb_run.log(dict(row), step=row["global_step"])

    def _log_tb(self, row: dict[str, Any]) -> None:
        """The row's numbers as TensorBoard scalars at its global step."""
        for key, value in row.items():
            if key != "global_step" and isinstance(value, (int, float)):
                self.tb.add_scalar(key, value, row["global_step"])

    def headline(self, text: str) -> None:
        """The progress display's first line: device, threads, precision, model (the time to the end follows)."""
        self.bar.headline(text)

    def progress(self, global_step: int, **postfix: Any) -> None:
        """Advance the progress bar to `global_step` (call it every step or every few) and show `postfix` (e.g. ret)."""
        self.bar.update(global_step, **postfix)

    def sync(self) -> None:
        """Flush the metrics file to disk (before a checkpoint refers to its rows)."""
        self.metrics_file.flush()
        os.fsync(self.metrics_file.fileno())
        self.tb.flush()

    def mark_done(self) -> None:
        self.run_dir.mark_done()

    def close(self) -> None:
        self.bar.close()
        self.metrics_file.close()
        self.tb.close()
        if self.wandb_run is not None:
            self.wandb_run.finish()


def wandb_base_url() -> str:
    """The W&B server (WANDB_BASE_URL, default https://api.wandb.ai), without a trailing slash; a one-line
    ValueError naming the variable for one that is not an http(s) URL."""
    url = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").rstrip("/")
    try:
        parsed = urlparse(url)
        valid = parsed.scheme in ("http", "https") and bool(parsed.hostname) and (parsed.port or 0) >= 0
    except ValueError:  # an unclosed IPv6 bracket, a port that is not a number
        valid = False
    if not valid:
        raise ValueError(f"invalid WANDB_BASE_URL {url!r} (environment variable); valid: an http(s) URL such as "
                         "https://api.wandb.ai, or unset it")
    return url


def wandb_api_key() -> str | None:
    """W&B's API key as W&B finds it without a prompt: WANDB_API_KEY, else the netrc entry of the W&B host."""
    if os.environ.get("WANDB_API_KEY"):
        return os.environ["WANDB_API_KEY"]
    host = urlparse(wandb_base_url()).hostname or "api.wandb.ai"
    paths = [Path(os.environ["NETRC"]).expanduser()] if os.environ.get("NETRC") else [
        Path.home() / ".netrc", Path.home() / "_netrc"]
    for path in paths:
        try:
            entry = netrc.netrc(path).authenticators(host) if path.is_file() else None
        except (OSError, netrc.NetrcParseError):
            continue
        if entry and entry[2]:
            return entry[2]
    return None


def wandb_credentials() -> bool:
    """Whether W&B can log in without a prompt."""
    return wandb_api_key() is not None


def wandb_refusal(timeout: float = WANDB_CONNECT_TIMEOUT) -> str | None:
    """Why the W&B server cannot take a run now, or None when it can: it is asked, within `timeout` seconds per
    network operation, whose API key this is (the question `wandb login` asks). A server that does not answer,
    answers with an error or does not know the key would otherwise leave wandb.init waiting and W&B's service
    wedged until the process is killed."""
    key = wandb_api_key() or ""
    request = urllib.request.Request(
        f"{wandb_base_url()}/graphql", data=json.dumps({"query": "query { viewer { id } }"}).encode(),
        headers={"Content-Type": "application/json",
                 "Authorization": "Basic " + base64.b64encode(f"api:{key}".encode()).decode()})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return f"it answered HTTP {exc.code}"
    except OSError as exc:  # unreachable or timed out
        return f"it cannot be reached ({type(exc).__name__})"
    except ValueError:  # not JSON
        return "its answer is not W&B's"
    if not isinstance(answer, dict) or not (answer.get("data") or {}).get("viewer"):
        return "it does not know the API key"
    return None
