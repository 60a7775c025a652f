"""tools/generate.py: the synthetic COCO dataset, its provenance, kill-and-restart, loading in mmdet."""
import json
import os
import runpy
import signal
import subprocess
import sys
import time
import warnings

import cv2
import numpy as np
import pytest

from helpers import REPO, SOURCE, generate_cmd, run_generate
from mmdet_detdiffusion.synthetic.box_repair import DEFAULT_MIN_CONFIDENCE


def folder_contents(out):
    """{relative path: bytes} of the images and the COCO json."""
    files = {'annotations.json': open(os.path.join(out, 'annotations.json'), 'rb').read()}
    for name in sorted(os.listdir(os.path.join(out, 'images'))):
        files['images/' + name] = open(os.path.join(out, 'images', name), 'rb').read()
    return files


@pytest.fixture(scope='module')
def synthetic_hard(tiny_generator_export, shapes_root, tmp_path_factory):
    out = tmp_path_factory.mktemp('synthetic_hard')
    run_generate(tiny_generator_export, shapes_root, out, '--attr-mode', 'hard')
    return str(out)


def test_dataset_holds_source_boxes_and_provenance(synthetic_hard, shapes_root):
    coco = json.load(open(os.path.join(synthetic_hard, 'annotations.json')))
    source = json.load(open(shapes_root + SOURCE))
    assert coco['categories'] == source['categories']
    assert len(coco['images']) == len(os.listdir(os.path.join(synthetic_hard, 'images'))) > 0
    by_id = {img['id']: img for img in source['images']}
    image = coco['images'][0]
    record = image['detdiffusion']
    assert record['attr_mode'] == 'hard' and record['sampler'] == 'dpmsolver++' and record['num_inference_steps'] == 6
    assert record['prompt'].startswith('An image with') and len(record['generator_sha256']) == 64
    src = by_id[record['source_image_id']]
    assert (image['width'], image['height']) == (src['width'], src['height'])  # --output-size source
    src_boxes = sorted(a['bbox'] for a in source['annotations'] if a['image_id'] == src['id'])
    boxes = sorted(a['bbox'] for a in coco['annotations'] if a['image_id'] == image['id'])
    assert np.allclose(boxes, src_boxes) and {a['pa_attr'] for a in coco['annotations']} == {'hard'}
    assert coco['detdiffusion']['filters'] == {'min_object_area_ratio': 0.02,  # from the export
                                               'min_objects': 0, 'max_objects': None}  # no count filter
    assert os.path.isfile(os.path.join(synthetic_hard, 'preview.png'))
    pixels = cv2.imread(os.path.join(synthetic_hard, 'images', image['file_name']))
    assert np.ptp(pixels) > 10, 'written as 0-255 levels, not as [0, 1] floats cast to uint8'


def test_dataset_loads_in_pycocotools_and_mmdet(synthetic_hard):
    from mmdet.datasets import CocoDataset
    from pycocotools.coco import COCO
    coco = COCO(os.path.join(synthetic_hard, 'annotations.json'))
    assert len(coco.getImgIds()) > 0 and len(coco.getAnnIds()) > 0
    dataset = CocoDataset(data_root=synthetic_hard + '/', ann_file='annotations.json', data_prefix=dict(img='images/'),
                          metainfo=dict(classes=('circle', 'square', 'triangle')), pipeline=[
                              dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True)])
    sample = dataset[0]
    assert sample['img'].shape[:2] == (sample['height'], sample['width'])
    assert len(sample['gt_bboxes']) == len(coco.getAnnIds(imgIds=[sample['img_id']]))


