"""The library imported alone, as a user without ``projects/toy_shapes`` has it (from the checkout, and from a wheel
built from it): easy and hard in the attribute slot, no toy module, no toy U-Net among the generator components."""
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from helpers import REPO

# argv[1]: the folder the package must be imported from
CHECK = '''
import sys
import mmdet_detdiffusion
from mmdet_detdiffusion.generator.components import GENERATOR_COMPONENTS
from mmdet_detdiffusion.layout.attributes import ATTRIBUTE_TOKENS
assert mmdet_detdiffusion.__file__.startswith(sys.argv[1]), mmdet_detdiffusion.__file__
assert list(ATTRIBUTE_TOKENS) == ['easy', 'hard'], list(ATTRIBUTE_TOKENS)
projects = sorted(name for name in sys.modules if name == 'projects' or name.startswith('projects.'))
assert not projects, projects
assert 'CoordUNet2DConditionModel' not in GENERATOR_COMPONENTS, sorted(GENERATOR_COMPONENTS.module_dict)
print('ok')
'''


def check_library_alone(package_root: str, **kwargs) -> None:
    proc = subprocess.run([sys.executable, '-c', CHECK, package_root], capture_output=True, text=True, timeout=300,
                          **kwargs)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith('ok')


def checkout_copy(folder: str) -> str:
    """The checkout's files (tracked, and untracked ones git does not ignore) copied to ``folder``: a build there
    reads no ``build/`` left over from an earlier one, which setuptools would pack as it is."""
    files = subprocess.run(['git', 'ls-files', '-co', '--exclude-standard'], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.splitlines()
    for name in files:
        if os.path.isfile(os.path.join(REPO, name)):
            os.makedirs(os.path.dirname(os.path.join(folder, name)), exist_ok=True)
            shutil.copy2(os.path.join(REPO, name), os.path.join(folder, name))
    return folder


def test_importing_the_library_registers_nothing_of_the_toy():
    check_library_alone(REPO, cwd=REPO)


@pytest.mark.slow
def test_wheel_holds_the_library_alone_and_imports_without_the_toy(tmp_path):
    source = checkout_copy(str(tmp_path / 'checkout'))
    build = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '--no-build-isolation',
                            '-w', str(tmp_path / 'dist'), source], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-3000:]
    wheel, = (tmp_path / 'dist').glob('mmdet_detdiffusion-*.whl')
    names = zipfile.ZipFile(wheel).namelist()
    assert any(name.startswith('mmdet_detdiffusion/generator/') for name in names)
    assert not [name for name in names if name.startswith(('projects/', 'tests/', 'tools/')) or 'toy' in name]
    target = tmp_path / 'site'
    install = subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '--no-deps', '--target', str(target),
                              str(wheel)], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-3000:]
    # outside the checkout, with the wheel's copy first on the path
    check_library_alone(str(target), cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(target)))
