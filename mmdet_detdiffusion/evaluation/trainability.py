"""Trainability protocol: does synthetic data improve a detector more than more training on real data?

A reviewer accepts a gain only against a real-only detector trained for the **same number of optimiser
iterations with the same schedule**: more data per epoch is otherwise more training, not better data.
So every arm trains the same detector config for ``budget`` iterations (the epochs of the largest arm,
converted to iterations), its epoch-based schedule scaled to that budget; "real only, same epochs" is
kept as a reference row with its own, shorter budget. Each arm runs with several seeds; a mixed arm's
gain is the mean of its per-seed differences to the iteration-matched real-only arm (paired by seed),
with a Student-t confidence interval; :func:`.claims.gain` calls it beyond seed noise only when the interval
excludes 0.

Synthetic images either *replace* real ones (the arm's images shuffled together: a batch holds real and synthetic
images in proportion to the set sizes) or are *added* (``synthetic_per_batch`` k: every batch holds the config's B
real images plus k synthetic ones, mmdet's ``MultiSourceSampler``; Gen2Det draws synthetic images with p = 0.2, k = 2
beside B = 8). An added arm sees more images per iteration: :func:`images_seen` states it beside the iterations.

Learning curves: with ``val_interval``, every run validates every that many iterations (``ValCurveHook`` keeps the
points) and :func:`curve_report` compares each arm's best point with the baseline's best, seed by seed: best against
best, every arm under the same schedule.

Works on any mmdet config (toy shapes or COCO): :func:`arm_config` rewrites a config for one arm and seed.
"""
import copy
import math
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple, TypeVar

import numpy as np
from mmengine.config import Config

Metric = TypeVar('Metric')  # what one training run reports: a float (val mAP) or a dict of metrics

REAL_ONLY = 'real only'
REAL_ONLY_SAME_EPOCHS = 'real only, same epochs'

REFERENCE_ARMS = (REAL_ONLY, REAL_ONLY_SAME_EPOCHS)  # the real-only rows: the baseline and a reference, no gain


@dataclass(frozen=True)
class Arm:
    """One arm: its name, the synthetic dataset configs added to the real set (none: real only), its
    optimiser iterations and the iterations that make one of its schedule's epochs; ``synthetic_per_batch``: 0 when
    synthetic images replace real ones in the shuffled mix, else the synthetic images added to every batch of real
    ones (one synthetic set); ``real_dataset``: the arm's real training set config when it differs from the
    config's (e.g. a paste transform in its pipeline); ``cfg_options``: other changes to the config, as mmengine's
    ``--cfg-options`` give them (e.g. ``{'model.bbox_head.type': 'SyntheticAwareRetinaHead'}``)."""
    name: str
    synthetic: tuple
    max_iters: int
    iters_per_epoch: int
    synthetic_per_batch: int = 0
    real_dataset: Optional[dict] = None
    cfg_options: Optional[dict] = None


def images_seen(arm: Arm, batch_size: int) -> int:
    """Training images an arm's run loads: ``max_iters`` batches of ``batch_size`` real-or-mixed images, plus the
    added synthetic ones."""
    return arm.max_iters * (batch_size + arm.synthetic_per_batch)


def iterations_per_epoch(num_images: int, batch_size: int) -> int:
    """Optimiser steps of one pass over ``num_images`` (the last, partial batch included)."""
    return math.ceil(num_images / batch_size)