@pytest.mark.slow
def test_killed_run_restarts_to_the_same_dataset(tiny_generator_export, shapes_root, synthetic_hard, tmp_path):
    out = tmp_path / 'killed'
    process = subprocess.Popen(generate_cmd(tiny_generator_export, shapes_root, out, '--attr-mode', 'hard'), cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    manifest = out / 'manifest' / 'rank0.jsonl'
    deadline = time.time() + 300
    while process.poll() is None and time.time() < deadline:
        if manifest.exists() and manifest.read_text().count('\n') >= 3:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    process.wait()
    assert process.returncode == -signal.SIGKILL, 'the run ended before it could be killed'
    assert not (out / 'annotations.json').exists()
    result = run_generate(tiny_generator_export, shapes_root, out, '--attr-mode', 'hard')
    assert 'synthetic dataset written' in result.stdout
    assert folder_contents(str(out)) == folder_contents(synthetic_hard)


@pytest.mark.slow
def test_two_ranks_with_torchrun_make_the_same_dataset(tiny_generator_export, shapes_root, synthetic_hard, tmp_path):
    out = tmp_path / 'ddp'
    cmd = generate_cmd(tiny_generator_export, shapes_root, out, '--attr-mode', 'hard', '--launcher', 'pytorch')
    result = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2',
                             '--master_port', '29517', *cmd[1:]], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(os.listdir(out / 'manifest')) == ['rank0.jsonl', 'rank1.jsonl']
    ddp = json.load(open(out / 'annotations.json'))
    single = json.load(open(os.path.join(synthetic_hard, 'annotations.json')))
    assert ddp['images'] == single['images'] and ddp['annotations'] == single['annotations']


def test_original_mode_on_an_unlabelled_file_warns_once_and_skips_are_reported(tiny_generator_export, shapes_root,
                                                                               tmp_path, capsys):
    from mmdet_detdiffusion.generator.pipeline import DetDiffusionPipeline
    from mmdet_detdiffusion.layout.inputs import MissingAttributesWarning
    from mmdet_detdiffusion.synthetic.writer import SyntheticDatasetWriter
    coco = json.load(open(shapes_root + 'annotations/train.json'))  # no pa_attr
    coco['images'] = coco['images'][:3] + [dict(id=-1, file_name='no_boxes.png', width=128, height=128)]
    coco['annotations'] = [a for a in coco['annotations'] if a['image_id'] in {i['id'] for i in coco['images']}]
    pipe = DetDiffusionPipeline.from_pretrained(tiny_generator_export)
    pipe.set_progress_bar_config(disable=True)
    writer = SyntheticDatasetWriter(pipe, str(tmp_path), 'original', batch_size=1, num_inference_steps=1)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter('always')  # so that a warning per batch (3 batches) would be seen
        path = writer.run(coco, 'train.json')
    record = [r for r in record if r.category is MissingAttributesWarning]
    assert len(record) == 1, 'one warning per run, naming the file, not one per batch or image'
    message = str(record[0].message)
    assert 'boxes kept from train.json carry no P.A. attribute' in message and '--attr-mode hard|easy' in message
    assert 'tools/label_attributes.py' in message
    assert all(a['pa_attr'] is None for a in json.load(open(path))['annotations'])
    assert f'1 source images skipped (1 no boxes); their counts are under "detdiffusion" > ' \
           f'"skipped_source_images" in {path}' in capsys.readouterr().out


def test_new_layouts_are_recorded_per_image(tiny_generator_export, shapes_root, tmp_path, capsys):
    from mmdet_detdiffusion.generator.pipeline import DetDiffusionPipeline
    from mmdet_detdiffusion.synthetic.writer import SyntheticDatasetWriter
    coco = json.load(open(shapes_root + SOURCE))
    coco['images'] = coco['images'][:4]
    coco['annotations'] = [a for a in coco['annotations'] if a['image_id'] in {i['id'] for i in coco['images']}]
    pipe = DetDiffusionPipeline.from_pretrained(tiny_generator_export)
    pipe.set_progress_bar_config(disable=True)
    writer = SyntheticDatasetWriter(pipe, str(tmp_path), 'hard', batch_size=4, num_inference_steps=1)
    path = writer.run(coco, SOURCE, seed=2, layout_options=dict(flip_prob=0.5, max_shift=0.2, repeat_thr=1.0))
    out = json.load(open(path))
    assert out['detdiffusion']['layout_options'] == dict(flip_prob=0.5, max_shift=0.2, repeat_thr=1.0)
    assert len(out['images']) > 4  # with t = 1 every class is below the threshold: some images repeat
    for image in out['images']:
        edit = image['detdiffusion']['layout_edit']
        assert set(edit) == {'flip', 'shift'}
        source = [a for a in coco['annotations'] if a['image_id'] == image['detdiffusion']['source_image_id']]
        mine = [a for a in out['annotations'] if a['image_id'] == image['id']]
        assert sorted(a['category_id'] for a in mine) == sorted(a['category_id'] for a in source)
        for a in mine:
            x, y, w, h = a['bbox']
            assert -1e-6 <= x and x + w <= image['width'] + 1e-6 and -1e-6 <= y and y + h <= image['height'] + 1e-6
    assert 'rare-class quotas (repeat_thr 1.0): objects per class' in capsys.readouterr().out


