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


def label_with_alternating_attributes(ann_file: str, out_file: str) -> dict:
    """Copy of a COCO file whose annotations get pa_attr easy, hard, easy, ... (a stand-in for a detector)."""
    import json
    coco = json.load(open(ann_file))
    for i, ann in enumerate(coco['annotations']):
        ann['pa_attr'] = 'easy' if i % 2 == 0 else 'hard'
    with open(out_file, 'w') as f:
        json.dump(coco, f)
    return coco


def tiny_generator_cfg(data_root: str, work_dir: str, ann_file: str = 'annotations/train_pa_attr.json',
                       resolution: int = 32) -> Config:
    """The toy generator config shrunk for tests: 32x32 pixels, a few thousand U-Net parameters."""
    cfg = Config.fromfile(os.path.join(REPO, 'configs', 'generator',
                                       'detdiffusion_toy-coordunet_1xb16-100e_shapes-64x64.py'))
    from mmdet_detdiffusion.utils.config import set_data_root
    set_data_root(cfg, data_root)
    unet = cfg.model.unet.config
    unet.update(sample_size=resolution, block_out_channels=(16, 32, 32), cross_attention_dim=32)
    cfg.model.text_encoder.config.update(hidden_size=32, intermediate_size=64, num_attention_heads=2)
    cfg.model.location_bins = 16
    cfg.model.perception_head = dict(channels=16, num_convs=1)
    cfg.train_dataloader.dataset.ann_file = ann_file
    cfg.train_dataloader.batch_size = 4
    for transform in cfg.train_dataloader.dataset.pipeline:
        if transform.type == 'Resize':
            transform.scale = (resolution, resolution)
    cfg.work_dir = work_dir
    cfg.param_scheduler = []
    cfg.custom_hooks = []
    cfg.default_hooks.logger.interval = 1
    return cfg
