"""Make the project's toy base model from scratch, in one command: train the toy generator on the
endless shapes stream, stage after stage, then write the base that the demo fine-tunes, as DetDiffusion
fine-tunes Stable Diffusion.

    python projects/toy_shapes/tools/make_toy_base.py    # -> projects/toy_shapes/assets/toy_shapes_base
    python projects/toy_shapes/tools/make_toy_base.py --amp --cfg-options train_dataloader.num_workers=12   # on a GPU

A stage config that names a ``previous_stage`` (a sibling config) starts from that stage's base: it is
trained first, in ``WORK_DIR/<its config name>``, unless its base is already written there, and its U-Net
and text encoder become this stage's starting weights. Every stage resumes from its last checkpoint when
the command is run again.

Writes ``unet/`` and ``text_encoder/`` (diffusers / transformers folders) and ``base.json``: the config,
seed, iterations, batch size, commit and device that made it, and the previous stage's record. The embedding
rows of CLIP words that the prompts never use are set to zero, so that the text encoder file compresses well
in git; the prompts' own words and every layout token keep their rows.
"""
import argparse
import datetime
import json
import os
import shutil
import subprocess

import torch
from mmengine.config import Config, DictAction
from mmengine.runner import Runner

import mmdet_detdiffusion  # noqa: F401
import projects.toy_shapes.toy_shapes  # noqa: F401
from mmdet_detdiffusion.generator.export import load_exported_generator
from mmdet_detdiffusion.generator.pipeline import read_export_config
from mmdet_detdiffusion.generator.text import layout_tokens
from mmdet_detdiffusion.layout.prompt import PROMPT_PREFIX
from mmdet_detdiffusion.utils.config import check_generator_classes

PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# project-relative, as base.json records it
DEFAULT_CONFIG = 'configs/generator/layout-pretrain_toy-coordunet_1xb32-1600iters_shapes-stream-64x64-slot.py'
BASE_RECORD = 'base.json'


def prompt_token_ids(tokenizer, classes, grid) -> torch.Tensor:
    """Ids of every token a layout prompt over ``classes`` can contain (special tokens included)."""
    words = tokenizer(' '.join([PROMPT_PREFIX, *classes])).input_ids  # with BOS and EOS (also the padding)
    return torch.tensor(sorted(set(words) | set(tokenizer.convert_tokens_to_ids(layout_tokens(grid)))))


def git_commit() -> str:
    """HEAD's commit, with ``+dirty`` when tracked files differ from it; ``unknown`` outside git."""
    try:
        commit = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=PROJECT, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(['git', 'diff', '--quiet', 'HEAD'], cwd=PROJECT).returncode != 0
    except (OSError, subprocess.CalledProcessError):
        return 'unknown'
    return commit + ('+dirty' if dirty else '')


def write_base(export: str, out_dir: str, record: dict) -> int:
    """Write the base model of a generator export to ``out_dir`` (atomically); return the rows kept."""
    model = load_exported_generator(export, device='cpu')
    table = model.text_encoder.get_input_embeddings().weight
    keep = torch.zeros(len(table), dtype=torch.bool)
    keep[prompt_token_ids(model.tokenizer, model.classes, model.grid)] = True
    with torch.no_grad():
        table[~keep] = 0.0
    tmp_dir = os.path.abspath(out_dir) + '.tmp'
    shutil.rmtree(tmp_dir, ignore_errors=True)
    model.unet.save_pretrained(os.path.join(tmp_dir, 'unet'))
    model.text_encoder.save_pretrained(os.path.join(tmp_dir, 'text_encoder'))
    record = dict(record, classes=list(model.classes), location_bins=model.grid.bins, kept_token_rows=int(keep.sum()),
                  data_filters=read_export_config(export)['data_filters'])
    with open(os.path.join(tmp_dir, BASE_RECORD), 'w') as f:
        json.dump(record, f, indent=2)
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(tmp_dir, out_dir)
    return int(keep.sum())


def train_stage(config: str, work_dir: str, out_dir: str, args: argparse.Namespace, commit: str) -> dict:
    """Train the stage of ``config`` (relative to the project folder, or absolute) in ``work_dir``, its previous
    stages first, and write its base to ``out_dir``; return the base's record."""
    cfg = Config.fromfile(os.path.join(PROJECT, config))
    previous = None
    if cfg.get('previous_stage'):
        previous_config = os.path.join(os.path.dirname(config), cfg.previous_stage)
        stage_dir = os.path.join(work_dir, os.path.splitext(cfg.previous_stage)[0])
        previous_base = os.path.join(stage_dir, 'base')
        if os.path.isfile(os.path.join(previous_base, BASE_RECORD)):
            print(f'previous stage already written to {previous_base}')
            with open(os.path.join(previous_base, BASE_RECORD)) as f:
                previous = json.load(f)
        else:
            previous = train_stage(previous_config, stage_dir, previous_base, args, commit)
        for part in ('unet', 'text_encoder'):
            cfg.model[part].from_pretrained = os.path.abspath(os.path.join(previous_base, part))
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.work_dir = work_dir
    cfg.resume = True  # continue from the last checkpoint of an interrupted run (a fresh start if none)
    if args.amp:
        cfg.optim_wrapper.update(type='AmpOptimWrapper', dtype='bfloat16')
    check_generator_classes(cfg)
    runner = Runner.from_cfg(cfg)
    runner.train()
    record = dict(config=config, seed=cfg.seed, max_iters=cfg.train_cfg.max_iters,
                  batch_size=cfg.train_dataloader.batch_size, iterations=runner.iter, amp=args.amp,
                  cfg_options=args.cfg_options or {}, commit=commit,
                  device=torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu',
                  torch=torch.__version__, date=datetime.date.today().isoformat(), previous_stage=previous)
    kept = write_base(os.path.join(work_dir, 'export'), out_dir, record)
    print(f'toy base written to {out_dir} ({runner.iter} iterations of {config}; {kept} token rows kept)')
    with open(os.path.join(out_dir, BASE_RECORD)) as f:
        return json.load(f)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--config', default=DEFAULT_CONFIG,
                        help='config of the last stage (relative to projects/toy_shapes, or absolute)')
    parser.add_argument('--work-dir', default='work_dirs/toy_shapes_base',
                        help='checkpoints, samples and export of the last stage; earlier stages in sub-folders')
    parser.add_argument('--out', default=os.path.join(PROJECT, 'assets', 'toy_shapes_base'),
                        help='base model folder to write')
    parser.add_argument('--amp', action='store_true', help='mixed precision (bf16) on a GPU')
    parser.add_argument('--commit', help='commit to record (default: git rev-parse HEAD of this checkout)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys of every stage (recorded; the recipe test expects none that '
                             'change it)')
    args = parser.parse_args()
    commit = args.commit or git_commit()  # the code that trains, before anything changes under it
    train_stage(args.config, args.work_dir, args.out, args, commit)


if __name__ == '__main__':
    main()
