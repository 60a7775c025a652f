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
from mmengine.runner import Runner

import mmdet_detdiffusion  # noqa: F401  (registers components and the checkpoint allow-list)
from mmdet_detdiffusion.utils.train_cli import build_train_config, fill_generator_classes, train_arg_parser


def main() -> None:
    args = train_arg_parser(__doc__.split('\n\n')[0]).parse_args()
    Runner.from_cfg(fill_generator_classes(build_train_config(args))).train()


if __name__ == '__main__':
    main()