def plan_arms(num_real: int, synthetic: Dict[str, dict], synthetic_sizes: Dict[str, int], epochs: int,
              batch_size: int) -> List[Arm]:
    """The arms of the protocol: ``real only`` and ``real + {mode}`` for every synthetic set, all with the
    budget of the largest mixed arm (``epochs`` passes over real + its synthetic images), then the
    reference ``real only, same epochs`` (``epochs`` passes over the real images alone)."""
    if not synthetic:
        raise ValueError('plan_arms: give at least one synthetic set')
    per_epoch = iterations_per_epoch(num_real + max(synthetic_sizes[name] for name in synthetic), batch_size)
    budget = epochs * per_epoch
    arms = [Arm(REAL_ONLY, (), budget, per_epoch)]
    arms += [Arm(f'real + {name}', (cfg,), budget, per_epoch) for name, cfg in synthetic.items()]
    real_per_epoch = iterations_per_epoch(num_real, batch_size)
    arms.append(Arm(REAL_ONLY_SAME_EPOCHS, (), epochs * real_per_epoch, real_per_epoch))
    return arms


def schedule_in_iterations(schedulers: Sequence[dict], iters_per_epoch: int) -> List[dict]:
    """Param schedulers with every epoch-based one (``by_epoch=True``, mmengine's default) rewritten in
    iterations: ``begin``, ``end``, ``T_max`` and ``milestones`` times ``iters_per_epoch``."""
    converted = []
    for scheduler in schedulers:
        scheduler = copy.deepcopy(dict(scheduler))
        if scheduler.get('by_epoch', True):
            scheduler['by_epoch'] = False
            for key in ('begin', 'end', 'T_max'):
                if key in scheduler:
                    scheduler[key] = int(scheduler[key] * iters_per_epoch)
            if 'milestones' in scheduler:
                scheduler['milestones'] = [int(m * iters_per_epoch) for m in scheduler['milestones']]
        converted.append(scheduler)
    return converted


def arm_config(cfg: Config, arm: Arm, seed: int, work_dir: str, val_interval: Optional[int] = None) -> Config:
    """``cfg`` (an epoch-based mmdet detector config) rewritten to train ``arm`` with ``seed``: the real set
    plus the arm's synthetic sets (``DetDiffusionDataset``), ``arm.max_iters`` iterations of an infinite
    shuffled sampler (added synthetic images: ``MultiSourceSampler`` with B + k images a batch), the schedule in
    iterations. One validation and one checkpoint at the end; with ``val_interval``, a validation and a checkpoint
    (for resuming) every that many iterations, each validation's metrics kept by ``ValCurveHook``."""
    if arm.synthetic_per_batch and len(arm.synthetic) != 1:
        raise ValueError(f'arm {arm.name!r}: synthetic images added to each batch come from one synthetic set, got '
                         f'{len(arm.synthetic)}')
    cfg = copy.deepcopy(cfg)
    cfg.merge_from_dict(arm.cfg_options or {})
    real = copy.deepcopy(arm.real_dataset) if arm.real_dataset is not None else cfg.train_dataloader.dataset
    cfg.train_dataloader.dataset = real
    if arm.synthetic:
        cfg.train_dataloader.dataset = dict(type='DetDiffusionDataset', real=real, synthetic=list(arm.synthetic))
    if arm.synthetic_per_batch:
        real_per_batch = cfg.train_dataloader.batch_size
        cfg.train_dataloader.batch_size = real_per_batch + arm.synthetic_per_batch
        cfg.train_dataloader.sampler = dict(type='MultiSourceSampler', batch_size=cfg.train_dataloader.batch_size,
                                            source_ratio=[real_per_batch, arm.synthetic_per_batch], shuffle=True)
        # an aspect-ratio batch sampler (mmdet's COCO configs) would regroup the sampler's B + k chunks
        cfg.train_dataloader.pop('batch_sampler', None)
    else:
        cfg.train_dataloader.sampler = dict(type='InfiniteSampler', shuffle=True)
    cfg.train_dataloader.persistent_workers = False
    interval = val_interval or arm.max_iters
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=arm.max_iters, val_interval=interval)
    cfg.param_scheduler = schedule_in_iterations(cfg.get('param_scheduler') or [], arm.iters_per_epoch)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False, interval=interval, max_keep_ckpts=1)
    if val_interval:
        hooks = [hook for hook in cfg.get('custom_hooks') or [] if hook.get('type') != 'ValCurveHook']
        cfg.custom_hooks = hooks + [dict(type='ValCurveHook')]
    cfg.log_processor = dict(cfg.get('log_processor') or {}, by_epoch=False)
    cfg.randomness = dict(seed=seed)
    cfg.work_dir = work_dir
    return cfg


