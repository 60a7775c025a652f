"""Config helpers shared by tools, the demo and the tests."""
from mmengine.config import Config

from mmdet_detdiffusion.datasets.utils import iter_datasets


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
