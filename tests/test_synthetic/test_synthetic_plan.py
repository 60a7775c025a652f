"""The synthetic-dataset plan and manifest (pure python): determinism, filters, sharding, torn lines."""
import json
import os

from mmdet_detdiffusion.synthetic.manifest import Manifest, assemble_coco, load_done
from mmdet_detdiffusion.synthetic.plan import class_counts, plan_items, plan_summary, shard, synthetic_file_name


def small_coco():
    images = [dict(id=7, file_name='a/x.jpg', width=100, height=100),
              dict(id=8, file_name='y.png', width=100, height=100),
              dict(id=9, file_name='z.png', width=100, height=100)]
    annotations = [
        dict(id=1, image_id=7, category_id=1, bbox=[0, 0, 20, 20], iscrowd=0, pa_attr='easy'),
        dict(id=2, image_id=7, category_id=2, bbox=[50, 50, 30, 30], iscrowd=1, pa_attr='hard'),
        dict(id=3, image_id=7, category_id=2, bbox=[90, 90, 30, 30], iscrowd=0, pa_attr='hard'),  # clipped
        dict(id=4, image_id=8, category_id=1, bbox=[0, 0, 1, 1], iscrowd=0),  # covers 0.01%
    ]
    return dict(images=images, annotations=annotations,
                categories=[dict(id=1, name='circle'), dict(id=2, name='square')])


def test_plan_is_deterministic_skips_crowd_and_filtered_images():
    items, skipped = plan_items(small_coco(), num_per_image=2, attr_mode='hard', seed=3, min_object_area_ratio=0.02)
    assert [(i.source['id'], i.variant) for i in items] == [(7, 0), (7, 1)]
    assert skipped == {'no boxes': 1, 'objects too small': 1, 'object count outside [0, inf]': 0}
    assert items[0].boxes == ((0, 0, 20, 20), (90, 90, 100, 100))  # crowd left out, the other clipped
    assert items[0].category_ids == (1, 2) and items[0].attrs == ('easy', 'hard')
    assert items[0].file_name == 'a_x_hard_0.png' and items[1].file_name == 'a_x_hard_1.png'
    again, _ = plan_items(small_coco(), num_per_image=2, attr_mode='hard', seed=3, min_object_area_ratio=0.02)
    assert again == items and items[0].seed != items[1].seed
    other_seed, _ = plan_items(small_coco(), num_per_image=2, attr_mode='hard', seed=4, min_object_area_ratio=0.02)
    assert other_seed[0].seed != items[0].seed


def test_min_and_max_objects_keep_exactly_the_images_in_range():
    images = [dict(id=i, file_name=f'{i}.png', width=100, height=100) for i in range(1, 11)]
    annotations = [dict(id=100 * i + k, image_id=i, category_id=1, bbox=[k * 9, 0, 8, 8], iscrowd=0)
                   for i in range(1, 11) for k in range(i)]  # image i has i boxes
    annotations.append(dict(id=9999, image_id=3, category_id=1, bbox=[0, 50, 40, 40], iscrowd=1))  # not counted
    coco = dict(images=images, annotations=annotations, categories=[dict(id=1, name='circle')])
    items, skipped = plan_items(coco, num_per_image=1, attr_mode='hard', min_objects=3, max_objects=8)
    assert [item.source['id'] for item in items] == [3, 4, 5, 6, 7, 8]
    assert skipped['object count outside [3, 8]'] == 4
    assert plan_summary(items, skipped).startswith('layouts kept: 6 source images with 33 objects')


