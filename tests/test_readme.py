"""README's toy walk-through stays runnable: its tools, configs and flags exist, and each step reads the paths
the step before it writes."""
import os
import re
import shlex
import subprocess
import sys
from typing import Dict, List

from mmengine.config import Config

from helpers import REPO


def walkthrough_commands() -> List[List[str]]:
    """The ``python tools/...`` commands of README's walk-through block, as argument lists."""
    readme = open(os.path.join(REPO, 'README.md')).read()
    section = readme[readme.index('## Walk-through'):]
    block = re.search(r'```bash\n(.*?)```', section, re.S).group(1)
    lines = block.replace('\\\n', ' ').splitlines()
    return [shlex.split(line)[1:] for line in lines if line.startswith('python tools/')]


def option(args: List[str], name: str) -> str:
    return args[args.index(name) + 1]


def stem(config: str) -> str:
    return os.path.splitext(os.path.basename(config))[0]


def test_walkthrough_tools_configs_and_flags_exist():
    commands = walkthrough_commands()
    assert [os.path.basename(c[0]) for c in commands] == [
        'make_shapes_dataset.py', 'train.py', 'label_attributes.py', 'train_generator.py', 'generate.py', 'train.py',
        'generate.py', 'evaluate_fidelity.py']
    helps: Dict[str, str] = {}
    for args in commands:
        tool = args[0]
        assert os.path.isfile(os.path.join(REPO, tool)), tool
        if tool not in helps:
            helps[tool] = subprocess.run([sys.executable, tool, '--help'], cwd=REPO, capture_output=True, text=True,
                                         timeout=300).stdout
        for arg in args[1:]:
            if arg.startswith('--'):
                assert arg in helps[tool], f'{tool} has no {arg}'
            elif arg.startswith('configs/'):
                assert os.path.isfile(os.path.join(REPO, arg)), arg


def test_each_step_reads_what_the_step_before_writes():
    data, train_d, label, train_g, generate, train_mixed, generate_val, fidelity = walkthrough_commands()
    data_root = data[1].rstrip('/') + '/'
    assert option(train_d, '--data-root').rstrip('/') + '/' == data_root
    checkpoint = f'work_dirs/{stem(train_d[1])}/epoch_{option(train_d, "--max-epochs")}.pth'
    assert label[1:3] == [train_d[1], checkpoint] and fidelity[1:3] == [train_d[1], checkpoint]
    generator_cfg = Config.fromfile(os.path.join(REPO, train_g[1]))
    assert option(label, '--out') == data_root + generator_cfg.train_dataloader.dataset.ann_file
    export = f'work_dirs/{stem(train_g[1])}/export'
    assert generate[1] == export and generate_val[1] == export
    assert option(generate, '--ann-file') == option(label, '--out')
    mixed_cfg = Config.fromfile(os.path.join(REPO, train_mixed[1]))
    synthetic_root = mixed_cfg.train_dataloader.dataset.synthetic[0].data_root
    assert option(generate, '--out').rstrip('/') == synthetic_root.rstrip('/')
    assert option(generate_val, '--ann-file') == option(fidelity, '--real-ann-file') == \
        data_root + 'annotations/val.json'
    assert option(fidelity, '--generated') == option(generate_val, '--out')
