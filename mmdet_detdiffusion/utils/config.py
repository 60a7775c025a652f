"""Config helpers shared by tools, the demo and the tests."""
import copy
from typing import Any, Iterator, List

from mmdet.registry import DATASETS
from mmengine.config import Config
from mmengine.optim.scheduler.param_scheduler import INF

from mmdet_detdiffusion.datasets.utils import base_dataset, iter_datasets

ONLINE_GENERATION = 'DetDiffusionGenerate'


def set_data_root(cfg: Config, data_root: str) -> Config:
    """Point every dataloader's datasets, and evaluators' ``ann_file`` under the old root, at ``data_root``.

    ``data_root`` must end with ``/`` like mmdet's own configs. Returns ``cfg`` (changed in place).
    """
    if not data_root.endswith('/'):
        data_root += '/'
    old_root = cfg.get('data_root')
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if cfg.get(key) and cfg[key].get('dataset'):
            for dataset in iter_datasets(cfg[key].dataset):  # not into synthetic sets: own roots
                if 'data_root' in dataset:
                    dataset.data_root = data_root
    for key in ('val_evaluator', 'test_evaluator'):
        evaluators = cfg.get(key) or []
        for evaluator in evaluators if isinstance(evaluators, list) else [evaluators]:
            ann_file = evaluator.get('ann_file')
            if old_root and ann_file and ann_file.startswith(old_root):
                evaluator.ann_file = data_root + ann_file[len(old_root):]
    cfg.data_root = data_root
    return cfg


def _schedulers(cfg: Config) -> List[Any]:
    """The config's param schedulers as a list (a config may give a single one)."""
    schedulers = cfg.get('param_scheduler') or []
    return list(schedulers) if isinstance(schedulers, (list, tuple)) else [schedulers]


def set_max_epochs(cfg: Config, epochs: int) -> Config:
    """Make an epoch-based config ``epochs`` long, with its schedule and intervals.

    Every epoch-based param scheduler's ``begin``, ``end``, ``T_max`` and ``milestones`` are scaled by
    ``epochs / train_cfg.max_epochs`` (milestones rounded down: 1x's 8 and 11 of 12 epochs become 4 and 5 of 6);
    iteration-based ones (warm-ups) keep theirs. ``train_cfg.val_interval`` and the epoch-based checkpoint
    interval become ``epochs`` where they spanned the whole run, and are capped at ``epochs`` otherwise.
    Returns ``cfg`` (changed in place).
    """
    old = cfg.train_cfg.get('max_epochs')
    if old is None:
        raise ValueError(f'set_max_epochs: train_cfg ({cfg.train_cfg.get("type")}) has no max_epochs')
    if epochs < 1:
        raise ValueError(f'set_max_epochs: epochs must be >= 1, got {epochs}')
    ratio = epochs / old
    for scheduler in _schedulers(cfg):
        if not scheduler.get('by_epoch', True):
            continue
        begin = round(scheduler.get('begin', 0) * ratio)
        if 'begin' in scheduler:
            scheduler.begin = begin
        if scheduler.get('end', INF) < INF:
            scheduler.end = max(begin + 1, round(scheduler.end * ratio))
        if 'T_max' in scheduler:
            scheduler.T_max = max(1, round(scheduler.T_max * ratio))
        if 'milestones' in scheduler:
            scheduler.milestones = [max(1, int(m * ratio)) for m in scheduler.milestones]

    def fit(interval: int) -> int:
        return epochs if interval >= old else min(interval, epochs)

    if 'val_interval' in cfg.train_cfg:
        cfg.train_cfg.val_interval = fit(cfg.train_cfg.val_interval)
    checkpoint = (cfg.get('default_hooks') or {}).get('checkpoint')
    if checkpoint and checkpoint.get('by_epoch', True) and 'interval' in checkpoint:
        checkpoint.interval = fit(checkpoint.interval)
    cfg.train_cfg.max_epochs = epochs
    if 'max_epochs' in cfg:  # mmdet's convention: the top-level variable names the length; keep it true in dumps
        cfg.max_epochs = epochs
    return cfg


