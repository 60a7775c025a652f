"""Run an mmdet detector over a COCO dataset and label every ground-truth box easy/hard.

One core, used by ``tools/label_attributes.py`` (a detector loaded from config + checkpoint) and by
:class:`~mmdet_detdiffusion.hooks.PerceptionAttributeHook` (the detector being trained). Under
distributed training each rank labels the images ``rank, rank + world_size, ...`` and the per-rank
results are gathered once at the end.

Boxes that cannot be judged are kept, labelled ``hard`` and marked with ``pa_skipped`` (the reason):
boxes of an unreadable image (missing or corrupt file), and boxes with no area inside the image.
"""
import datetime
import logging
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmdet.apis import init_detector
from mmdet.utils import get_test_pipeline_cfg
from mmengine import dist
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.logging import print_log
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from mmdet_detdiffusion.layout.attribute_file import (annotations_by_image, clip_box, format_attribute_table,
                                                      write_attribute_file, xywh_to_xyxy)
from mmdet_detdiffusion.layout.attributes import HARD, SKIP_KEY
from mmdet_detdiffusion.layout.matching import DEFAULT_IOU_THR, DEFAULT_SCORE_THR, attributes_from_scores, best_matches

# Transforms that read ground truth: the labeler compares against the json itself.
_GT_TRANSFORMS = ('LoadAnnotations', 'mmdet.LoadAnnotations', 'LoadPanopticAnnotations')


@dataclass
class LabelingResult:
    """What one labeling pass produced (on every rank after gathering)."""
    attributes: Dict[object, str] = field(default_factory=dict)  # annotation id -> easy / hard
    found_scores: Dict[object, float] = field(default_factory=dict)  # annotation id -> best matching score
    # annotation id -> xyxy pixel box of that best match (None: no match), what tools/filter_synthetic.py relabels with
    matched_boxes: Dict[object, Optional[List[float]]] = field(default_factory=dict)
    skipped: Dict[object, str] = field(default_factory=dict)  # annotation id -> why it was not judged
    unreadable_images: List[str] = field(default_factory=list)  # 'path: reason'


def inference_pipeline(pipeline_cfg: Sequence[dict]) -> Compose:
    """The detector's test pipeline without ground-truth loading transforms."""
    return Compose([dict(t) for t in pipeline_cfg if t.get('type') not in _GT_TRANSFORMS])


class _CocoImages(Dataset):
    """Images of a COCO dict run through a test pipeline; yields ``(index, packed or None, error)``."""

    def __init__(self, images: List[dict], img_prefix: str, pipeline: Compose):
        self.images = images
        self.img_prefix = img_prefix
        self.pipeline = pipeline

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Tuple[int, Optional[dict], Optional[str]]:
        info = self.images[index]
        path = os.path.join(self.img_prefix, info['file_name'])
        if not os.path.isfile(path):
            return index, None, f'{path}: file not found'
        try:
            packed = self.pipeline(dict(img_path=path, img_id=info['id']))
        except Exception as err:  # a corrupt file fails inside cv2/mmcv with many exception types
            return index, None, f'{path}: cannot be read as an image ({type(err).__name__}: {err})'
        if packed is None:
            return index, None, f'{path}: the test pipeline dropped the image'
        return index, packed, None


class ClassMismatchError(ValueError):
    """The dataset has categories the detector does not know."""


def category_labels(coco: dict, classes: Optional[Sequence[str]], ann_file: str = '<coco>'
                    ) -> Dict[int, int]:
    """Map COCO category ids to the detector's class indices by class name.

    Without ``classes`` (a checkpoint without ``dataset_meta``), mmdet's convention is used: the
    dataset's categories in file order are classes 0..C-1.

    Raises:
        ClassMismatchError: a category of the dataset is not a class of the detector.
    """
    if classes is None:
        return {cat['id']: i for i, cat in enumerate(coco['categories'])}
    index = {name: i for i, name in enumerate(classes)}
    missing = [cat['name'] for cat in coco['categories'] if cat['name'] not in index]
    if missing:
        raise ClassMismatchError(f'{ann_file}: categories {missing} are not classes of the detector '
                                 f'({list(classes)}); the detector must know every class it labels')
    return {cat['id']: index[cat['name']] for cat in coco['categories']}


