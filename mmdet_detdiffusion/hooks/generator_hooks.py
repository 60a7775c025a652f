"""Hooks for generator training: a periodic sample grid and the diffusers export.

Resuming a finished run trains nothing; both hooks then keep what that run wrote after training (the same
weights) instead of drawing and writing it again.
"""
import os
from typing import Optional

from mmdet.registry import HOOKS
from mmengine import dist
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmdet_detdiffusion.datasets.utils import base_dataset
from mmdet_detdiffusion.generator.export import export_generator
from mmdet_detdiffusion.visualization import draw_boxes, save_image, tile_grid


class _AfterTrainOutput(Hook):
    """A hook whose after-training output is kept when the run trained no iteration (a finished run resumed)."""

    _start_iter: Optional[int] = None

    def before_train(self, runner) -> None:
        self._start_iter = runner.iter

    def kept(self, runner, path: str, what: str) -> bool:
        """Whether ``path`` (written after training) is kept: it exists and this run trained no iteration."""
        if runner.iter == self._start_iter and os.path.exists(path):
            runner.logger.info(f'{what} of iteration {runner.iter} kept in {path}: no iteration trained')
            return True
        return False


def _generator(runner):
    """The model to sample/export with: the EMA average when an EMAHook keeps one."""
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    for hook in runner.hooks:
        ema = getattr(hook, 'ema_model', None)
        if ema is not None:
            return ema.module
    return model


@HOOKS.register_module()
class GeneratorSampleHook(_AfterTrainOutput):
    """Every ``interval`` iterations (and after training) generate images for the first ``num_samples``
    training layouts and save a grid ``{work_dir}/samples/iter_{N}.png``: real images (top) and
    generated ones (bottom), each with the layout boxes drawn in its attribute's colour
    (:data:`~mmdet_detdiffusion.visualization.ATTR_COLOURS`). The grid also goes to the runner's visualizer as
    image ``generator_samples`` at step N, for its backends (TensorBoard, W&B...)."""

    priority = 'LOW'

    def __init__(self, interval: int = 1000, num_samples: int = 8, num_inference_steps: int = 25,
                 guidance_scale: float = 5.0, seed: int = 0):
        self.interval = interval
        self.num_samples = num_samples
        self.num_inference_steps = num_inference_steps
        self.guidance_scale = guidance_scale
        self.seed = seed

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self.every_n_train_iters(runner, self.interval):
            self.save_grid(runner, runner.iter + 1)  # the loop counts this iteration after the hook

    def after_train(self, runner) -> None:
        if not self.kept(runner, self.grid_path(runner, runner.iter), 'generator samples'):
            self.save_grid(runner, runner.iter)

    @staticmethod
    def grid_path(runner, iters_done: int) -> str:
        """``{work_dir}/samples/iter_{iters_done}.png``."""
        return os.path.join(runner.work_dir, 'samples', f'iter_{iters_done}.png')

    def save_grid(self, runner, iters_done: int) -> Optional[str]:
        """Write ``samples/iter_{iters_done}.png`` and show it to the visualizer, on the main process; return
        the file's path."""
        if not dist.is_main_process():
            return None
        model = _generator(runner)
        dataset = runner.train_dataloader.dataset
        samples = [dataset[i] for i in range(min(self.num_samples, len(dataset)))]
        batch = model.data_preprocessor(dict(inputs=[s['inputs'] for s in samples],
                                             data_samples=[s['data_samples'] for s in samples]))
        layouts = [model.layout_of(sample) for sample in batch['data_samples']]
        height, width = batch['inputs'].shape[-2:]
        was_training = model.training
        model.eval()
        generated = model.sample(layouts, height, width, self.num_inference_steps, self.guidance_scale, self.seed)
        model.train(was_training)
        real = ((batch['inputs'] + 1) * 127.5).round().clamp(0, 255).byte().permute(0, 2, 3, 1).cpu()
        tiles = []
        for images in (real, generated):
            for image, layout in zip(images.numpy(), layouts):
                tiles.append(draw_boxes(
                    image[:, :, ::-1].copy(), [[v * s for v, s in zip(o.box, (width, height, width, height))]
                                               for o in layout],
                    [o.name for o in layout], [o.attr for o in layout], scale=max(1, 256 // width)))
        grid = tile_grid(tiles, columns=len(layouts))
        path = self.grid_path(runner, iters_done)
        save_image(path, grid)
        runner.visualizer.add_image('generator_samples', grid[:, :, ::-1].copy(), step=iters_done)  # wants RGB
        runner.logger.info(f'generator samples saved to {path}')
        return path


@HOOKS.register_module()
class GeneratorExportHook(_AfterTrainOutput):
    """After training, write the (EMA) generator as a diffusers folder to ``out_dir``
    (default ``{work_dir}/export``). Before training, it refuses a model whose classes are not its training
    set's: prompts would name the wrong objects, and the export would carry the wrong names (this holds under
    stock mmengine/mmdet tools too)."""

    priority = 'LOWEST'

    def __init__(self, out_dir: Optional[str] = None):
        self.out_dir = out_dir

    def before_train(self, runner) -> None:
        super().before_train(runner)
        model_classes = tuple(_generator(runner).classes)
        data_classes = tuple(getattr(runner.train_dataloader.dataset, 'metainfo', {}).get('classes') or ())
        if data_classes and model_classes != data_classes:
            raise ValueError(f'the generator\'s classes {model_classes} differ from its training set\'s '
                             f'{data_classes}: write the tuple once in the config and use it for both '
                             '(model.classes and the dataset\'s metainfo=dict(classes=...))')

    def after_train(self, runner) -> None:
        out_dir = self.out_dir or os.path.join(runner.work_dir, 'export')
        if dist.is_main_process() and not self.kept(runner, out_dir, 'generator export'):
            dataset = base_dataset(runner.train_dataloader.dataset)
            filters = {name: getattr(dataset, name) for name in ('min_box_area_ratio', 'min_object_area_ratio')
                       if hasattr(dataset, name)}
            path = export_generator(_generator(runner), out_dir, data_filters=filters)
            runner.logger.info(f'generator exported to {path}')
        dist.barrier()
