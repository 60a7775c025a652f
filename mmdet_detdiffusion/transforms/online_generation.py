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
the labels) by :func:`~mmdet_detdiffusion.synthetic.render.render_layouts`, as ``tools/generate.py`` makes
them, with the export's ``data_filters``. A generated image shows only the boxes drawn in it: a box under the
training data's ``min_box_area_ratio`` is left out of the prompt, and the prompt holds at most what CLIP's 77
tokens and the export's ``max_objects`` allow. The other boxes stay in ``gt_bboxes`` with ``gt_ignore_flags``
set, so the detector neither learns them as objects nor as background. When the filtered boxes cover less than
``min_object_area_ratio`` of the image, or none is left (training would have dropped the image), the real
image is kept, with all its labels. With ``box_source='head'`` each drawn box becomes the tight box of the mask the
perception head predicts for it, and one whose mask is empty or unsure is ignored too
(:mod:`~mmdet_detdiffusion.synthetic.box_repair`), as ``tools/generate.py --box-source head`` labels.

Generations are cached on disk under a key of (generator, image, boxes, labels, attributes, settings,
variant): ``KEY.png`` and ``KEY.json``, the indices of the drawn boxes (``null``: the real image is kept), their
label boxes and which of them are ignored, written last so that it marks a finished entry (an image without one is
made again); later epochs read them back. ``num_variants`` > 1 keeps several generations per image.

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
from typing import Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch
import torch.utils.data
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import BaseBoxes

from mmdet_detdiffusion.generator.export import generator_identity
from mmdet_detdiffusion.generator.pipeline import DetDiffusionPipeline
from mmdet_detdiffusion.layout.attributes import ATTR_NAMES, GENERATION_MODES, HARD, MODE_ORIGINAL, NO_ATTR_CODE
from mmdet_detdiffusion.synthetic.box_repair import box_labelling
from mmdet_detdiffusion.synthetic.render import Rendering, render_layouts
from mmdet_detdiffusion.utils.fileio import atomic_write_bytes, atomic_write_json


def _in_forked_worker() -> bool:
    return (torch.utils.data.get_worker_info() is not None
            and multiprocessing.get_start_method(allow_none=True) in (None, 'fork'))


def key_seed(key: str) -> int:
    """The initial-noise seed (31 bits) of the generation cached under ``key``."""
    return zlib.crc32(key.encode()) & 0x7FFFFFFF


def with_boxes(boxes: Union[np.ndarray, BaseBoxes], indices: np.ndarray, new: np.ndarray
               ) -> Union[np.ndarray, BaseBoxes]:
    """A copy of ``boxes`` (mmdet's ``HorizontalBoxes``, or an ``(N, 4)`` array: a float32 one comes back), xyxy
    pixels, with the rows ``indices`` replaced by ``new`` ``(len(indices), 4)``."""
    if hasattr(boxes, 'tensor'):
        boxes = boxes.clone()
        boxes.tensor[torch.as_tensor(indices, dtype=torch.long)] = torch.as_tensor(new, dtype=boxes.tensor.dtype)
        return boxes
    boxes = np.array(boxes, dtype=np.float32).reshape(-1, 4)
    boxes[indices] = new
    return boxes