class AttributeLabeler:
    """Labels ground-truth boxes easy/hard with a detector (rule: :mod:`..layout.matching`).

    Args:
        model: an mmdet detector (``BaseDetector``, possibly wrapped in DDP) on its device.
        pipeline_cfg: the detector's test pipeline config (ground-truth transforms are dropped).
        score_thr: gamma, the confidence threshold.
        iou_thr: beta, the IoU threshold.
        match_class: a prediction must also have the box's class (the paper's rule does not ask it).
        batch_size: images per forward pass.
        num_workers: dataloader workers for image decoding.
    """

    def __init__(self, model: torch.nn.Module, pipeline_cfg: Sequence[dict],
                 score_thr: float = DEFAULT_SCORE_THR, iou_thr: float = DEFAULT_IOU_THR,
                 match_class: bool = False, batch_size: int = 4, num_workers: int = 0):
        self.model = getattr(model, 'module', model)
        self.pipeline = inference_pipeline(pipeline_cfg)
        self.score_thr = score_thr
        self.iou_thr = iou_thr
        self.match_class = match_class
        self.batch_size = batch_size
        self.num_workers = num_workers

    @classmethod
    def from_config(cls, config: str, checkpoint: str, device: str = 'cpu', cfg_options: Optional[dict] = None,
                    **kwargs) -> 'AttributeLabeler':
        """A labeler around the detector of an mmdet ``config`` file with ``checkpoint`` weights on ``device``
        (its test pipeline; ``cfg_options`` override config keys; ``kwargs`` as the constructor)."""
        cfg = Config.fromfile(config)
        if cfg_options:
            cfg.merge_from_dict(cfg_options)
        device = f'cuda:{torch.cuda.current_device()}' if device == 'cuda' else device
        return cls(init_detector(cfg, checkpoint, device=device), get_test_pipeline_cfg(cfg), **kwargs)

    @property
    def rule(self) -> dict:
        """The rule's settings, for the attribute file's ``detdiffusion`` record."""
        return dict(score_thr=self.score_thr, iou_thr=self.iou_thr, match_class=self.match_class)

    @property
    def classes(self) -> Optional[Sequence[str]]:
        meta = getattr(self.model, 'dataset_meta', None) or {}
        return meta.get('classes')

    @torch.no_grad()
    def label(self, coco: dict, img_prefix: str, ann_file: str = '<coco>', progress: bool = True
              ) -> LabelingResult:
        """Label every annotation of ``coco`` (validated COCO dict); images are sharded over ranks."""
        rank, world_size = dist.get_dist_info()
        cat_to_label = category_labels(coco, self.classes, ann_file)
        by_image = annotations_by_image(coco)
        shard = coco['images'][rank::world_size]
        loader = DataLoader(_CocoImages(shard, img_prefix, self.pipeline), batch_size=self.batch_size,
                            num_workers=self.num_workers, collate_fn=list)
        result = LabelingResult()
        was_training = self.model.training
        self.model.eval()
        try:
            with tqdm(total=len(coco['images']), desc='labeling attributes', unit='img',
                      disable=not progress or rank != 0) as bar:
                for batch in loader:
                    self._label_batch(batch, shard, by_image, cat_to_label, result)
                    bar.update(len(batch) * world_size)
        finally:
            self.model.train(was_training)
        return _gather(result) if world_size > 1 else result

    def _label_batch(self, batch: List[tuple], shard: List[dict], by_image: dict,
                     cat_to_label: Dict[int, int], result: LabelingResult) -> None:
        readable = [(index, packed) for index, packed, _ in batch if packed is not None]
        for index, _, error in batch:
            if error is not None:
                print_log(f'skipping unreadable image {error}', logger='current', level=logging.WARNING)
                result.unreadable_images.append(error)
                for ann in by_image[shard[index]['id']]:
                    result.attributes[ann['id']] = HARD
                    result.skipped[ann['id']] = 'unreadable image'
        if not readable:
            return
        samples = self.model.test_step(pseudo_collate([packed for _, packed in readable]))
        for (index, _), sample in zip(readable, samples):
            self._label_image(shard[index], by_image[shard[index]['id']], sample.pred_instances,
                              cat_to_label, result)

    def _label_image(self, image: dict, annotations: List[dict], pred, cat_to_label: Dict[int, int],
                     result: LabelingResult) -> None:
        judged_ids, boxes, labels = [], [], []
        for ann in annotations:
            box, has_area = clip_box(xywh_to_xyxy(ann['bbox']), image['width'], image['height'])
            if not has_area:
                print_log(f'annotation id={ann["id"]} of {image["file_name"]}: box {ann["bbox"]} has no '
                          f'area inside the {image["width"]}x{image["height"]} image; labelled hard',
                          logger='current', level=logging.WARNING)
                result.attributes[ann['id']] = HARD
                result.skipped[ann['id']] = 'box has no area inside the image'
                continue
            judged_ids.append(ann['id'])
            boxes.append(box)
            labels.append(cat_to_label[ann['category_id']])
        pred_boxes, pred_scores = pred.bboxes.cpu().numpy(), pred.scores.cpu().numpy()
        best = best_matches(np.asarray(boxes), labels, pred_boxes, pred_scores, pred.labels.cpu().numpy(),
                            self.iou_thr, self.match_class)
        found = np.array([pred_scores[k] if k >= 0 else 0.0 for k in best], dtype=np.float64)
        result.found_scores.update(zip(judged_ids, found.tolist()))
        result.matched_boxes.update(zip(judged_ids, [pred_boxes[k].tolist() if k >= 0 else None for k in best]))
        result.attributes.update(zip(judged_ids, attributes_from_scores(found, self.score_thr)))


