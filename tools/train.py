"""Train an mmdet detector from a config on mmengine's Runner (our components registered).

Equivalent to mmdet's own ``tools/train.py`` for the options here; works for stock mmdet configs that
add ``custom_imports=dict(imports=['mmdet_detdiffusion'])``.

Example::

    python tools/train.py projects/toy_shapes/configs/detector/retinanet_r18-w16_fpn_1xb8-12e_shapes.py \\
        --data-root data/shapes
    python tools/train.py CONFIG --max-epochs 4         # a shorter run: schedule and intervals rescaled
    python tools/train.py \\
        projects/toy_shapes/configs/detector/retinanet_r18-w16_fpn_1xb8-12e_shapes-detdiffusion-online.py \\
        --data-root data/shapes --cfg-options generator=GEN_DIR/export   # every DetDiffusionGenerate uses it
    torchrun --nproc_per_node 8 tools/train.py CONFIG --launcher pytorch
"""
from mmengine.runner import Runner

import mmdet_detdiffusion  # noqa: F401  (registers components and the checkpoint allow-list)
from mmdet_detdiffusion.utils.train_cli import build_train_config, train_arg_parser


def main() -> None:
    args = train_arg_parser(__doc__.split('\n\n')[0]).parse_args()
    Runner.from_cfg(build_train_config(args)).train()


if __name__ == '__main__':
    main()
