"""Two CPU ranks (gloo) label disjoint shards and gather once: same result as one process."""
import json
import os
import socket

import pytest
import torch.distributed as torch_dist
import torch.multiprocessing as mp

from mmdet_detdiffusion.layout.attribute_file import load_coco


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _label(config, checkpoint, ann_file, img_prefix):
    from mmdet.apis import init_detector
    from mmdet.utils import get_test_pipeline_cfg
    from mmengine.config import Config

    import mmdet_detdiffusion  # noqa: F401
    from mmdet_detdiffusion.attributes.labeler import AttributeLabeler
    model = init_detector(config, checkpoint, device='cpu')
    labeler = AttributeLabeler(model, get_test_pipeline_cfg(Config.fromfile(config)), score_thr=0.05,
                               batch_size=2)
    return labeler.label(load_coco(ann_file), img_prefix, progress=False)


def _worker(rank, world_size, port, args, out_dir):
    torch_dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank,
                                  world_size=world_size)
    try:
        result = _label(*args)
        with open(os.path.join(out_dir, f'rank{rank}.json'), 'w') as f:
            json.dump(dict(attributes=result.attributes, unreadable=result.unreadable_images), f)
    finally:
        torch_dist.destroy_process_group()


@pytest.mark.slow
def test_two_ranks_match_one_process(trained_retinanet, shapes_root, tmp_path):
    args = (*trained_retinanet, shapes_root + 'annotations/train.json', shapes_root + 'images')
    mp.spawn(_worker, args=(2, _free_port(), args, str(tmp_path)), nprocs=2, join=True)
    single = {str(k): v for k, v in _label(*args).attributes.items()}
    coco = load_coco(args[2])
    assert len(single) == len(coco['annotations'])
    for rank in (0, 1):  # every rank holds the full gathered result
        gathered = json.load(open(tmp_path / f'rank{rank}.json'))
        assert gathered['attributes'] == single