def test_layout_edits_move_each_item_inside_the_image_and_keep_classes():
    items, _ = plan_items(small_coco(), num_per_image=20, attr_mode='hard', seed=1, min_object_area_ratio=0.02,
                          flip_prob=0.5, max_shift=0.2)
    plain, _ = plan_items(small_coco(), num_per_image=20, attr_mode='hard', seed=1, min_object_area_ratio=0.02)
    assert [i.seed for i in items] == [i.seed for i in plain]  # the edits do not change the noise
    assert {i.edit['flip'] for i in items} == {True, False}
    for item, source in zip(items, plain):
        assert item.category_ids == source.category_ids and item.attrs == source.attrs
        for (x1, y1, x2, y2), (a1, b1, a2, b2) in zip(item.boxes, source.boxes):
            assert 0 <= x1 and x2 <= 100 and 0 <= y1 and y2 <= 100
            assert (round(x2 - x1, 6), round(y2 - y1, 6)) == (round(a2 - a1, 6), round(b2 - b1, 6))
        dx, dy = item.edit['shift']
        width = source.boxes[0][2] - source.boxes[0][0]
        x1 = 100 - source.boxes[0][2] if item.edit['flip'] else source.boxes[0][0]
        assert abs(item.boxes[0][0] - (x1 + dx)) < 1e-2 and abs(item.boxes[0][2] - (x1 + width + dx)) < 1e-2
    assert plain[0].edit is None


def test_quotas_repeat_images_of_the_rare_class():
    images = [dict(id=i, file_name=f'{i}.png', width=100, height=100) for i in range(1, 11)]
    annotations = [dict(id=i, image_id=i, category_id=1 if i < 10 else 2, bbox=[10, 10, 30, 30], iscrowd=0)
                   for i in range(1, 11)]  # class 2 in 1 image of 10: r = sqrt(0.4 / 0.1) = 2
    coco = dict(images=images, annotations=annotations, categories=[dict(id=1, name='a'), dict(id=2, name='b')])
    items, _ = plan_items(coco, num_per_image=1, attr_mode='hard', repeat_thr=0.4)
    assert [i.source['id'] for i in items] == list(range(1, 10)) + [10, 10]
    assert [i.variant for i in items[-2:]] == [0, 1] and items[-1].file_name == '10_hard_1.png'
    assert class_counts(items) == {1: 9, 2: 2} and class_counts(items, per_source=True) == {1: 9, 2: 1}
    assert plan_summary(items, {}).startswith('layouts kept: 10 source images with 10 objects (11 images')


def test_shards_partition_the_plan():
    items, _ = plan_items(small_coco(), num_per_image=5, attr_mode='easy')
    shards = [shard(items, rank, 3) for rank in range(3)]
    assert sorted(i.index for s in shards for i in s) == list(range(len(items)))
    assert synthetic_file_name('dir/img.jpg', 'easy', 4, 'jpg') == 'dir_img_easy_4.jpg'


def test_manifest_survives_a_torn_line_and_requires_the_image(tmp_path):
    out = str(tmp_path)
    os.makedirs(tmp_path / 'images')
    for name in ('a.png', 'b.png'):
        (tmp_path / 'images' / name).write_bytes(b'x')
    manifest = Manifest(out, rank=0)
    manifest.append(dict(file_name='a.png', index=1))
    manifest.append(dict(file_name='c.png', index=2))  # its image never got written
    with open(manifest.path, 'a') as f:
        f.write('{"file_name": "b.png", "ind')  # killed mid-line
    assert set(load_done(out)) == {'a.png'}
    Manifest(out, rank=0).append(dict(file_name='b.png', index=0))  # a restart cuts the torn line first
    assert set(load_done(out)) == {'a.png', 'b.png'}
    assert all(json.loads(line) for line in open(manifest.path))


def test_assembled_coco_is_ordered_by_plan_index():
    records = [dict(index=5, file_name='b.png', width=10, height=10, detdiffusion={}, annotations=[
                   dict(bbox=[1, 1, 2, 3], category_id=2, pa_attr='hard')]),
               dict(index=2, file_name='a.png', width=10, height=10, detdiffusion={}, annotations=[
                   dict(bbox=[0, 0, 5, 5], category_id=1, pa_attr='easy')])]
    coco = assemble_coco(records, small_coco()['categories'], dict(attr_mode='hard'))
    assert [i['file_name'] for i in coco['images']] == ['a.png', 'b.png']
    assert [(a['id'], a['image_id'], a['area']) for a in coco['annotations']] == [(1, 1, 25), (2, 2, 6)]
    assert coco['detdiffusion'] == dict(attr_mode='hard')