def summarize(values: Sequence[float]) -> dict:
    """``mean``, sample ``std`` (ddof 1; 0 for one value) and the per-seed ``seeds`` values."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError('summarize: no values')
    std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return dict(mean=float(np.mean(values)), std=std, seeds=values)


def t_quantile(probability: float, dof: int) -> float:
    """The ``probability`` quantile of Student's t with ``dof`` degrees of freedom."""
    from scipy.stats import t
    return float(t.ppf(probability, dof))


def paired_gain(arm: Sequence[float], baseline: Sequence[float], confidence: float = 0.95) -> dict:
    """Gain of ``arm`` over ``baseline``, both per seed in the same seed order: the mean of the paired
    differences, its ``confidence`` Student-t interval ``[low, high]`` (n - 1 degrees of freedom) and
    ``half_width`` (the smallest gain these seeds can tell from noise). Needs at least 2 seeds."""
    if len(arm) != len(baseline):
        raise ValueError(f'paired_gain: {len(arm)} arm values vs {len(baseline)} baseline values')
    if len(arm) < 2:
        raise ValueError('paired_gain: an interval needs at least 2 seeds')
    diffs = np.asarray(arm, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)
    mean, sem = float(diffs.mean()), float(diffs.std(ddof=1) / math.sqrt(len(diffs)))
    half = t_quantile(0.5 + confidence / 2, len(diffs) - 1) * sem
    return dict(mean=mean, low=mean - half, high=mean + half, half_width=half, confidence=confidence)


def protocol_report(results: Dict[str, Sequence[float]], arms: Sequence[Arm], confidence: float = 0.95,
                    baseline: str = REAL_ONLY) -> Dict[str, dict]:
    """``{arm: {mean, std, seeds, iters[, gain]}}`` from per-seed metrics ``results[arm]`` (same seed order
    in every arm); every arm but ``baseline`` and the real-only references gets its ``gain`` over ``baseline``
    (:func:`paired_gain`)."""
    report = {}
    for arm in arms:
        entry = dict(summarize(results[arm.name]), iters=arm.max_iters)
        if arm.name != baseline and arm.name not in REFERENCE_ARMS:
            entry['gain'] = paired_gain(results[arm.name], results[baseline], confidence)
        report[arm.name] = entry
    return report


def best_point(curve: Sequence[dict], key: str) -> Tuple[float, int]:
    """``(value, iteration)`` of a learning curve's best point for metric ``key`` (the earliest of equal ones); a
    point without ``key`` (nothing detected) counts 0. ``curve``: ``ValCurveHook``'s points."""
    if not curve:
        raise ValueError('best_point: the curve has no point')
    values = [float(point['metrics'].get(key, 0.0)) for point in curve]
    best = int(np.argmax(values))
    return values[best], int(curve[best]['iter'])


def curve_report(curves: Dict[str, Sequence[Sequence[dict]]], arms: Sequence[Arm], key: str, batch_size: int,
                 confidence: float = 0.95, baseline: str = REAL_ONLY) -> Dict[str, dict]:
    """Best against best: ``{arm: {mean, std, seeds, best_iters, best_iter_mean, iters, images_seen[, gain]}}`` from
    each run's learning curve ``curves[arm][seed index]`` (same seed order in every arm). ``seeds``: each run's best
    ``key``; ``gain``: :func:`paired_gain` of those over ``baseline``'s best, seed by seed. The best of several
    validations on the set it is reported on is biased upwards, the more so the noisier a curve: report the last
    points beside it (:func:`final_values`)."""
    best = {arm.name: [best_point(curve, key) for curve in curves[arm.name]] for arm in arms}
    report = protocol_report({name: [value for value, _ in points] for name, points in best.items()}, arms,
                             confidence, baseline)
    for arm in arms:
        iters = [it for _, it in best[arm.name]]
        report[arm.name].update(best_iters=iters, best_iter_mean=float(np.mean(iters)),
                                images_seen=images_seen(arm, batch_size))
    return report


