"""An endless stream of fresh shapes images, for pretraining the toy base generator on more images than a
CPU could ever store (never the same image twice).

Sample ``i`` is rendered by :func:`~.shapes.render_shapes_image` ('by_class' colours) from a generator seeded
by ``(seed, i)``, so the stream is a pure function of its settings whatever the number of dataloader
workers, and so are the two things each object gets beside its shape:

- a random attribute, ``'hard'`` with probability ``hard_prob``: the base learns where the attribute token
  of each object sits in a prompt, not what it means (fine-tuning on a detector's labels teaches that);
- with probability ``describe_prob``, its contrast word, ``'faint'`` below contrast ``FAINT_BELOW`` and
  ``'bright'`` above ``BRIGHT_ABOVE`` (none in between). Stable Diffusion comes to DetDiffusion knowing
  words for appearance; these give the toy base such words, so that the text side can steer how an object
  looks. ``describe_in='class_name'`` writes the word before the class name (``'faint circle'``);
  ``'attribute_slot'`` writes it in place of the random attribute (``<faint>``), so that the base learns
  to tell the slot's tokens apart (:mod:`~mmdet_detdiffusion.layout.attributes`); the other objects keep
  their random easy/hard token.

Samples come out of ``pipeline`` like a file dataset's after ``LoadImageFromFile``: start it with
``LoadAnnotations`` (boxes, polygon masks) and ``LoadPerceptionAttributes``.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmdet.registry import DATASETS
from mmengine.dataset import Compose

from mmdet_detdiffusion.layout.attributes import ATTR_KEY, EASY, HARD
from projects.toy_shapes.toy_shapes.shapes import SHAPES_CLASSES, render_shapes_image
from projects.toy_shapes.toy_shapes.vocabulary import APPEARANCES, BRIGHT, FAINT

CONTRAST_WORDS = ('', *APPEARANCES)
DESCRIBE_IN = ('class_name', 'attribute_slot')
FAINT_BELOW = 0.35
BRIGHT_ABOVE = 0.65


def described_classes(shapes: Sequence[str] = SHAPES_CLASSES) -> Tuple[str, ...]:
    """Class names of the stream: the shapes, then each with each contrast word (``'faint circle'``)."""
    return tuple(f'{word} {shape}'.strip() for word in CONTRAST_WORDS for shape in shapes)


def contrast_word(contrast: float) -> str:
    """The word for an object of ``contrast`` (0..1): ``'faint'``, ``'bright'`` or ``''``."""
    return FAINT if contrast < FAINT_BELOW else BRIGHT if contrast > BRIGHT_ABOVE else ''


@DATASETS.register_module()
class ShapesStreamDataset:
    """Fresh 'by_class' shapes images on the fly (see module docstring).

    Args:
        pipeline: transforms applied to each rendered sample.
        num_samples: length of the stream (sample ``i`` never repeats another).
        size / max_objects / min_radius / max_radius / min_contrast / grey_range / noise_range: as
            :func:`~.shapes.render_shapes_image` (``max_radius`` default ``size / 5``).
        hard_prob: probability of the ``'hard'`` attribute per object.
        describe_prob: probability that an object is described by its contrast word.
        describe_in: where the word goes, ``'class_name'`` or ``'attribute_slot'`` (module docstring).
        seed: the stream's seed.
    """

    METAINFO = dict(classes=described_classes())

    def __init__(self, pipeline: Sequence[dict], num_samples: int = 10_000_000, size: int = 128,
                 max_objects: int = 4, min_radius: float = 5.0, max_radius: Optional[float] = None,
                 min_contrast: float = 0.05, grey_range: Tuple[int, int] = (10, 245),
                 noise_range: Tuple[float, float] = (4.0, 20.0), hard_prob: float = 0.5,
                 describe_prob: float = 0.5, describe_in: str = 'class_name', seed: int = 0):
        if not 0 <= hard_prob <= 1 or not 0 <= describe_prob <= 1:
            raise ValueError(f'ShapesStreamDataset: hard_prob={hard_prob} and describe_prob={describe_prob} '
                             'must be probabilities in [0, 1]')
        if describe_in not in DESCRIBE_IN:
            raise ValueError(f'ShapesStreamDataset: describe_in must be one of {DESCRIBE_IN}, got {describe_in!r}')
        self.pipeline = Compose(pipeline)
        self.num_samples = num_samples
        self.render_args = dict(size=size, max_objects=max_objects, min_radius=min_radius,
                                max_radius=max_radius if max_radius is not None else size / 5.0,
                                colours='by_class', min_contrast=min_contrast, grey_range=tuple(grey_range),
                                noise_range=tuple(noise_range))
        self.hard_prob = hard_prob
        self.describe_prob = describe_prob
        self.describe_in = describe_in
        self.seed = seed
        self.classes = self.METAINFO['classes']

    @property
    def metainfo(self) -> Dict:
        return dict(self.METAINFO)

    def __len__(self) -> int:
        return self.num_samples

    def get_data_info(self, index: int) -> Dict:
        """Sample ``index`` before the pipeline: ``img`` (BGR uint8) and its ``instances``."""
        rng = np.random.default_rng([self.seed, index])
        image, objects = render_shapes_image(rng, **self.render_args)
        instances: List[Dict] = []
        for obj in objects:
            word = contrast_word(obj['contrast']) if rng.random() < self.describe_prob else ''
            attr = HARD if rng.random() < self.hard_prob else EASY
            if self.describe_in == 'attribute_slot':
                word, attr = '', word or attr
            label = self.classes.index(f'{word} {obj["shape"]}'.strip())
            instances.append({'bbox': obj['bbox_xyxy'], 'bbox_label': label, 'mask': [obj['polygon']], 'ignore_flag': 0,
                              ATTR_KEY: attr})
        size = self.render_args['size']
        return dict(img=np.ascontiguousarray(image[:, :, ::-1]), img_id=index, img_path=f'shapes-stream/{index}',
                    img_shape=(size, size), ori_shape=(size, size), height=size, width=size, instances=instances)

    def __getitem__(self, index: int) -> Dict:
        return self.pipeline(self.get_data_info(index))
