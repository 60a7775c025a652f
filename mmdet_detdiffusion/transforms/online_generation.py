"""DetDiffusionGenerate: replace a training image, with probability ``prob``, by a generation from its boxes.

Place it after ``LoadAnnotations`` and **before** ``LoadImageFromFile`` (the cheap way: it points
``img_path`` at the generated file, so every sample is decoded once), or after ``LoadImageFromFile`` (it
then replaces ``results['img']``)::

    train_pipeline = [
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='DetDiffusionGenerate', generator='work_dirs/gen/export', prob=0.5, attr_mode='hard',
             cache_dir='data/detdiffusion_cache'),
        dict(type='LoadImageFromFile'), ...]

Generations are made at the generator's resolution, resized to the image's size (so the boxes stay
the labels) and cached on disk under a key of (generator, image, boxes, labels, attributes, settings,
variant); later epochs read them back. ``num_variants`` > 1 keeps several generations per image.

Processes and devices: the pipeline is loaded lazily in the process that first needs it and never
pickled, so every DataLoader worker loads its own. CUDA cannot be used in workers forked from a
process that has initialised it (the trainer always has), so ``device='auto'`` generates on the GPU
only in the main process (num_workers=0) or in workers started with ``spawn``/``forkserver``
(``env_cfg=dict(mp_cfg=dict(mp_start_method='spawn'))``), and on the CPU in forked workers. With a
filled cache no worker needs the generator at all.
"""
import hashlib
import json
import multiprocessing
import os
import zlib
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
import torch.utils.data
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS

from mmdet_detdiffusion.generator.pipeline import DetDiffusionPipeline, generator_identity, uint8_images
from mmdet_detdiffusion.layout.attributes import ATTR_NAMES, GENERATION_MODES, HARD, MODE_ORIGINAL, NO_ATTR_CODE
from mmdet_detdiffusion.utils.fileio import atomic_write_bytes


def _in_forked_worker() -> bool:
    return (torch.utils.data.get_worker_info() is not None
            and multiprocessing.get_start_method(allow_none=True) in (None, 'fork'))


