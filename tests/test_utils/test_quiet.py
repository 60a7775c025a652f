"""Importing the package hides setuptools' pkg_resources notice that mmengine triggers, and only that one."""
import subprocess
import sys

import pytest

from helpers import REPO

# an mmdet:: base makes mmengine import pkg_resources, then importlib.reload it: two notices before the filter
LOAD_CONFIG = 'from mmengine.config import Config; Config.fromfile({path!r})'


@pytest.mark.parametrize('user_import, shown', [(False, []), (True, ['<string>:1:'])])
def test_mmengine_pkg_resources_notice_is_hidden_and_the_users_own_is_not(tmp_path, user_import, shown):
    config = tmp_path / 'config.py'
    config.write_text("_base_ = 'mmdet::_base_/default_runtime.py'\n")
    script = ('import pkg_resources; ' if user_import else '') + 'import mmdet_detdiffusion\n' + \
        LOAD_CONFIG.format(path=str(config))
    result = subprocess.run([sys.executable, '-c', script], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    notices = [line.split()[0] for line in result.stderr.splitlines() if 'pkg_resources is deprecated' in line]
    assert notices == shown, result.stderr