@TRANSFORMS.register_module()
class DetDiffusionGenerate(BaseTransform):
    """Online DetDiffusion generation inside an mmdet pipeline (see module docstring).

    Args:
        generator: generator export folder.
        cache_dir: folder of cached generations.
        prob: probability of replacing an image.
        attr_mode: ``'hard'``, ``'easy'`` or ``'original'`` (needs ``LoadPerceptionAttributes`` first).
        num_variants: generations kept per image; one is picked at random each time.
        num_inference_steps / guidance_scale / attribute_guidance_scale: pipeline settings.
        box_source: ``'layout'`` (a drawn box keeps its box) or ``'head'`` (the perception head's mask box; unsure
            masks are ignored); box_repair: ``mask_thr`` / ``min_confidence`` of
            :func:`~mmdet_detdiffusion.synthetic.box_repair.mask_box`, with ``'head'`` only.
        sampler: a name of ``SAMPLERS`` to sample with; ``None``: the export's saved scheduler.
        seed: base seed; each (image, variant) gets its own fixed seed.
        device: ``'auto'`` (see module docstring), ``'cpu'`` or ``'cuda'``.
        classes: the dataset's class names, checked against the generator's (default: assumed equal).
    """

    def __init__(self, generator: str, cache_dir: str, prob: float = 0.5, attr_mode: str = HARD,
                 num_variants: int = 1, num_inference_steps: int = 25, guidance_scale: float = 5.0,
                 attribute_guidance_scale: float = 0.0, sampler: Optional[str] = None,
                 box_source: str = 'layout', box_repair: Optional[dict] = None, seed: int = 0,
                 device: str = 'auto', classes: Optional[Sequence[str]] = None):
        if attr_mode not in GENERATION_MODES:
            raise ValueError(f'attr_mode must be one of {GENERATION_MODES}, got {attr_mode!r}')
        if not os.path.isdir(generator):
            raise FileNotFoundError(f'DetDiffusionGenerate: generator folder {generator} does not exist')
        self.generator = generator
        self.prob = prob
        self.attr_mode = attr_mode
        self.cache_dir = cache_dir
        self.num_variants = num_variants
        self.settings = dict(num_inference_steps=num_inference_steps, guidance_scale=guidance_scale,
                             attribute_guidance_scale=attribute_guidance_scale, sampler=sampler,
                             **box_labelling(box_source, box_repair))
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

    def _layout(self, results: dict) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The image's non-ignored boxes ``(N, 4)`` float32 xyxy pixels, labels ``(N,)`` int64, attribute codes
        ``(N,)`` int64 (``ATTR_CODES``: -1 none, 0 easy, 1 hard; from ``gt_pa_attrs`` in ``'original'`` mode) and
        their indices ``(N,)`` in the results' boxes."""
        boxes = results['gt_bboxes']
        boxes = boxes.tensor.numpy() if hasattr(boxes, 'tensor') else np.asarray(boxes, dtype=np.float32)
        boxes = boxes.reshape(-1, 4)
        labels = np.asarray(results['gt_bboxes_labels'], dtype=np.int64)
        if self.attr_mode == MODE_ORIGINAL and 'gt_pa_attrs' in results:
            attrs = np.asarray(results['gt_pa_attrs'], dtype=np.int64)
        else:
            attrs = np.full(len(boxes), NO_ATTR_CODE, dtype=np.int64)
        active = np.flatnonzero(~self._ignored(results))
        return boxes[active], labels[active], attrs[active], active

    @staticmethod
    def _ignored(results: dict) -> np.ndarray:
        """``(N,)`` bool: the results' ``gt_ignore_flags``, or none ignored."""
        flags = results.get('gt_ignore_flags')
        return np.zeros(len(results['gt_bboxes_labels']), dtype=bool) if flags is None else np.asarray(flags, bool)

    def cache_key(self, results: dict, boxes: np.ndarray, labels: np.ndarray, attrs: np.ndarray, variant: int) -> str:
        """Hex key of a generation: the same generator, settings, image, layout and variant always map
        to the same file."""
        digest = self._key_prefix.copy()
        digest.update(f'{results.get("img_path")}|{self._size(results)}|{variant}'.encode())
        for array in (boxes, labels, attrs):
            digest.update(array.tobytes())
        return digest.hexdigest()

    def cache_entry(self, key: str) -> str:
        """Path of the cache entry ``key`` without extension: ``KEY.png`` and ``KEY.json`` (module docstring)."""
        return os.path.join(self.cache_dir, key[:2], key)

    @staticmethod
    def _size(results: dict) -> Tuple[int, int]:
        """``(height, width)`` of the image in pixels (the loaded image, else the annotation's size)."""
        if 'img' in results:
            return tuple(results['img'].shape[:2])
        return results['height'], results['width']

    def generate(self, layout: dict, size: Tuple[int, int], key: str) -> Optional[Rendering]:
        """The generation of ``layout`` (pixel boxes of ``size``, (height, width)) as a BGR uint8 image of
        ``size`` with its drawn boxes and their labels, or ``None`` when the export's data filters drop the
        layout."""
        pipe = self.pipeline()
        return render_layouts(pipe, [dict(layout, image_size=size)], [key_seed(key)], self.attr_mode,
                              filters=pipe.config.data_filters, **self.settings)[0]

    def _cached_or_generated(self, layout: dict, size: Tuple[int, int], key: str
                             ) -> Tuple[Optional[dict], Optional[np.ndarray]]:
        """``(entry, image)``: ``drawn``, the indices of the layout's drawn boxes, with their label ``boxes``
        (xyxy pixels) and ``ignored`` flags (``None``: the layout is dropped), and, when generated now, the image
        (``None`` when it is read from the cache)."""
        base = self.cache_entry(key)
        try:  # the record is written after the image: it exists only for a finished entry
            with open(base + '.json') as f:
                record = json.load(f)
            return (record if record['drawn'] is not None else None), None
        except FileNotFoundError:
            pass
        rendering = self.generate(layout, size, key)
        if rendering is None:
            atomic_write_json(dict(drawn=None), base + '.json')
            return None, None
        atomic_write_bytes(cv2.imencode('.png', rendering.image)[1].tobytes(), base + '.png')
        record = dict(drawn=rendering.drawn, boxes=rendering.boxes.tolist(), ignored=rendering.ignored)
        atomic_write_json(record, base + '.json')  # last: it marks the entry finished
        return record, rendering.image

    def transform(self, results: dict) -> dict:
        if self.prob <= 0 or np.random.rand() >= self.prob:
            return results
        boxes, labels, attrs, active = self._layout(results)
        if not len(boxes):
            return results
        variant = int(np.random.randint(self.num_variants)) if self.num_variants > 1 else 0
        key = self.cache_key(results, boxes, labels, attrs, variant)
        layout = dict(boxes=boxes.tolist(), labels=labels.tolist(), attrs=[ATTR_NAMES[int(a)] for a in attrs])
        entry, image = self._cached_or_generated(layout, self._size(results), key)
        if entry is None:  # training would have dropped this image: keep it real, with all its labels
            return results
        drawn = active[entry['drawn']]
        ignored = self._ignored(results).copy()
        # a box not drawn may or may not show something there: neither an object nor background to learn
        ignored[np.delete(active, entry['drawn'])] = True
        ignored[drawn[np.asarray(entry['ignored'], dtype=bool)]] = True  # no sure mask of it
        results['gt_ignore_flags'] = ignored
        results['gt_bboxes'] = with_boxes(results['gt_bboxes'], drawn,
                                          np.asarray(entry['boxes'], np.float32).reshape(-1, 4))
        path = self.cache_entry(key) + '.png'
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