@TRANSFORMS.register_module()
class DetDiffusionGenerate(BaseTransform):
    """Online DetDiffusion generation inside an mmdet pipeline (see module docstring).

    Args:
        generator: generator export folder.
        cache_dir: folder of cached generations.
        prob: probability of replacing an image.
        attr_mode: ``'hard'``, ``'easy'`` or ``'original'`` (needs ``LoadPerceptionAttributes`` first).
        num_variants: generations kept per image; one is picked at random each time.
        num_inference_steps / guidance_scale / sampler: pipeline settings.
        seed: base seed; each (image, variant) gets its own fixed seed.
        device: ``'auto'`` (see module docstring), ``'cpu'`` or ``'cuda'``.
        classes: the dataset's class names, checked against the generator's (default: assumed equal).
    """

    def __init__(self, generator: str, cache_dir: str, prob: float = 0.5, attr_mode: str = HARD,
                 num_variants: int = 1, num_inference_steps: int = 25, guidance_scale: float = 5.0,
                 sampler: str = 'dpmsolver++', seed: int = 0, device: str = 'auto',
                 classes: Optional[Sequence[str]] = None):
        if attr_mode not in GENERATION_MODES:
            raise ValueError(f'attr_mode must be one of {GENERATION_MODES}, got {attr_mode!r}')
        if not os.path.isdir(generator):
            raise FileNotFoundError(f'DetDiffusionGenerate: generator folder {generator} does not exist')
        self.generator = generator
        self.prob = prob
        self.attr_mode = attr_mode
        self.cache_dir = cache_dir
        self.num_variants = num_variants
        self.settings = dict(num_inference_steps=num_inference_steps, guidance_scale=guidance_scale, sampler=sampler)
        self.seed = seed
        self.device = device
        self.classes = tuple(classes) if classes is not None else None
        identity = dict(generator=generator_identity(generator, read_contents=False), attr_mode=attr_mode, seed=seed,
                        **self.settings)
        self._key_prefix = hashlib.sha1(json.dumps(identity, sort_keys=True).encode())
        self._pipe, self._pipe_pid = None, None

    def pipeline(self):
        """The DetDiffusionPipeline of this process (loaded on first use)."""
        if self._pipe is None or self._pipe_pid != os.getpid():
            device = self.device
            if device == 'auto':
                device = 'cuda' if torch.cuda.is_available() and not _in_forked_worker() else 'cpu'
            dtype = torch.float16 if device.startswith('cuda') else torch.float32
            pipe = DetDiffusionPipeline.from_pretrained(self.generator, dtype=dtype).to(device)
            pipe.set_progress_bar_config(disable=True)
            if self.classes is not None and tuple(pipe.classes) != self.classes:
                raise ValueError(f'DetDiffusionGenerate: generator {self.generator} has classes {pipe.classes}, '
                                 f'the dataset {self.classes}')
            self._pipe, self._pipe_pid = pipe, os.getpid()
        return self._pipe

    def _layout(self, results: dict) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The image's non-ignored boxes ``(N, 4)`` float32 xyxy pixels, labels ``(N,)`` int64 and
        attribute codes ``(N,)`` int64 (``ATTR_CODES``: -1 none, 0 easy, 1 hard; from ``gt_pa_attrs`` in ``'original'``
        mode)."""
        boxes = results['gt_bboxes']
        boxes = boxes.tensor.numpy() if hasattr(boxes, 'tensor') else np.asarray(boxes, dtype=np.float32)
        boxes = boxes.reshape(-1, 4)
        labels = np.asarray(results['gt_bboxes_labels'], dtype=np.int64)
        if self.attr_mode == MODE_ORIGINAL and 'gt_pa_attrs' in results:
            attrs = np.asarray(results['gt_pa_attrs'], dtype=np.int64)
        else:
            attrs = np.full(len(boxes), NO_ATTR_CODE, dtype=np.int64)
        ignored = results.get('gt_ignore_flags')
        if ignored is not None and ignored.any():
            boxes, labels, attrs = boxes[~ignored], labels[~ignored], attrs[~ignored]
        return boxes, labels, attrs

    def cache_key(self, results: dict, boxes: np.ndarray, labels: np.ndarray, attrs: np.ndarray, variant: int) -> str:
        """Hex key of a generation: the same generator, settings, image, layout and variant always map
        to the same file."""
        digest = self._key_prefix.copy()
        digest.update(f'{results.get("img_path")}|{self._size(results)}|{variant}'.encode())
        for array in (boxes, labels, attrs):
            digest.update(array.tobytes())
        return digest.hexdigest()

    @staticmethod
    def _size(results: dict) -> Tuple[int, int]:
        """``(height, width)`` of the image in pixels (the loaded image, else the annotation's size)."""
        if 'img' in results:
            return tuple(results['img'].shape[:2])
        return results['height'], results['width']

    def generate(self, layout: dict, size: Tuple[int, int], key: str) -> np.ndarray:
        """A BGR uint8 image of ``size`` (height, width) generated from ``layout`` (pixel boxes)."""
        pipe = self.pipeline()
        generator = torch.Generator(pipe._execution_device).manual_seed(zlib.crc32(key.encode()) & 0x7FFFFFFF)
        output = pipe(dict(layout, image_size=size), attr_mode=self.attr_mode, output_type='np',
                      generator=[generator], **self.settings)
        image = uint8_images(output.images)[0][:, :, ::-1]  # RGB -> BGR
        return cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_CUBIC)

    def transform(self, results: dict) -> dict:
        if self.prob <= 0 or np.random.rand() >= self.prob:
            return results
        boxes, labels, attrs = self._layout(results)
        if not len(boxes):
            return results
        variant = int(np.random.randint(self.num_variants)) if self.num_variants > 1 else 0
        key = self.cache_key(results, boxes, labels, attrs, variant)
        path = os.path.join(self.cache_dir, key[:2], key + '.png')
        image = None
        if not os.path.isfile(path):
            layout = dict(boxes=boxes.tolist(), labels=labels.tolist(), attrs=[ATTR_NAMES[int(a)] for a in attrs])
            image = self.generate(layout, self._size(results), key)
            atomic_write_bytes(cv2.imencode('.png', image)[1].tobytes(), path)
        results['ori_img_path'] = results.get('img_path')
        results['detdiffusion_generated'] = True
        if 'img' in results:
            results['img'] = image if image is not None else cv2.imread(path)
        else:
            results['img_path'] = path  # LoadImageFromFile reads the generation
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(generator={self.generator!r}, prob={self.prob}, attr_mode={self.attr_mode!r}, '
                f'cache_dir={self.cache_dir!r}, num_variants={self.num_variants}, {self.settings})')
