"""Command-line options and config handling shared by ``tools/train.py`` and ``tools/train_generator.py``."""
import argparse
import logging
import os

import torch
from mmengine.config import Config, DictAction
from mmengine.logging import print_log

from mmdet_detdiffusion.utils.config import schedule_overruns, set_data_root, set_max_epochs, set_online_generator
from mmdet_detdiffusion.utils.distributed import init_distributed


def train_arg_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('config', help='train config file')
    parser.add_argument('--work-dir', help='where logs and checkpoints go (default work_dirs/<config>)')
    parser.add_argument('--resume', nargs='?', const='auto', default=None,
                        help='resume from the latest checkpoint in the work dir, or from the given one')
    parser.add_argument('--data-root', help='point every dataset (and evaluator ann_file) at this folder')
    parser.add_argument('--max-epochs', type=int,
                        help='train this many epochs, the epoch-based schedule, validation and checkpoint '
                             'intervals rescaled to fit (before --cfg-options)')
    parser.add_argument('--amp', action='store_true', help='mixed precision (GPU): bf16 where supported')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys; an online-generation config takes its generator as generator=PATH')
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
    if args.max_epochs:
        set_max_epochs(cfg, args.max_epochs)
    if args.cfg_options:
        transform_level = [key for key in args.cfg_options if key.endswith('.generator')]
        if transform_level and cfg.get('generator') is not None:
            # the top-level key is written into every transform below and would undo these
            raise ValueError(f'--cfg-options {transform_level}: this config sets its generator once, as the '
                             'top-level key: use --cfg-options generator=PATH')
        cfg.merge_from_dict(args.cfg_options)
    set_online_generator(cfg)
    for message in schedule_overruns(cfg):
        print_log(message, logger='current', level=logging.WARNING)
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
