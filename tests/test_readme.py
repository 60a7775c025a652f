"""README's toy walk-through stays runnable: its tools and configs exist, each step reads the paths the step
before it writes, and the whole walk-through runs as printed (its flags included) with tiny sizes."""
import json
import os
import re
import shlex
import subprocess
import sys
from typing import List, Optional

import pytest
from mmengine.config import Config

from helpers import REPO

# README's sizes -> the tiny ones the run test uses (every one must still be in README)
TINY = {'--num-train 200': '--num-train 8', '--num-val 300': '--num-val 4', '--max-epochs 8': '--max-epochs 1',
        '--max-epochs 30': '--max-epochs 1', 'epoch_8.pth': 'epoch_1.pth', '--steps 10': '--steps 1'}
# a walk-through command runs a core tool or a project's tool, on a core config or a project's
COMMAND_PREFIXES = ('python tools/', 'python projects/')
CONFIG_PREFIXES = ('configs/', 'projects/')


def walkthrough_block() -> str:
    """The bash block of README's walk-through section."""
    readme = open(os.path.join(REPO, 'README.md')).read()
    section = readme[readme.index('## Walk-through'):]
    return re.search(r'```bash\n(.*?)```', section, re.S).group(1)


def walkthrough_commands(block: Optional[str] = None) -> List[List[str]]:
    """The ``python tools/...`` and ``python projects/<project>/tools/...`` commands of the walk-through block, as
    argument lists."""
    lines = (block or walkthrough_block()).replace('\\\n', ' ').splitlines()
    return [shlex.split(line)[1:] for line in lines if line.startswith(COMMAND_PREFIXES)]


def read_config(path: str) -> Config:
    """A walk-through config as its file states it, without importing its ``custom_imports`` (the toy package):
    the core suite runs as a user without ``projects/toy_shapes`` has it (``conftest.py``)."""
    return Config.fromfile(os.path.join(REPO, path), import_custom_modules=False)


def option(args: List[str], name: str) -> str:
    return args[args.index(name) + 1]


def stem(config: str) -> str:
    return os.path.splitext(os.path.basename(config))[0]


def test_walkthrough_tools_and_configs_exist():
    commands = walkthrough_commands()
    assert [os.path.basename(c[0]) for c in commands] == [
        'make_shapes_dataset.py', 'train.py', 'label_attributes.py', 'train_generator.py', 'generate.py', 'train.py',
        'generate.py', 'evaluate_fidelity.py']
    for args in commands:
        assert os.path.isfile(os.path.join(REPO, args[0])), args[0]
        for arg in args[1:]:
            if arg.startswith(CONFIG_PREFIXES):
                assert os.path.isfile(os.path.join(REPO, arg)), arg
    # the toy world's data tool and configs are the toy project's; the loop's tools are the core ones
    assert commands[0][0].startswith('projects/toy_shapes/tools/')
    assert all(args[0].startswith('tools/') for args in commands[1:])
    assert all(arg.startswith('projects/toy_shapes/configs/') for args in commands for arg in args[1:]
               if arg.endswith('.py'))


def test_each_step_reads_what_the_step_before_writes():
    data, train_d, label, train_g, generate, train_mixed, generate_val, fidelity = walkthrough_commands()
    data_root = data[1].rstrip('/') + '/'
    for train in (train_d, train_g, train_mixed):  # every training reads the dataset step 0 writes
        assert option(train, '--data-root').rstrip('/') + '/' == data_root
    real_cfg = read_config(train_d[1])
    assert option(label, '--ann-file') == data_root + real_cfg.train_dataloader.dataset.ann_file
    assert option(label, '--img-prefix').rstrip('/') == option(fidelity, '--real-img-prefix').rstrip('/') == \
        data_root + 'images'
    checkpoint = f'work_dirs/{stem(train_d[1])}/epoch_{option(train_d, "--max-epochs")}.pth'
    assert label[1:3] == [train_d[1], checkpoint] and fidelity[1:3] == [train_d[1], checkpoint]
    generator_cfg = read_config(train_g[1])
    assert option(label, '--out') == data_root + generator_cfg.train_dataloader.dataset.ann_file
    export = f'work_dirs/{stem(train_g[1])}/export'
    assert generate[1] == export and generate_val[1] == export
    assert option(generate, '--ann-file') == option(label, '--out')
    mixed_cfg = read_config(train_mixed[1])
    assert mixed_cfg.train_dataloader.dataset.real.ann_file == real_cfg.train_dataloader.dataset.ann_file
    synthetic_root = mixed_cfg.train_dataloader.dataset.synthetic[0].data_root
    assert option(generate, '--out').rstrip('/') == synthetic_root.rstrip('/')
    assert option(generate_val, '--ann-file') == option(fidelity, '--real-ann-file') == \
        data_root + 'annotations/val.json'
    assert option(fidelity, '--generated') == option(generate_val, '--out')


@pytest.mark.slow
def test_walkthrough_runs_as_printed_with_tiny_sizes(tmp_path):
    block = walkthrough_block()
    for readme_size, tiny in TINY.items():
        assert readme_size in block, readme_size
        block = block.replace(readme_size, tiny)
    for folder in ('tools', 'configs', 'projects'):  # a user's checkout: relative paths as in README
        os.symlink(os.path.join(REPO, folder), tmp_path / folder)
    for args in walkthrough_commands(block):
        proc = subprocess.run([sys.executable, *args], cwd=tmp_path, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f'{" ".join(args)}\n{proc.stderr[-3000:]}'
    synthetic = json.load(open(tmp_path / 'data' / 'shapes_synthetic_hard' / 'annotations.json'))
    assert len(synthetic['images']) == 8 and {a['pa_attr'] for a in synthetic['annotations']} == {'hard'}
    assert os.path.isfile(tmp_path / 'work_dirs' / 'retinanet_r18-w16_fpn_1xb8-12e_shapes-detdiffusion' /
                          'epoch_1.pth')
    assert 'shapes_val_hard' in proc.stdout  # evaluate_fidelity's table names the scored set
