"""Box repair: the mask -> box rule and its ignore regions, the perception head's masks at the last denoising step,
the written labels and their provenance, and the detector relabelling of a written set."""
import os

import numpy as np
import pycocotools.mask as mask_utils
import pytest
import torch

from helpers import head_labelled_set
from mmdet_detdiffusion.synthetic.box_repair import box_labelling, head_boxes, mask_box, relabel_boxes
from mmdet_detdiffusion.synthetic.filter import agreement_filter

LAYOUT = dict(boxes=[[10, 20, 60, 100], [70, 10, 120, 40]], labels=['circle', 'square'], attrs=['easy', 'hard'],
              image_size=(128, 160))


def test_mask_box_is_the_tight_box_of_the_pixels_above_the_threshold():
    probs = np.zeros((20, 30))
    probs[5:9, 12:20] = 0.9   # rows 5..8, columns 12..19
    probs[10, 3] = 0.55       # a lone sure-enough pixel widens the box
    np.testing.assert_array_equal(mask_box(probs), [3, 5, 20, 11])
    one = np.zeros((4, 4))
    one[2, 1] = 1.0
    np.testing.assert_array_equal(mask_box(one), [1, 2, 2, 3])  # one pixel: a box of side 1


def test_the_box_of_a_polygons_coco_mask_is_the_polygons_box():
    """The head learns pycocotools' masks of the annotated polygons: their mask box is the annotated box."""
    polygon = [10.0, 6.0, 22.0, 6.0, 22.0, 17.0, 10.0, 17.0]
    mask = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects([polygon], 24, 32))).astype(np.float64)
    np.testing.assert_array_equal(mask_box(mask), [10, 6, 22, 17])


def test_an_empty_or_unsure_mask_is_an_ignore_region():
    assert mask_box(np.full((8, 8), 0.5)) is None  # nothing strictly above 0.5
    unsure = np.full((8, 8), 0.2)
    unsure[2:4, 2:4] = 0.58
    assert mask_box(unsure, min_confidence=0.6) is None
    assert mask_box(unsure, min_confidence=0.55) is not None
    layout = np.array([[1.0, 1.0, 5.0, 5.0], [0.0, 0.0, 2.0, 2.0]])
    masks = np.zeros((2, 8, 8))
    masks[0, 4:6, 2:8] = 0.95
    boxes, ignored, binary = head_boxes(masks, layout, image_size=(16, 32))
    assert ignored == [False, True]
    assert binary.shape == (2, 16, 32) and not binary[1].any()
    np.testing.assert_array_equal(mask_box(binary[0].astype(float)), boxes[0])  # the box is the mask's
    np.testing.assert_allclose(boxes[0], [8, 8, 32, 12])  # mask pixels of an 8x8 map in a 16x32 image
    np.testing.assert_array_equal(boxes[1], layout[1])    # an ignored object keeps its layout box
    with pytest.raises(ValueError, match='mask_thr'):
        mask_box(unsure, mask_thr=1.0)  # no probability is above 1: every object would be ignored
    with pytest.raises(ValueError, match='2 masks for 1 layout boxes'):
        head_boxes(masks, layout[:1], image_size=(16, 32))


def test_box_labelling_keeps_mask_settings_with_head_boxes_and_refuses_them_with_layout_boxes():
    assert box_labelling('head', dict(min_confidence=0.9)) == dict(box_source='head',
                                                                   box_repair=dict(min_confidence=0.9))
    assert box_labelling('layout') == dict(box_source='layout', box_repair=None)
    with pytest.raises(ValueError, match="box_repair .* box_source='head' only"):
        box_labelling('layout', dict(min_confidence=0.9))
    with pytest.raises(ValueError, match='box_source must be one of'):
        box_labelling('detector')


def test_relabel_replaces_found_boxes_and_ignores_the_others():
    anns = [dict(id=1, bbox=[0, 0, 10, 10], iscrowd=0), dict(id=2, bbox=[20, 20, 5, 5], iscrowd=0)]
    out = relabel_boxes(anns, {1: [1.0, 2.0, 9.0, 12.0], 2: None})
    assert out[0]['bbox'] == [1.0, 2.0, 8.0, 10.0] and out[0]['area'] == 80.0
    assert out[0]['layout_bbox'] == [0, 0, 10, 10] and out[0]['iscrowd'] == 0
    assert out[1]['iscrowd'] == 1 and out[1]['bbox'] == [20, 20, 5, 5] == out[1]['layout_bbox']
    assert anns[0]['bbox'] == [0, 0, 10, 10]  # the input is left as it was
    fused = relabel_boxes(anns, {1: [2.0, 4.0, 12.0, 14.0]}, fuse=True)
    assert fused[0]['bbox'] == [1.0, 2.0, 10.0, 10.0] and fused[1]['iscrowd'] == 1


