"""Train the DetDiffusion generator on mmengine's Runner (AMP, gradient accumulation, EMA, resume, DDP).

The training set is a COCO json with ``pa_attr`` per box (``tools/label_attributes.py``). The Runner
writes checkpoints, logs, sample grids (``samples/``) and, at the end, the diffusers export
(``export/``) into the work dir.

Examples::

    python tools/train_generator.py configs/generator/toy_shapes_pixel64.py --data-root data/shapes
    python tools/train_generator.py CONFIG --resume                      # continue an interrupted run
    torchrun --nproc_per_node 8 tools/train_generator.py configs/generator/detdiffusion_sd15_coco_256.py \\
        --launcher pytorch --amp
"""
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

import mmdet_detdiffusion  # noqa: F401  (registers components and the checkpoint allow-list)
from mmdet_detdiffusion.utils.train_cli import build_train_config, train_arg_parser


def fill_classes(cfg: Config) -> Config:
    """``model.classes`` defaults to the training dataset's class names (its metainfo or class default)."""
    if cfg.model.get('classes'):
        return cfg
    from mmdet.registry import DATASETS
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    dataset_cfg = cfg.train_dataloader.dataset
    metainfo = dataset_cfg.get('metainfo') or {}
    classes = metainfo.get('classes') or DATASETS.get(dataset_cfg.type).METAINFO['classes']
    cfg.model.classes = tuple(classes)
    return cfg


def main() -> None:
    args = train_arg_parser(__doc__.split('\n\n')[0]).parse_args()
    Runner.from_cfg(fill_classes(build_train_config(args))).train()


if __name__ == '__main__':
    main()