def test_attribute_guidance_is_recorded_in_the_set_and_each_image(tiny_generator_export, shapes_root, tmp_path):
    from mmdet_detdiffusion.generator.pipeline import DetDiffusionPipeline
    from mmdet_detdiffusion.synthetic.writer import SyntheticDatasetWriter
    coco = json.load(open(shapes_root + SOURCE))
    coco['images'] = coco['images'][:2]
    coco['annotations'] = [a for a in coco['annotations'] if a['image_id'] in {i['id'] for i in coco['images']}]
    pipe = DetDiffusionPipeline.from_pretrained(tiny_generator_export)
    pipe.set_progress_bar_config(disable=True)
    writer = SyntheticDatasetWriter(pipe, str(tmp_path), 'hard', batch_size=2, num_inference_steps=1,
                                    attribute_guidance_scale=1.5)
    out = json.load(open(writer.run(coco, SOURCE, progress=False)))
    assert out['detdiffusion']['attribute_guidance_scale'] == 1.5 and len(out['images']) == 2
    assert [image['detdiffusion']['attribute_guidance_scale'] for image in out['images']] == [1.5, 1.5]


def test_bad_inputs_are_named(tiny_generator_export, shapes_root, tmp_path, monkeypatch):
    not_coco = tmp_path / 'x.json'
    not_coco.write_text('[1, 2]')
    work_dir = os.path.dirname(tiny_generator_export)
    for generator, ann_file, message in ((tiny_generator_export, str(not_coco), 'x.json'),
                                         (str(tmp_path), shapes_root + SOURCE, 'has no model_index.json: '
                                          'tools/train_generator.py writes a generator export to WORK_DIR/export'),
                                         (work_dir, shapes_root + SOURCE, f'pass its export folder {work_dir}/export'),
                                         (tiny_generator_export, str(tmp_path / 'absent.json'),
                                          'the attribute file that tools/label_attributes.py --out writes')):
        monkeypatch.setattr(sys, 'argv', ['generate.py', generator, '--ann-file', ann_file, '--out',
                                          str(tmp_path / 'o')])
        with pytest.raises(SystemExit) as exit_info:  # the tool's own message, not a traceback
            runpy.run_path(os.path.join(REPO, 'tools', 'generate.py'), run_name='__main__')
        assert message in str(exit_info.value.code)


def test_mask_settings_go_with_head_boxes_only(monkeypatch, capsys):
    tool = runpy.run_path(os.path.join(REPO, 'tools', 'generate.py'))
    base = ['generate.py', 'export', '--ann-file', 'a.json', '--out', 'o']
    monkeypatch.setattr(sys, 'argv', [*base, '--box-source', 'head', '--mask-thr', '0.3'])
    settings = tool['head_box_settings'](tool['parse_args']())
    assert settings == dict(mask_thr=0.3, min_confidence=DEFAULT_MIN_CONFIDENCE)  # the default recorded too
    monkeypatch.setattr(sys, 'argv', [*base, '--min-mask-confidence', '0.9'])  # layout boxes by default
    with pytest.raises(SystemExit) as exit_info:
        tool['parse_args']()
    assert exit_info.value.code == 2 and 'give them with --box-source head, not layout' in capsys.readouterr().err
