"""The training loop: SGD + warm-up/step schedule, checkpoints with exact resume, DDP, evaluation.

`train(config)` runs one training job described by a resolved `TrainConfig` (see config.py) and
is what `sspnet train` calls. Outline:

    build datasets -> finish the schedule -> build model + SGD -> (resume) -> (wrap in DDP)
    for every global iteration i:  lr = schedule(i); loss = sum of loss terms; backward; step
        every log_every iterations: log.jsonl record (losses averaged over the interval and ranks)
        end of an epoch / end of the run / every checkpoint_every iterations: checkpoint
        every eval_every epochs and at the end: evaluate on the val split, keep best.safetensors

Run folder (one process owns it: rank 0 holds an OS lock on it for the whole run, taken before
anything is written; a second run or a --resume of a live run is refused with BusyError):
    .sspnet-run.lock         the lock file (empty; only the live lock on it counts, sspnet.io.run_lock)
    config.yaml              the resolved configuration (what --resume reads back)
    log.jsonl                one JSON record per logged iteration and per evaluation (a resumed run
                             first drops the records of the iterations it rolls back)
    last.safetensors         model weights, our checkpoint format (sspnet.checkpoint)
    best.safetensors         weights with the best val AP50_tiny so far (needs a val split)
    last_state.safetensors   the resume point: weights + optimizer + RNG states + counters in ONE
                             atomically written file (so weights and optimizer state always match)

Determinism: the data order and each image's augmentation are functions of (seed, epoch, index)
(sampler.py); the model's own randomness (e.g. the RPN sampler) comes from the global RNGs, whose
states are saved per process. Resuming therefore replays the uninterrupted run exactly.

Data parallel (torchrun): DistributedDataParallel with gloo on CPU / NCCL on GPU; each process
takes its chunk of the global batch; rank 0 alone logs and writes files. Like the original
(mmdet's DDP with broadcast_buffers=False, no SyncBN), the CAM BatchNorm normalises with the
statistics of each process's own images and keeps per-process running statistics; before an
evaluation rank 0's buffers are broadcast (as mmdet's DistEvalHook does), and checkpoints hold rank 0's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel

from sspnet.engine import builders
from sspnet.engine import distributed as dist_utils
from sspnet.engine.config import TrainConfig, finalize_schedule, save_config
from sspnet.engine.runlog import LOG_FILE, RunLogger, roll_back_log
from sspnet.engine.sampler import ResumableBatchSampler
from sspnet.engine.schedule import WarmupStepSchedule, set_lr
from sspnet.engine.state import (
    capture_rng_state,
    decode_resume_state,
    encode_resume_state,
    preserved_rng_state,
    restore_rng_state,
)
from sspnet.errors import BusyError, OutputConflictError, UsageError
from sspnet.evaluation import print_results_table
from sspnet.io.atomic import atomic_write_bytes
from sspnet.io.outputs import OutputGuard
from sspnet.io.run_lock import acquire_run_lock

LAST_WEIGHTS = "last.safetensors"
BEST_WEIGHTS = "best.safetensors"
LAST_STATE = "last_state.safetensors"
CONFIG_FILE = "config.yaml"
BEST_METRIC = "AP50_tiny"


@dataclass
class TrainResult:
    """What a finished (or stopped) `train` call reports."""

    iteration: int  # completed global iterations
    total_iters: int
    best_metric: float | None  # best val AP50_tiny in percent, None without evaluation
    last_metrics: dict | None  # metrics of the last evaluation
    run_dir: Path


def total_loss(losses: dict[str, torch.Tensor]) -> torch.Tensor:
    """Sum of every entry whose key contains "loss" (others, like `acc`, are only logged)."""
    terms = [value for key, value in losses.items() if "loss" in key]
    if not terms:
        raise ValueError(f"the model returned no loss terms (keys: {sorted(losses)})")
    return sum(terms)


def seed_everything(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if isinstance(model, DistributedDataParallel) else model


def _per_process_buffers() -> dict:
    """DDP keyword that stops syncing buffers at every forward: per-process BN statistics, as the
    original (mmdet's DDP with broadcast_buffers=False). Newer torch renamed the argument."""
    import inspect

    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters:
        return {"forward_sync_buffers": False}
    return {"broadcast_buffers": False}


class Trainer:
    """Holds the pieces of one run; `fit()` runs the loop. See the module docstring."""

    def __init__(self, config: TrainConfig, *, resume: bool = False):
        self.config = config
        self.run_dir = Path(config.out)
        self.resume = resume
        check_run_folder(config)  # reads only: refuses an output that would destroy an input
        self.dist = dist_utils.init_distributed(config.device)
        self._run_lock = self._lock_run_folder()  # before anything is written
        try:
            self._setup()
        except BaseException:
            self._release_run_folder()
            raise

    def _setup(self) -> None:
        config, resume = self.config, self.resume
        if not resume and (self.run_dir / LAST_STATE).exists():
            raise OutputConflictError(
                f"--out {self.run_dir} already holds a training run ({LAST_STATE}); "
                "pass --resume to continue it, or choose another --out"
            )
        if resume and not (self.run_dir / LAST_STATE).is_file():
            raise UsageError(
                f"--resume: {self.run_dir / LAST_STATE} does not exist "
                f"(no complete checkpoint in {self.run_dir}); start the run without --resume"
            )
        self.device = self._device()

        self.train_set = builders.build_train_dataset(config)
        self.val_annotations = builders.load_val_annotations(config)
        if self.dist.is_main:
            self._print_data_report()
        if resume:
            self._check_resumable_schedule()
        else:
            finalize_schedule(config, len(self.train_set), self.dist.world_size)
        self.schedule = WarmupStepSchedule(
            base_lr=config.lr,
            milestones=tuple(config.milestones),
            gamma=config.gamma,
            warmup_iters=config.warmup_iters,
            warmup_ratio=config.warmup_ratio,
        )

        # Same initial weights on every process (DDP also broadcasts rank 0's), then per-process
        # streams so that the ranks' random choices (e.g. RPN sampling) are not copies of each other.
        seed_everything(config.seed)
        self.model = builders.build_model_for(config).to(self.device)
        seed_everything(config.seed + self.dist.rank)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.SGD(
            params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
        self.scaler = torch.amp.GradScaler("cuda", enabled=config.amp)
        self.iteration = 0
        self.best_metric: float | None = None
        self.last_metrics: dict | None = None

        if self.dist.is_main and not resume:
            save_config(config, self.run_dir / CONFIG_FILE)
        dist_utils.barrier(self.dist)
        if resume:
            self._load_resume_state()

        self.train_model = self.model
        if self.dist.distributed:
            self.train_model = DistributedDataParallel(
                self.model,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                **_per_process_buffers(),
            )
        self.sampler = ResumableBatchSampler(
            len(self.train_set), config.batch_size, config.seed, self.dist.rank, self.dist.world_size
        )
        assert self.sampler.iters_per_epoch == config.iters_per_epoch
        self.logger = None
        if self.dist.is_main:
            rolled_back = roll_back_log(self.run_dir / LOG_FILE, self.iteration) if resume else 0
            self.logger = RunLogger(self.run_dir, append=resume)
            if resume:
                self.logger.write(
                    {"type": "resume", "iter": self.iteration, "epoch": self.epoch, "rolled_back_records": rolled_back}
                )

    # --- setup helpers -----------------------------------------------------------------------

    def _lock_run_folder(self):
        """Rank 0 locks the run folder (it alone writes there); every rank learns the outcome, so a
        refused launch stops all its processes with the same BusyError."""
        lock, refusal = None, None
        if self.dist.is_main:
            try:
                lock = acquire_run_lock(self.run_dir, what="sspnet train process")
            except BusyError as error:
                refusal = str(error)
        refusal = dist_utils.broadcast_object(refusal, self.dist)
        if refusal is not None:
            raise BusyError(refusal)
        return lock

    def _release_run_folder(self) -> None:
        if self._run_lock is not None:
            self._run_lock.release()

    def _print_data_report(self) -> None:
        """What the loader kept and dropped in each split (boxes dropped and why, images missing),
        and the training images left out for having no person box."""
        annotations = self.train_set.annotations
        line = f"train data: {annotations.report}"
        unused = len(annotations.records) - len(self.train_set)
        if unused:
            line += f"; {unused} image(s) without a person box not used for training"
        print(line)
        if self.val_annotations is not None:
            print(f"val data: {self.val_annotations.report}")

    def _device(self) -> torch.device:
        if self.config.device == "cuda":
            if not torch.cuda.is_available():
                raise UsageError("--device cuda: no CUDA device is available on this machine")
            return torch.device("cuda", self.dist.local_rank)
        return torch.device("cpu")

    def _check_resumable_schedule(self) -> None:
        """A resumed run must see the same number of iterations per epoch as the original."""
        expected = -(-len(self.train_set) // (self.config.batch_size * self.dist.world_size))
        if expected != self.config.iters_per_epoch:
            raise UsageError(
                f"--resume: the stored run has {self.config.iters_per_epoch} iterations per epoch "
                f"(world size {self.config.world_size}), but this launch gives {expected} "
                f"({len(self.train_set)} images, batch {self.config.batch_size} x {self.dist.world_size} processes); "
                "resume with the same data and number of processes"
            )

    @property
    def epoch(self) -> int:
        """0-based epoch of the next iteration."""
        return self.iteration // self.config.iters_per_epoch

    @property
    def last_epoch(self) -> int:
        """0-based epoch of the last completed iteration (for log records)."""
        return max(self.iteration - 1, 0) // self.config.iters_per_epoch

    # --- checkpoints -------------------------------------------------------------------------

    def save(self, *, best: bool = False) -> None:
        """Write the resume point and last weights (rank 0), with barriers around the write."""
        from sspnet.checkpoint import save_checkpoint

        rng_states = dist_utils.gather_objects(capture_rng_state(), self.dist)  # every rank's streams
        dist_utils.barrier(self.dist)
        if self.dist.is_main:
            progress = {
                "iteration": self.iteration,
                "epoch": self.epoch,
                "iter_in_epoch": self.iteration % self.config.iters_per_epoch,
                "best_metric": self.best_metric,
                "last_metrics": self.last_metrics,
                "grad_scaler": self.scaler.state_dict() if self.config.amp else None,
                "world_size": self.dist.world_size,
            }
            payload = encode_resume_state(
                model_state=self.model.state_dict(),
                optimizer_state=self.optimizer.state_dict(),
                rng_states=rng_states,
                progress=progress,
            )
            extra = {"iteration": self.iteration, "epoch": self.epoch, "metrics": self.last_metrics}
            # Every file is written atomically. Order: best, then the resume point (the one file
            # --resume reads, complete or absent), then last. A crash in between resumes from the
            # previous resume point and replays the same iterations exactly, rewriting the same files.
            if best:
                save_checkpoint(
                    self.run_dir / BEST_WEIGHTS,
                    self.model,
                    preset=self.config.preset,
                    overrides=self.config.model_overrides,
                    extra=extra,
                )
            atomic_write_bytes(self.run_dir / LAST_STATE, payload)
            save_checkpoint(
                self.run_dir / LAST_WEIGHTS,
                self.model,
                preset=self.config.preset,
                overrides=self.config.model_overrides,
                extra=extra,
            )
        dist_utils.barrier(self.dist)

    def _load_resume_state(self) -> None:
        path = self.run_dir / LAST_STATE
        state = decode_resume_state(path)
        progress = state["progress"]
        self.model.load_state_dict(state["model_state"])
        self.optimizer.load_state_dict(state["optimizer_state"])
        if progress.get("grad_scaler"):
            self.scaler.load_state_dict(progress["grad_scaler"])
        self.iteration = int(progress["iteration"])
        self.best_metric = progress.get("best_metric")
        self.last_metrics = progress.get("last_metrics")
        saved_ranks = len(state["rng_states"])
        if saved_ranks != self.dist.world_size:
            raise UsageError(
                f"--resume: {path} was written by {saved_ranks} process(es), this launch has {self.dist.world_size}"
            )
        restore_rng_state(*state["rng_states"][self.dist.rank])

    # --- the loop ----------------------------------------------------------------------------

    def fit(self, stop_after_iters: int | None = None) -> TrainResult:
        """Train until the end of the schedule (or until `stop_after_iters` completed iterations,
        saving a checkpoint there: a deliberate, resumable stop)."""
        end = self.config.total_iters if stop_after_iters is None else min(stop_after_iters, self.config.total_iters)
        progress_bar = self._progress_bar()
        try:
            self._loop(end, progress_bar)
        finally:
            if progress_bar is not None:
                progress_bar.close()
            if self.logger:
                self.logger.close()
            self._release_run_folder()
        return TrainResult(self.iteration, self.config.total_iters, self.best_metric, self.last_metrics, self.run_dir)

    def _loop(self, end: int, progress_bar) -> None:
        from sspnet.data.dataset import collate

        config = self.config
        loader_generator = torch.Generator()  # keeps DataLoader seeding off the global RNG
        window: dict[str, float] = {}
        window_count, window_start = 0, time.perf_counter()
        while self.iteration < end:
            # a new loader per epoch: fresh workers carry the dataset's epoch (augmentation seeds)
            self.train_set.set_epoch(self.epoch)
            self.sampler.set_epoch(self.epoch, start_iter=self.iteration % config.iters_per_epoch)
            loader = torch.utils.data.DataLoader(
                self.train_set,
                batch_sampler=self.sampler,
                collate_fn=collate,
                num_workers=config.workers,
                pin_memory=self.device.type == "cuda",
                generator=loader_generator,
            )
            self.train_model.train()
            for images, targets in loader:
                values = self._train_step(images, targets)
                self.iteration += 1
                for key, value in values.items():
                    window[key] = window.get(key, 0.0) + value
                window_count += 1
                if progress_bar is not None:
                    progress_bar.update(1)
                    progress_bar.set_postfix(loss=f"{values['loss']:.4f}", lr=f"{values['lr']:.2e}")

                if self.iteration % config.log_every == 0 or self.iteration == end:
                    elapsed = time.perf_counter() - window_start
                    self._log_train(window, window_count, elapsed, end)
                    window, window_count, window_start = {}, 0, time.perf_counter()

                epoch_done = self.iteration % config.iters_per_epoch == 0
                run_done = self.iteration == config.total_iters
                evaluated = False
                is_best = False
                if (
                    self.val_annotations is not None
                    and config.eval_every
                    and (
                        run_done or (epoch_done and (self.iteration // config.iters_per_epoch) % config.eval_every == 0)
                    )
                ):
                    is_best = self._evaluate_and_track()
                    evaluated = True
                periodic = config.checkpoint_every and self.iteration % config.checkpoint_every == 0
                if epoch_done or run_done or periodic or evaluated or self.iteration == end:
                    self.save(best=is_best)
                if self.iteration >= end:
                    break

    def _train_step(self, images: torch.Tensor, targets: list[dict]) -> dict[str, float]:
        config = self.config
        lr = self.schedule.lr_at(self.iteration)
        set_lr(self.optimizer, lr)
        images = images.to(self.device, non_blocking=True)
        targets = [
            {
                "boxes": t["boxes"].to(self.device, non_blocking=True),
                "labels": t["labels"].to(self.device, non_blocking=True),
            }
            for t in targets
        ]
        with torch.autocast(device_type=self.device.type, dtype=torch.float16, enabled=config.amp):
            losses = self.train_model(images, targets)
            loss = total_loss(losses)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"the training loss became {loss.item()} at iteration {self.iteration} "
                f"({ {k: float(v) for k, v in losses.items()} }); try a lower --lr or --clip-grad"
            )
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        values = {key: float(value.detach()) for key, value in losses.items()}
        if config.clip_grad is not None:
            self.scaler.unscale_(self.optimizer)
            grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.clip_grad)
            values["grad_norm"] = float(grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        values["loss"] = float(loss.detach())
        values["lr"] = lr
        return values

    def _log_train(self, window: dict[str, float], count: int, elapsed: float, end: int) -> None:
        means = {key: value / count for key, value in window.items()}
        lr = means.pop("lr")
        means = dist_utils.mean_over_processes(means, self.dist, self.device)  # every rank joins
        if self.logger is None:
            return
        sec_per_iter = elapsed / count
        record = {"type": "train", "iter": self.iteration, "epoch": self.last_epoch, "lr": lr}
        record.update(means)
        record.update({"sec_per_iter": sec_per_iter, "eta_s": sec_per_iter * (end - self.iteration)})
        self.logger.write(record)

    def _progress_bar(self):
        if not self.dist.is_main:
            return None
        from tqdm import tqdm

        return tqdm(
            total=self.config.total_iters,
            initial=self.iteration,
            desc="train",
            unit="it",
            dynamic_ncols=True,
            mininterval=1.0,
        )

    # --- evaluation --------------------------------------------------------------------------

    def _evaluate_and_track(self) -> bool:
        """Evaluate on the val split; returns True when AP50_tiny improved (rank 0's view, shared)."""
        if self.dist.distributed:
            for buffer in self.model.buffers():  # rank 0's BN statistics, as mmdet's DistEvalHook
                torch.distributed.broadcast(buffer, src=0)
        with preserved_rng_state():
            metrics = builders.evaluate_model(
                self.model,
                self.val_annotations,
                self.dist.rank,
                self.dist.world_size,
                gather=lambda obj: dist_utils.gather_objects(obj, self.dist),
            )
        improved = False
        if self.dist.is_main:
            value = metrics[BEST_METRIC]
            improved = self.best_metric is None or value > self.best_metric
            if improved:
                self.best_metric = value
            self.last_metrics = metrics
            self.logger.write(
                {"type": "val", "iter": self.iteration, "epoch": self.last_epoch, **metrics, "best": improved}
            )
            print(
                f"\nval at iteration {self.iteration} (epoch {self.last_epoch + 1}): "
                f"{BEST_METRIC} {value:.2f} % (best {self.best_metric:.2f} %)"
            )
            print_results_table(metrics)
        improved, self.best_metric, self.last_metrics = dist_utils.broadcast_object(
            (improved, self.best_metric, self.last_metrics), self.dist
        )
        self.train_model.train()
        return improved


def check_run_folder(config: TrainConfig) -> None:
    """Refuse (OutputConflictError) a run folder that is, lies inside or directly holds one of the
    run's inputs (data folder / YAML, image folders, annotation files), is an existing file, or
    whose run files (config, log, checkpoints) would replace a file of another kind."""
    data = config.data
    splits = [split for split in (data.train, data.val) if split is not None]
    inputs = [data.source] + [path for split in splits for path in (split.images, split.annotations)]
    guard = OutputGuard(inputs=inputs, verb="train")
    run_dir = guard.check_dir(config.out)
    for name, kind in (
        (CONFIG_FILE, "yaml"),
        (LOG_FILE, "jsonl"),
        (LAST_STATE, "safetensors"),
        (LAST_WEIGHTS, "safetensors"),
        (BEST_WEIGHTS, "safetensors"),
    ):
        guard.check_file(run_dir / name, kind)


def train(config: TrainConfig, *, resume: bool = False, stop_after_iters: int | None = None) -> TrainResult:
    """Run (or resume) one training job; see `Trainer`."""
    trainer = Trainer(config, resume=resume)
    try:
        return trainer.fit(stop_after_iters=stop_after_iters)
    finally:
        dist_utils.shutdown_distributed()
