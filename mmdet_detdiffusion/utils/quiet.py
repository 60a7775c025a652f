"""Silence third-party notices that a user of this package can do nothing about, and keep the logs of
the runners a tool starts by the dozen in their log files."""
import logging
import warnings
from typing import Optional, Union

from mmengine.logging import MMLogger
from mmengine.runner import Runner


def quiet_third_party_warnings() -> None:
    """Hide setuptools' ``pkg_resources is deprecated`` notice when mmengine triggers it.

    mmengine imports (and ``importlib.reload``s) ``pkg_resources`` each time a config names an
    ``mmdet::`` base, so every tool printed the notice several times. The filter is limited to
    imports made by mmengine and importlib: a user's own ``import pkg_resources`` still warns.
    """
    warnings.filterwarnings('ignore', message='pkg_resources is deprecated', category=UserWarning,
                            module=r'(mmengine|importlib)\b')


class QuietRunner(Runner):
    """A Runner whose console shows warnings and errors only; its log file keeps everything (environment,
    config dump, progress, the COCO tables), so that a tool scoring several sets prints its own summary."""

    def build_logger(self, log_level: Union[int, str] = 'INFO', log_file: Optional[str] = None,
                     **kwargs) -> MMLogger:
        logger = super().build_logger(log_level, log_file, **kwargs)
        for handler in logger.handlers:
            if not isinstance(handler, logging.FileHandler):  # the console handler
                handler.setLevel(max(handler.level, logging.WARNING))
        return logger
