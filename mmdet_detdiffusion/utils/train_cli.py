"""Command-line options and config handling shared by ``tools/train.py`` and ``tools/train_generator.py``."""
import argparse
import os

import torch
from mmengine.config import Config, DictAction

from mmdet_detdiffusion.utils.config import set_data_root
from mmdet_detdiffusion.utils.distributed import init_distributed


def train_arg_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('config', help='train config file')
    parser.add_argument('--work-dir', help='where logs and checkpoints go (default work_dirs/<config>)')
    parser.add_argument('--resume', nargs='?', const='auto', default=None,
                        help='resume from the latest checkpoint in the work dir, or from the given one')
    parser.add_argument('--data-root', help='point every dataset (and evaluator ann_file) at this folder')
    parser.add_argument('--amp', action='store_true', help='mixed precision (GPU): bf16 where supported')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return parser


def build_train_config(args: argparse.Namespace) -> Config:
    """Config of ``args.config`` with the command-line options applied."""
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.data_root:
        set_data_root(cfg, args.data_root)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or os.path.join(
        'work_dirs', os.path.splitext(os.path.basename(args.config))[0])
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            cfg.optim_wrapper.dtype = 'bfloat16'
        else:
            cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.launcher != 'none' and not torch.cuda.is_available():
        init_distributed(args.launcher)  # the Runner then skips its own CUDA-only start
        cfg.model_wrapper_cfg = {**(cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel')),
                                 'device_ids': None}
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume:
        cfg.resume, cfg.load_from = True, args.resume
    return cfg


def fill_generator_classes(cfg: Config) -> Config:
    """``model.classes`` defaults to the training dataset's class names (its metainfo or class default)."""
    if cfg.model.get('classes'):
        return cfg
    from mmdet.registry import DATASETS
    from mmengine.registry import init_default_scope
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    dataset_cfg = cfg.train_dataloader.dataset
    metainfo = dataset_cfg.get('metainfo') or {}
    classes = metainfo.get('classes') or DATASETS.get(dataset_cfg.type).METAINFO['classes']
    cfg.model.classes = tuple(classes)
    return cfg