def test_agreement_filter_relabels_with_the_matched_predictions_and_records_it():
    coco = dict(images=[dict(id=1, file_name='a.png', width=32, height=32, detdiffusion=dict(seed=3))],
                annotations=[dict(id=1, image_id=1, category_id=1, bbox=[0, 0, 10, 10], iscrowd=0),
                             dict(id=2, image_id=1, category_id=1, bbox=[20, 20, 5, 5], iscrowd=0)],
                categories=[dict(id=1, name='circle')])
    filtered, summary = agreement_filter(coco, {1: 0.9, 2: 0.1}, score_thr=0.3,
                                         matched_boxes={1: [1, 1, 11, 11], 2: [20, 20, 25, 25]})
    first, second = filtered['annotations']
    assert first['bbox'] == [1.0, 1.0, 10.0, 10.0] and first['iscrowd'] == 0
    assert second['iscrowd'] == 1 and second['bbox'] == [20, 20, 5, 5]  # found below the threshold: not relabelled
    assert filtered['images'][0]['detdiffusion'] == dict(seed=3, box_source='detector')
    assert summary['boxes_ignored'] == 1 and summary['settings']['relabel'] == 'replace'
    head_set = dict(coco, images=[dict(coco['images'][0], detdiffusion=dict(box_source='head'))])
    fused, summary = agreement_filter(head_set, {1: 0.9, 2: 0.1}, score_thr=0.3,
                                      matched_boxes={1: [2, 2, 12, 12], 2: None}, fuse=True)
    assert fused['annotations'][0]['bbox'] == [1.0, 1.0, 10.0, 10.0]  # the mean of [0, 0, 10, 10] and [2, 2, 12, 12]
    assert fused['images'][0]['detdiffusion']['box_source'] == 'head+detector'
    assert summary['settings']['relabel'] == 'fuse'
    with pytest.raises(ValueError, match='fuse=True needs the matched_boxes'):
        agreement_filter(coco, {1: 0.9}, fuse=True)


def test_pipeline_predicts_one_mask_per_written_object_at_the_last_step(pipe):
    layouts = [LAYOUT, dict(LAYOUT, boxes=LAYOUT['boxes'][:1], labels=LAYOUT['labels'][:1], attrs=['hard'])]
    out = pipe(layouts, height=32, width=48, num_inference_steps=3, output_type='np', predict_masks=True,
               generator=[torch.Generator().manual_seed(s) for s in (0, 1)])
    assert [m.shape for m in out.masks] == [(2, 32, 48), (1, 32, 48)]
    assert all(m.dtype == np.float32 and 0 <= m.min() and m.max() <= 1 for m in out.masks)
    # the two objects of the first image have different box channels, hence different masks
    assert np.abs(out.masks[0][0] - out.masks[0][1]).max() > 0.01
    plain = pipe(layouts, height=32, width=48, num_inference_steps=3, output_type='np',
                 generator=[torch.Generator().manual_seed(s) for s in (0, 1)])
    assert plain.masks is None
    np.testing.assert_array_equal(plain.images, out.images)  # recording the features changes no pixel


@pytest.mark.parametrize('attribute_guidance_scale', [0.0, 2.0])
def test_pipeline_masks_are_the_heads_on_the_last_steps_features(pipe, attribute_guidance_scale):
    """The masks equal the head run on the decoder outputs of the last U-Net pass, recorded independently: under
    guidance, those of the prompts' pass (the null prompts come first, the flipped prompts of attribute guidance
    last)."""
    recorded = {}
    handles = [pipe.unet.up_blocks[i].register_forward_hook(
        lambda module, args, output, i=i: recorded.__setitem__(i, output))
        for i in pipe.perception_head.config.feature_blocks]
    try:
        out = pipe(LAYOUT, num_inference_steps=2, guidance_scale=5.0, attribute_guidance_scale=attribute_guidance_scale,
                   output_type='np', predict_masks=True, generator=torch.Generator().manual_seed(0))
    finally:
        for handle in handles:
            handle.remove()
    branches = 3 if attribute_guidance_scale else 2  # the null prompt's, the prompt's (and the flipped one's) pass
    assert all(len(recorded[i]) == branches for i in recorded)
    features = [recorded[i][1:2] for i in pipe.perception_head.config.feature_blocks]
    boxes = torch.tensor(LAYOUT['boxes'], dtype=torch.float32) / torch.tensor([160, 128, 160, 128])
    with torch.no_grad():
        logits = pipe.perception_head(features, boxes, torch.zeros(2, dtype=torch.long))
    probs = torch.nn.functional.interpolate(logits[:, None], size=(32, 32), mode='bilinear')[:, 0].sigmoid()
    np.testing.assert_allclose(out.masks[0], probs.numpy(), atol=1e-5)


def test_predict_masks_without_a_head_is_refused(pipe):
    head = pipe.perception_head
    pipe.perception_head = None
    try:
        with pytest.raises(ValueError, match='no perception_head'):
            pipe(LAYOUT, num_inference_steps=1, predict_masks=True)
    finally:
        pipe.perception_head = head


def test_writer_with_head_boxes_records_layout_boxes_ignores_and_provenance(pipe, shapes_root, tmp_path):
    coco, out = head_labelled_set(pipe, shapes_root, str(tmp_path), 3, min_confidence=0.9)
    record = out['images'][0]['detdiffusion']
    assert record['box_source'] == 'head' and record['box_repair'] == dict(mask_thr=0.5, min_confidence=0.9)
    assert out['annotations'] and all('layout_bbox' in a and a['iscrowd'] in (0, 1) for a in out['annotations'])
    source = np.array([a['bbox'] for a in coco['annotations']])
    assert all(np.abs(source - a['layout_bbox']).max(axis=1).min() < 1e-6 for a in out['annotations'])
    # the untrained head's masks are unsure (probabilities near 0.5): ignore regions, the layout box kept
    ignored = [a for a in out['annotations'] if a['iscrowd']]
    assert ignored and all(a['bbox'] == a['layout_bbox'] for a in ignored)
    assert os.path.isfile(tmp_path / 'preview.png')
