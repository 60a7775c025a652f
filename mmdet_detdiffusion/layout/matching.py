"""Perception-aware attribute rule (DetDiffusion, Sec. 3.2): is a ground-truth box *easy* or *hard*
for a detector?

Pure numpy. Boxes are ``(N, 4)`` arrays, xyxy, in pixels of the same image.

Rule (the paper's equation): keep the predictions whose score is > ``score_thr`` (gamma). A ground-truth
box is **easy** when one of those predictions has IoU > ``iou_thr`` (beta) with it, otherwise **hard**.
The paper's rule is class-agnostic; ``match_class=True`` (our option) also requires the prediction's class
to be the box's. Every ground-truth box is judged on its own: one prediction may make several boxes easy
(there is no one-to-one assignment, unlike mAP matching). Crowd boxes are judged by the same rule; the
caller decides how to report them.

gamma = 0.3 and beta = 0.5 are this project's defaults: no source we have states the paper's values.
"""
from typing import List, Sequence

import numpy as np

from mmdet_detdiffusion.layout.attributes import EASY, HARD

# Our defaults (gamma: score threshold, beta: IoU threshold), not values taken from the paper.
DEFAULT_SCORE_THR = 0.3
DEFAULT_IOU_THR = 0.5


def box_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of two box sets.

    Args:
        boxes_a: ``(N, 4)`` xyxy boxes.
        boxes_b: ``(M, 4)`` xyxy boxes.

    Returns:
        ``(N, M)`` float64 IoU matrix; a pair whose union is empty has IoU 0.
    """
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(bottom_right - top_left, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def best_matches(gt_boxes: np.ndarray,
                 gt_labels: Sequence[int],
                 pred_boxes: np.ndarray,
                 pred_scores: Sequence[float],
                 pred_labels: Sequence[int],
                 iou_thr: float = DEFAULT_IOU_THR,
                 match_class: bool = False) -> np.ndarray:
    """Which prediction finds each ground-truth box: the highest-scoring one with IoU > ``iou_thr`` with it (and
    its class, with ``match_class``).

    Args:
        gt_boxes: ``(N, 4)`` xyxy ground-truth boxes in pixels.
        gt_labels: ``(N,)`` class indices of the ground truth.
        pred_boxes: ``(M, 4)`` xyxy predicted boxes in pixels (same image, same scale).
        pred_scores: ``(M,)`` confidence scores.
        pred_labels: ``(M,)`` predicted class indices (same index space as ``gt_labels``).
        iou_thr: beta; a match needs an IoU strictly greater than it.
        match_class: a match also needs the prediction's class to be the box's (the paper: no).

    Returns:
        ``(N,)`` int64 indices into the predictions, -1 where no prediction matches.
    """
    gt_boxes = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    gt_labels = np.asarray(gt_labels, dtype=np.int64).reshape(-1)
    pred_boxes = np.asarray(pred_boxes, dtype=np.float64).reshape(-1, 4)
    pred_scores = np.asarray(pred_scores, dtype=np.float64).reshape(-1)
    pred_labels = np.asarray(pred_labels, dtype=np.int64).reshape(-1)
    if len(gt_labels) != len(gt_boxes):
        raise ValueError(f'gt_labels has {len(gt_labels)} entries for {len(gt_boxes)} gt_boxes')
    if not len(pred_scores) == len(pred_labels) == len(pred_boxes):
        raise ValueError(f'predictions disagree in length: {len(pred_boxes)} boxes, '
                         f'{len(pred_scores)} scores, {len(pred_labels)} labels')
    matches = box_iou(gt_boxes, pred_boxes) > iou_thr
    if match_class:
        matches &= gt_labels[:, None] == pred_labels[None, :]
    if not pred_scores.size:
        return np.full(len(gt_boxes), -1, dtype=np.int64)
    best = np.where(matches, pred_scores[None, :], -np.inf).argmax(axis=1)
    return np.where(matches.any(axis=1), best, -1).astype(np.int64)


def found_scores(gt_boxes: np.ndarray,
                 gt_labels: Sequence[int],
                 pred_boxes: np.ndarray,
                 pred_scores: Sequence[float],
                 pred_labels: Sequence[int],
                 iou_thr: float = DEFAULT_IOU_THR,
                 match_class: bool = False) -> np.ndarray:
    """How confidently a detector found each ground-truth box: the score of its :func:`best_matches` prediction,
    0 when there is none. Arguments as :func:`best_matches`; returns ``(N,)`` float64 scores in [0, 1]."""
    best = best_matches(gt_boxes, gt_labels, pred_boxes, pred_scores, pred_labels, iou_thr, match_class)
    scores = np.asarray(pred_scores, dtype=np.float64).reshape(-1)
    return np.where(best >= 0, scores[np.maximum(best, 0)] if scores.size else 0.0, 0.0)


def label_attributes(gt_boxes: np.ndarray,
                     gt_labels: Sequence[int],
                     pred_boxes: np.ndarray,
                     pred_scores: Sequence[float],
                     pred_labels: Sequence[int],
                     score_thr: float = DEFAULT_SCORE_THR,
                     iou_thr: float = DEFAULT_IOU_THR,
                     match_class: bool = False) -> List[str]:
    """Label each ground-truth box ``'easy'`` or ``'hard'`` with the rule in the module docstring: easy
    when its :func:`found_scores` exceeds ``score_thr`` (gamma; needs ``score_thr >= 0``).

    Arguments as :func:`found_scores`; returns a list of N strings, each ``'easy'`` or ``'hard'``.
    """
    found = found_scores(gt_boxes, gt_labels, pred_boxes, pred_scores, pred_labels, iou_thr, match_class)
    return attributes_from_scores(found, score_thr)


def attributes_from_scores(found: Sequence[float], score_thr: float = DEFAULT_SCORE_THR) -> List[str]:
    """``'easy'`` where a box's found score exceeds ``score_thr`` (gamma, >= 0), else ``'hard'``."""
    if score_thr < 0:
        raise ValueError(f'score_thr (gamma) must be >= 0, got {score_thr}')
    return [EASY if score > score_thr else HARD for score in found]
