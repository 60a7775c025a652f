"""Train the DetDiffusion generator on mmengine's Runner (AMP, gradient accumulation, EMA, resume, DDP).

The training set is a COCO json with ``pa_attr`` per box (``tools/label_attributes.py``). The Runner
writes checkpoints, logs, sample grids (``samples/``) and, at the end, the diffusers export
(``export/``) into the work dir.

Examples::

    python tools/train_generator.py \\
        projects/toy_shapes/configs/generator/detdiffusion_toy-base_1xb16-30e_shapes-64x64.py \\
        --data-root data/shapes     # the toy generator, fine-tuned from the bundled toy base
    python tools/train_generator.py CONFIG --resume                      # continue an interrupted run
    python tools/train_generator.py CONFIG --max-epochs 10               # a shorter run, schedule rescaled
    torchrun --nproc_per_node 8 tools/train_generator.py \\
        configs/generator/detdiffusion_sd15_8xb32-60e_coco-256x256.py --launcher pytorch --amp
"""
from mmengine.runner import Runner

import mmdet_detdiffusion  # noqa: F401  (registers components and the checkpoint allow-list)
from mmdet_detdiffusion.utils.config import check_generator_classes
from mmdet_detdiffusion.utils.train_cli import build_train_config, train_arg_parser


def main() -> None:
    args = train_arg_parser(__doc__.split('\n\n')[0]).parse_args()
    cfg = build_train_config(args)
    check_generator_classes(cfg)
    Runner.from_cfg(cfg).train()


if __name__ == '__main__':
    main()