def _gather(local: LabelingResult) -> LabelingResult:
    """Merge the per-rank results (one all_gather of small python objects)."""
    merged = LabelingResult()
    for part in dist.all_gather_object(local):
        merged.attributes.update(part.attributes)
        merged.found_scores.update(part.found_scores)
        merged.matched_boxes.update(part.matched_boxes)
        merged.skipped.update(part.skipped)
        merged.unreadable_images.extend(part.unreadable_images)
    return merged


def labeling_record(labeler: AttributeLabeler, detector_config: Optional[str], ann_file: str,
                    checkpoint: Optional[str] = None, checkpoint_sha256: Optional[str] = None,
                    weights: Optional[str] = None) -> dict:
    """The provenance of one labeling, the ``record`` to give :func:`write_labeling`.

    Every labeling writes the same fields (``None`` where unknown), so attribute files from the tool and from
    the hook compare key by key: ``detector_config``, ``checkpoint`` and ``checkpoint_sha256`` (the weights
    file; ``None`` for a model in memory), ``weights`` (which weights, in words, where there is no file),
    the rule (``score_thr`` gamma, ``iou_thr`` beta, ``match_class``) and ``ann_file``. Paths are made
    absolute: the file outlives the working directory it was made in. :func:`write_labeling` adds ``date``,
    ``unreadable_images`` and ``skipped_boxes``, and the attribute file ``counts``.
    """
    return dict(detector_config=os.path.abspath(detector_config) if detector_config else None,
                checkpoint=os.path.abspath(checkpoint) if checkpoint else None,
                checkpoint_sha256=checkpoint_sha256, weights=weights, **labeler.rule,
                ann_file=os.path.abspath(ann_file))


def write_labeling(coco: dict, result: LabelingResult, out_path: str, record: dict) -> dict:
    """Write the attribute file (``pa_skipped`` marks unjudged boxes) and log the easy/hard table.

    ``record`` (from :func:`labeling_record`) gains gamma/beta-independent bookkeeping: date and unreadable
    images.
    """
    marked = {**coco, 'annotations': [
        {**ann, SKIP_KEY: result.skipped[ann['id']]} if ann['id'] in result.skipped else ann
        for ann in coco['annotations']]}
    record = {**record, 'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
              'unreadable_images': result.unreadable_images, 'skipped_boxes': len(result.skipped)}
    labelled = write_attribute_file(marked, result.attributes, out_path, record)
    print_log(f'attribute file written to {out_path}\n{format_attribute_table(labelled)}', logger='current')
    return labelled
