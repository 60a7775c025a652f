"""Layouts -> labelled images: the one place that decides which boxes of a layout a generation shows.

The offline writer (:class:`~mmdet_detdiffusion.synthetic.writer.SyntheticDatasetWriter`) and the online
transform (:class:`~mmdet_detdiffusion.transforms.DetDiffusionGenerate`) both generate through
:func:`render_layouts`, so one layout and seed give the same pixels and the same labels on either path.

An object of a layout is *drawn* when it passes the per-box filter of the training data (``min_box_area_ratio``,
see :func:`~mmdet_detdiffusion.layout.inputs.keep_objects`) and is written in the prompt (the pipeline's ``kept``:
CLIP's 77 tokens or the export's ``max_objects`` cut the smallest objects). Filtered boxes are left out of the
prompt, as the training data left them out. A layout whose filtered boxes cover less than
``min_object_area_ratio`` of the image, or that keeps no box, is not generated. The callers decide what an
object that is not drawn becomes: offline it is left out of the annotations, online it is ignored.

A drawn object's box is its layout box, or with ``box_source='head'`` the tight box of the mask the perception head
predicts for it (:mod:`~mmdet_detdiffusion.synthetic.box_repair`); an object whose mask is empty or unsure is
marked ``ignored``: an ignore region, not a label.
"""
from dataclasses import dataclass
from typing import List, Mapping, Optional, Sequence

import cv2
import numpy as np
import torch

from mmdet_detdiffusion.generator.pipeline import uint8_images
from mmdet_detdiffusion.layout.inputs import keep_objects
from mmdet_detdiffusion.synthetic.box_repair import GENERATED_BOX_SOURCES, head_boxes


@dataclass
class Rendering:
    """One generated image and the objects it shows.

    image: ``(H, W, 3)`` uint8 BGR, of the layout's ``image_size`` (resized) or the generator's resolution;
    drawn: ascending indices in the layout of the objects drawn;
    layout_boxes: ``(len(drawn), 4)`` float64 xyxy pixels of ``image``: the layout's boxes of those objects (its
    own when resized, else the pipeline's at its resolution);
    boxes: their labels: ``layout_boxes``, or with ``box_source='head'`` the repaired ones;
    attrs: the attribute written for each drawn object (``None``: no attribute token);
    prompt: the layout prompt;
    ignored: per drawn object, whether it is an ignore region (``box_source='head'``: no sure mask; its layout box);
    masks: with ``box_source='head'``, ``(len(drawn), H, W)`` bool masks of those objects in ``image``, else ``None``.
    """
    image: np.ndarray
    drawn: List[int]
    layout_boxes: np.ndarray
    boxes: np.ndarray
    attrs: List[Optional[str]]
    prompt: str
    ignored: List[bool]
    masks: Optional[np.ndarray] = None


def render_layouts(pipe, layouts: Sequence[Mapping], seeds: Sequence[int], attr_mode: str, resize: bool = True,
                   filters: Optional[Mapping[str, float]] = None, box_source: str = 'layout',
                   box_repair: Optional[Mapping[str, float]] = None, **call_kwargs) -> List[Optional[Rendering]]:
    """Generate one image per layout, all in one pipeline batch.

    Args:
        pipe: a :class:`~mmdet_detdiffusion.generator.pipeline.DetDiffusionPipeline`.
        layouts: dicts of ``boxes`` (xyxy pixels of ``image_size``), ``labels``, ``attrs`` (per box) and
            ``image_size`` ``(height, width)``.
        seeds: the initial-noise seed of each layout: each image gets its own ``torch.Generator`` on the
            pipe's execution device, so its pixels do not depend on the rest of the batch.
        attr_mode: ``'hard'``, ``'easy'`` or ``'original'``.
        resize: resize each image to its ``image_size`` (bicubic), so the layout's boxes are its labels;
            otherwise keep the generator's resolution.
        filters: ``min_box_area_ratio`` / ``min_object_area_ratio`` of the training data (other keys are not
            per-layout filters and are not read); ``None``: no filter.
        box_source: ``'layout'`` (the layout's boxes) or ``'head'`` (the perception head's mask boxes).
        box_repair: ``mask_thr`` / ``min_confidence`` of :func:`~.box_repair.mask_box` (``box_source='head'``).
        call_kwargs: ``num_inference_steps``, ``guidance_scale``, ``attribute_guidance_scale``, ``sampler`` of the
            pipeline.

    Returns:
        per layout its :class:`Rendering`, or ``None`` where the filters drop the whole layout (not generated).
    """
    if box_source not in GENERATED_BOX_SOURCES:
        raise ValueError(f'box_source must be one of {GENERATED_BOX_SOURCES} (a detector relabels a written set: '
                         f'tools/filter_synthetic.py --relabel), got {box_source!r}')
    filters = filters or {}
    selected = [keep_objects(layout['boxes'], layout['image_size'][1], layout['image_size'][0],
                             filters.get('min_box_area_ratio', 0.0), filters.get('min_object_area_ratio', 0.0))
                for layout in layouts]
    todo = [i for i, indices in enumerate(selected) if indices is not None]
    renderings: List[Optional[Rendering]] = [None] * len(layouts)
    if not todo:
        return renderings
    prompt_layouts = [{**layouts[i], **{name: [layouts[i][name][k] for k in selected[i]]
                                        for name in ('boxes', 'labels', 'attrs')}} for i in todo]
    device = pipe._execution_device
    output = pipe(prompt_layouts, attr_mode=attr_mode, output_type='np',
                  generator=[torch.Generator(device).manual_seed(seeds[i]) for i in todo],
                  predict_masks=box_source == 'head', **call_kwargs)
    images = uint8_images(output.images)
    for j, i in enumerate(todo):
        drawn = [selected[i][k] for k in output.kept[j]]
        image = images[j][:, :, ::-1]  # RGB -> BGR for OpenCV
        if resize:
            height, width = layouts[i]['image_size']
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_CUBIC)
            layout_boxes = np.array([layouts[i]['boxes'][k] for k in drawn], dtype=np.float64).reshape(-1, 4)
        else:
            layout_boxes = output.boxes[j].astype(np.float64)
        boxes, ignored, masks = layout_boxes, [False] * len(drawn), None
        if box_source == 'head':
            boxes, ignored, masks = head_boxes(output.masks[j], layout_boxes, image.shape[:2], **(box_repair or {}))
        renderings[i] = Rendering(np.ascontiguousarray(image), drawn, layout_boxes, boxes, output.attrs[j],
                                  output.prompts[j], ignored, masks)
    return renderings
