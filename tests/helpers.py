"""Helpers for tests that build and train tiny detectors on the shapes data."""
import os

from mmengine.config import Config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHAPES_SIZE = 128


def toy_detector_cfg(config_name: str, data_root: str, work_dir: str, max_epochs: int = 1,
                     **overrides) -> Config:
    """A toy detector config from ``configs/detector`` pointed at ``data_root``, quiet and short."""
    from mmdet_detdiffusion.utils.config import set_data_root
    cfg = set_data_root(Config.fromfile(os.path.join(REPO, 'configs', 'detector', config_name)), data_root)
    cfg.work_dir = work_dir
    cfg.train_cfg.max_epochs = max_epochs
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None  # no validation in tests
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint.interval = 1
    cfg.default_hooks.logger.interval = 100
    cfg.randomness = dict(seed=0)
    cfg.merge_from_dict(overrides)
    return cfg


def train_detector(cfg: Config, work_dir: str):
    """Train with a Runner, dump the config beside the checkpoint; return ``(config_path, checkpoint)``."""
    from mmengine.runner import Runner
    Runner.from_cfg(cfg).train()
    config_path = os.path.join(work_dir, 'detector_config.py')
    cfg.dump(config_path)
    return config_path, os.path.join(work_dir, f'epoch_{cfg.train_cfg.max_epochs}.pth')
