"""The toy shapes dataset writer."""
import json
import os

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from projects.toy_shapes.toy_shapes.shapes import SHAPES_CLASSES, SHAPES_PALETTE, write_shapes_dataset


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    root = tmp_path_factory.mktemp('shapes')
    return root, write_shapes_dataset(str(root), num_train=12, num_val=4, size=64, max_objects=3, seed=3)


def test_splits_load_in_pycocotools_with_valid_boxes_and_masks(shapes):
    root, paths = shapes
    coco = COCO(paths['train'])
    assert len(coco.getImgIds()) == 12
    assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == list(SHAPES_CLASSES)
    assert len(COCO(paths['val']).getImgIds()) == 4
    for ann in coco.loadAnns(coco.getAnnIds()):
        x, y, w, h = ann['bbox']
        assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= 64 and y + h <= 64
        mask = coco.annToMask(ann)
        ys, xs = np.nonzero(mask)
        # the polygon mask fills its box: its extent matches the box within rasterisation error
        assert abs(xs.min() - x) <= 1.5 and abs(xs.max() + 1 - (x + w)) <= 1.5
        assert 0.3 * w * h < mask.sum() <= w * h + 2 * (w + h)


def test_images_exist_with_declared_size_and_show_the_shapes(shapes):
    root, paths = shapes
    coco = json.load(open(paths['train']))
    for img in coco['images']:
        image = cv2.imread(os.path.join(root, 'images', img['file_name']))
        assert image.shape == (img['height'], img['width'], 3)
    # the inside of every object is painted exactly in its recorded colour
    mask_coco = COCO(paths['train'])
    for ann in coco['annotations'][:10]:
        info = coco['images'][ann['image_id'] - 1]
        img = cv2.imread(os.path.join(root, 'images', info['file_name']))[:, :, ::-1]
        inside = cv2.erode(mask_coco.annToMask(ann), np.ones((3, 3), np.uint8)).astype(bool)
        np.testing.assert_array_equal(np.median(img[inside], axis=0), SHAPES_PALETTE[ann['colour']])


def test_same_seed_same_dataset_other_seed_differs(tmp_path):
    a = write_shapes_dataset(str(tmp_path / 'a'), 3, 1, size=48, seed=5)
    b = write_shapes_dataset(str(tmp_path / 'b'), 3, 1, size=48, seed=5)
    c = write_shapes_dataset(str(tmp_path / 'c'), 3, 1, size=48, seed=6)
    load = lambda p: json.load(open(p))['annotations']  # noqa: E731
    assert load(a['train']) == load(b['train'])
    assert load(a['train']) != load(c['train'])
    read = lambda root: cv2.imread(str(tmp_path / root / 'images/train/000000.png'))  # noqa: E731
    assert np.array_equal(read('a'), read('b'))


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match='does not fit'):
        write_shapes_dataset(str(tmp_path), 1, 1, size=32, min_radius=5, max_radius=20)
    with pytest.raises(ValueError, match="colours must be one of"):
        write_shapes_dataset(str(tmp_path), 1, 1, colours='rainbow')
    with pytest.raises(ValueError, match='min_contrast in 0..1'):
        write_shapes_dataset(str(tmp_path), 1, 1, colours='by_class', min_contrast=1.5)


def test_by_class_colours_blend_each_object_by_its_contrast(tmp_path):
    paths = write_shapes_dataset(str(tmp_path), num_train=16, num_val=1, size=64, seed=2, colours='by_class',
                                 min_contrast=0.15)
    coco = COCO(paths['train'])
    contrasts = []
    for image_id in coco.getImgIds():
        info = coco.loadImgs(image_id)[0]
        img = cv2.imread(os.path.join(tmp_path, 'images', info['file_name']))[:, :, ::-1].astype(float)
        anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id))
        outside = ~np.any([coco.annToMask(a) for a in anns], axis=0).astype(bool)
        background = np.median(img[outside], axis=0)
        assert np.ptp(background) <= 2  # grey
        for ann in anns:
            assert SHAPES_CLASSES[ann['category_id'] - 1] == {'red': 'circle', 'green': 'square',
                                                              'blue': 'triangle'}[ann['colour']]
            inside = cv2.erode(coco.annToMask(ann), np.ones((3, 3), np.uint8)).astype(bool)
            expected = background + ann['contrast'] * (np.array(SHAPES_PALETTE[ann['colour']]) - background)
            np.testing.assert_allclose(np.median(img[inside], axis=0), expected, atol=2.5)
            contrasts.append(ann['contrast'])
    assert 0.15 <= min(contrasts) < 0.5 < max(contrasts) <= 1.0  # faint and vivid objects both occur
    assert coco.dataset['info']['min_contrast'] == 0.15


def test_rare_class_in_train_only(tmp_path):
    paths = write_shapes_dataset(str(tmp_path), 60, 60, size=48, max_objects=2, min_radius=3, seed=2,
                                 colours='by_class', train_class_weights=(1, 1, 0.1))
    count = lambda split: np.bincount([a['category_id'] for a in json.load(open(paths[split]))['annotations']],  # noqa
                                      minlength=4)[1:]
    train, val = count('train'), count('val')
    assert train[2] * 5 < min(train[:2])  # the triangle is rare in train ...
    assert val[2] * 2 > min(val[:2])  # ... and as common as the others in val
    with pytest.raises(ValueError, match='train_class_weights must be 3 non-negative'):
        write_shapes_dataset(str(tmp_path), 1, 1, train_class_weights=(1, 1))