def schedule_overruns(cfg: Config) -> List[str]:
    """One message per epoch-based param scheduler whose ``end`` lies past ``train_cfg.max_epochs``."""
    max_epochs = cfg.train_cfg.get('max_epochs')
    if max_epochs is None:
        return []
    return [f'param_scheduler[{i}] ({scheduler.get("type")}) ends at epoch {scheduler.end}, after '
            f'train_cfg.max_epochs={max_epochs}: the run stops before its schedule does (--max-epochs {max_epochs} '
            'rescales the schedule with the epochs)'
            for i, scheduler in enumerate(_schedulers(cfg))
            if scheduler.get('by_epoch', True) and max_epochs < scheduler.get('end', INF) < INF]


def _config_dicts(node: Any) -> Iterator[dict]:
    """Every dict in a config tree, depth first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _config_dicts(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from _config_dicts(value)


def set_online_generator(cfg: Config) -> Config:
    """Write the top-level ``generator`` (an export folder), where the config has one, into every
    ``DetDiffusionGenerate`` transform of ``cfg``: the one place to set it, ``--cfg-options generator=...``
    included. Returns ``cfg`` (changed in place)."""
    generator = cfg.get('generator')
    if generator is not None:
        for node in _config_dicts([cfg[key] for key in cfg.keys()]):
            if node.get('type') == ONLINE_GENERATION:
                node['generator'] = generator
    return cfg


def check_generator_classes(cfg: Config) -> None:
    """Raise ``ValueError`` when the generator's ``model.classes`` differ from its training set's classes
    (``metainfo``, else the dataset class's default): the prompts would name the wrong objects."""
    dataset = base_dataset(cfg.train_dataloader.dataset)
    default = getattr(DATASETS.get(dataset.type), 'METAINFO', {}).get('classes', ())
    dataset_classes = (dataset.get('metainfo') or {}).get('classes') or default
    model_classes = cfg.model.get('classes') or ()
    if tuple(model_classes) != tuple(dataset_classes):
        raise ValueError(f'model.classes {tuple(model_classes)} differ from the classes of the training dataset '
                         f'({dataset.type}) {tuple(dataset_classes)}: write the tuple once in the config and use '
                         'it for both (model.classes and the dataset\'s metainfo=dict(classes=...))')


def _loading_end(dataset: dict) -> int:
    """The index just after ``LoadAnnotations`` in a dataset config's pipeline."""
    types = [step.get('type') for step in dataset.get('pipeline', [])]
    if 'LoadAnnotations' not in types:
        raise ValueError(f'the dataset config ({dataset.get("type")}, {dataset.get("ann_file")}) has no '
                         f'LoadAnnotations step in its pipeline {types}')
    return types.index('LoadAnnotations') + 1


def with_transform_after_loading(dataset: dict, transform: dict) -> dict:
    """A copy of a dataset config with ``transform`` in its pipeline right after ``LoadAnnotations`` (e.g.
    ``SyntheticInstancePaste``, before any resize or flip)."""
    dataset = copy.deepcopy(dict(dataset))
    end = _loading_end(dataset)
    dataset['pipeline'] = [*dataset['pipeline'][:end], transform, *dataset['pipeline'][end:]]
    return dataset


def with_copy_paste(dataset: dict, max_num_pasted: int = 100) -> dict:
    """mmdet's ``CopyPaste`` of real objects on a dataset config: a ``MultiImageMixDataset`` whose inner set loads
    images and instance masks (``with_mask``; CopyPaste cuts objects by their masks), and whose pipeline pastes, then
    runs the rest of the original pipeline."""
    dataset = copy.deepcopy(dict(dataset))
    end = _loading_end(dataset)
    loading, rest = dataset['pipeline'][:end], dataset['pipeline'][end:]
    loading[-1] = dict(loading[-1], with_mask=True)
    return dict(type='MultiImageMixDataset', dataset=dict(dataset, pipeline=loading),
                pipeline=[dict(type='CopyPaste', max_num_pasted=max_num_pasted), *rest])
