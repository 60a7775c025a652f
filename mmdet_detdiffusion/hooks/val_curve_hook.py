"""ValCurveHook: every validation's metrics with its iteration, in one JSON file of the run (a learning curve)."""
import json
import os
from typing import Dict, List, Optional

from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmdet_detdiffusion.utils.fileio import atomic_write_json

CURVE_FILE = 'val_curve.json'


def load_curve(path: str) -> List[dict]:
    """The points ``[{'iter': int, 'metrics': {name: float}}]`` of a curve file, in iteration order."""
    with open(path) as f:
        points = json.load(f)
    if not isinstance(points, list) or not all(isinstance(p, dict) and {'iter', 'metrics'} <= set(p)
                                               for p in points):
        raise ValueError(f'{path}: expected a list of {{"iter", "metrics"}} points (ValCurveHook\'s file)')
    return sorted(points, key=lambda p: p['iter'])


@HOOKS.register_module()
class ValCurveHook(Hook):
    """After each validation, append ``{'iter': runner.iter, 'metrics': {name: value}}`` to
    ``{work_dir}/{file_name}`` (written atomically). A resumed run keeps the points up to the iteration it resumes
    from and redoes the later ones, so the file holds one point per validation (mmengine's resume reseeds rather
    than restores the random state, so a resumed run's later points are not bit for bit an uninterrupted run's).

    In a config: ``custom_hooks = [dict(type='ValCurveHook')]`` with ``train_cfg.val_interval`` = the spacing.
    """

    priority = 'LOW'

    def __init__(self, file_name: str = CURVE_FILE):
        self.file_name = file_name
        self.points: List[dict] = []

    def path(self, runner: Runner) -> str:
        """The run's curve file."""
        return os.path.join(runner.work_dir, self.file_name)

    def before_train(self, runner: Runner) -> None:
        path = self.path(runner)
        self.points = [p for p in load_curve(path) if p['iter'] <= runner.iter] if os.path.isfile(path) else []

    def after_val_epoch(self, runner: Runner, metrics: Optional[Dict[str, float]] = None) -> None:
        values = {name: float(value) for name, value in (metrics or {}).items()
                  if isinstance(value, (int, float))}
        self.points = [p for p in self.points if p['iter'] != runner.iter] + [dict(iter=runner.iter, metrics=values)]
        atomic_write_json(self.points, self.path(runner))