def final_values(curves: Dict[str, Sequence[Sequence[dict]]], key: str) -> Dict[str, List[float]]:
    """``{arm: [metric key at each run's last point]}``: the runs' results at the end of their schedule, for
    :func:`protocol_report` (0 where the last point has no ``key``)."""
    return {arm: [float(curve[-1]['metrics'].get(key, 0.0)) for curve in runs] for arm, runs in curves.items()}


def available_cpus() -> int:
    """CPUs this process may run on (its affinity: a container's or ``taskset``'s share, not the host's)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count() or 1


def threads_per_worker(workers: int) -> int:
    """Each of ``workers`` parallel runs' equal share of :func:`available_cpus` (at least one thread)."""
    return max(1, available_cpus() // workers)


def _use_threads(threads: int) -> None:
    """Process-pool initializer: the worker's share of the CPU threads."""
    import torch  # here, so that the protocol's arithmetic imports without torch
    torch.set_num_threads(threads)


def run_arms(cfg: Config, arms: Sequence[Arm], seeds: Sequence[int], work_root: str,
             train: Callable[[Config], Metric],
             progress: Optional[Callable[[Arm, int, Metric], None]] = None,
             workers: int = 1, val_interval: Optional[int] = None) -> Dict[str, List[Metric]]:
    """Train every arm with every seed: ``train(config) -> metric`` (e.g. val mAP, or a dict of metrics:
    :func:`select` picks one); returns ``{arm: [metric per seed]}``. ``progress(arm, seed, metric)`` is called
    after each run, in the order the runs end. ``val_interval``: learning curves (:func:`arm_config`).

    ``workers > 1`` runs that many trainings at once in spawned processes that share the available CPUs
    equally (``train`` must then be picklable, i.e. a module-level function); the first failure cancels the
    runs not yet started. Small detectors use 2 threads poorly: on 2 cores, two one-thread runs side by side
    took 34 s and 37 s, one two-thread run 33 s (the pool's start-up, about 8 s, once). A run's result depends
    on its thread count (float summation order), not on the other runs.
    """
    jobs = {(arm.name, seed): arm_config(cfg, arm, seed, f'{work_root}/{arm_slug(arm)}/seed{seed}', val_interval)
            for arm in arms for seed in seeds}
    by_name = {arm.name: arm for arm in arms}
    metrics: Dict[Tuple[str, int], Metric] = {}

    def done(key: Tuple[str, int], metric: Metric) -> None:
        metrics[key] = metric
        if progress is not None:
            progress(by_name[key[0]], key[1], metric)

    if workers <= 1:
        for key, arm_cfg in jobs.items():
            done(key, train(arm_cfg))
    else:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context('spawn'),
                                 initializer=_use_threads, initargs=(threads_per_worker(workers),)) as pool:
            futures = {pool.submit(train, arm_cfg): key for key, arm_cfg in jobs.items()}
            try:
                for future in as_completed(futures):
                    done(futures[future], future.result())
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    return {arm.name: [metrics[arm.name, seed] for seed in seeds] for arm in arms}


def arm_slug(arm: Arm) -> str:
    """The arm's folder name under the protocol's work root."""
    return arm.name.replace(' ', '_').replace(',', '').replace('+', 'plus')


def select(results: Dict[str, Sequence[Dict[str, float]]], key: str) -> Dict[str, List[float]]:
    """``{arm: [metrics[key] per seed]}`` from runs that report several metrics."""
    return {arm: [float(metrics[key]) for metrics in runs] for arm, runs in results.items()}
