"""The fidelity filter: found scores, ignore marks and dropped images on a hand-made prediction set, and
tools/filter_synthetic.py on the shapes set with the session's tiny detector."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from helpers import REPO
from mmdet_detdiffusion.layout.matching import found_scores
from mmdet_detdiffusion.synthetic.filter import FOUND_KEY, agreement_filter, filter_summary

# two images: image 1 with boxes 1 (square) and 2 (circle), image 2 with box 3 (triangle); classes 0, 1, 2
COCO = dict(images=[dict(id=1, file_name='a.png', width=64, height=64),
                    dict(id=2, file_name='b.png', width=64, height=64)],
            annotations=[dict(id=1, image_id=1, category_id=1, bbox=[0, 0, 10, 10], area=100, iscrowd=0),
                         dict(id=2, image_id=1, category_id=2, bbox=[20, 20, 20, 20], area=400, iscrowd=0),
                         dict(id=3, image_id=2, category_id=3, bbox=[5, 5, 30, 30], area=900, iscrowd=0)],
            categories=[dict(id=1, name='square'), dict(id=2, name='circle'), dict(id=3, name='triangle')])
# per image: predictions (xyxy, score, class index)
PREDICTIONS = {1: ([[0, 0, 10, 11], [20, 20, 40, 40], [21, 20, 40, 40]], [0.9, 0.2, 0.7], [0, 1, 0]),
               2: ([[5, 5, 35, 35]], [0.8], [0])}  # the triangle is seen as a square: not found


def hand_made_found_scores():
    found = {}
    for image in COCO['images']:
        anns = [a for a in COCO['annotations'] if a['image_id'] == image['id']]
        gt = [[x, y, x + w, y + h] for x, y, w, h in (a['bbox'] for a in anns)]
        scores = found_scores(np.array(gt), [a['category_id'] - 1 for a in anns], *PREDICTIONS[image['id']],
                              iou_thr=0.5, match_class=True)
        found.update({a['id']: s for a, s in zip(anns, scores)})
    return found


def test_found_scores_and_ignore_marks():
    found = hand_made_found_scores()
    assert found == pytest.approx({1: 0.9, 2: 0.2, 3: 0.0})  # box 2: only the 0.2 circle matches its class
    filtered, summary = agreement_filter(COCO, found, score_thr=0.3, ignore_unfound=True)
    anns = {a['id']: a for a in filtered['annotations']}
    assert {i: a[FOUND_KEY] for i, a in anns.items()} == {1: 0.9, 2: 0.2, 3: 0.0}
    assert {i: a['iscrowd'] for i, a in anns.items()} == {1: 0, 2: 1, 3: 1}
    assert summary['boxes_found'] == 1 and summary['boxes_ignored'] == 2 and summary['images_kept'] == 2
    assert COCO['annotations'][1]['iscrowd'] == 0  # the input is left alone
    assert '1/3 layout boxes found' in filter_summary(summary)


def test_min_agreement_drops_images():
    found = hand_made_found_scores()
    filtered, summary = agreement_filter(COCO, found, score_thr=0.3, min_agreement=0.5)
    assert [im['id'] for im in filtered['images']] == [1]  # image 1: 1/2 found; image 2: 0/1
    assert [a['id'] for a in filtered['annotations']] == [1, 2] and summary['images_kept'] == 1
    assert all(a['iscrowd'] == 0 for a in filtered['annotations'])
    with pytest.raises(ValueError, match='min_agreement'):
        agreement_filter(COCO, found, min_agreement=2)


def test_mmdet_reads_the_ignore_marks(tmp_path):
    from mmdet.datasets import CocoDataset
    filtered, _ = agreement_filter(COCO, hand_made_found_scores(), score_thr=0.3, ignore_unfound=True)
    (tmp_path / 'ann.json').write_text(json.dumps(filtered))
    dataset = CocoDataset(ann_file=str(tmp_path / 'ann.json'), data_prefix=dict(img=str(tmp_path)), pipeline=[],
                          metainfo=dict(classes=('square', 'circle', 'triangle')))
    flags = [[inst['ignore_flag'] for inst in dataset.get_data_info(i)['instances']] for i in range(len(dataset))]
    assert flags == [[0, 1], [1]]


@pytest.mark.slow
def test_tool_scores_a_set_with_a_detector(trained_retinanet, shapes_root, tmp_path):
    config, checkpoint = trained_retinanet
    folder = tmp_path / 'set'
    folder.mkdir()
    os.symlink(shapes_root + 'images', folder / 'images')
    coco = json.load(open(shapes_root + 'annotations/train.json'))  # images the detector learnt
    (folder / 'annotations.json').write_text(json.dumps(coco))
    proc = subprocess.run([sys.executable, os.path.join(REPO, 'tools', 'filter_synthetic.py'), str(folder), config,
                           checkpoint, '--device', 'cpu', '--ignore-unfound', '--score-thr', '0.1'],
                          capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.load(open(folder / 'annotations_filtered.json'))
    anns = out['annotations']
    assert len(anns) == len(coco['annotations']) and all(FOUND_KEY in a for a in anns)
    assert [a['iscrowd'] for a in anns] == [int(a[FOUND_KEY] <= 0.1) for a in anns]
    assert 0 < sum(a['iscrowd'] == 0 for a in anns), 'the trained toy detector should find some shapes'
    assert out['detdiffusion']['filter']['boxes'] == len(anns)
    assert 'layout boxes found' in proc.stdout
    missing = subprocess.run([sys.executable, os.path.join(REPO, 'tools', 'filter_synthetic.py'),
                              str(tmp_path / 'nowhere'), config, checkpoint], capture_output=True, text=True,
                             cwd=REPO, timeout=600)
    assert missing.returncode != 0 and 'tools/generate.py' in missing.stderr
