"""The resumable record of a synthetic dataset being written, and the final COCO file (pure python).

Layout of an output folder::

    images/                  generated images (each written to a temp file, then renamed)
    manifest/rank{r}.jsonl   one line per finished image, appended after its file is in place
    annotations.json         the COCO dataset, assembled from the manifests when every item is done

An image counts as done when its manifest line and its file both exist, so a killed run loses at
most the images in flight; a torn last line is cut off when its writer starts again.
"""
import glob
import json
import os
from typing import Dict, List, Sequence

from mmdet_detdiffusion.layout.attributes import ATTR_KEY, RECORD_KEY
from mmdet_detdiffusion.utils.fileio import atomic_write_json

MANIFEST_FOLDER = 'manifest'
IMAGES_FOLDER = 'images'
ANNOTATION_FILE = 'annotations.json'


class Manifest:
    """Append-only JSON-lines file of finished images written by one rank."""

    def __init__(self, out_dir: str, rank: int = 0):
        self.path = os.path.join(out_dir, MANIFEST_FOLDER, f'rank{rank}.jsonl')
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self._cut_torn_line()

    def _cut_torn_line(self) -> None:
        if not os.path.isfile(self.path):
            return
        with open(self.path, 'rb+') as f:
            data = f.read()
            if data and not data.endswith(b'\n'):
                f.truncate(data.rfind(b'\n') + 1)

    def append(self, record: dict) -> None:
        """Add one finished image durably (flushed and synced before returning)."""
        with open(self.path, 'a', encoding='utf-8') as f:
            f.write(json.dumps(record) + '\n')
            f.flush()
            os.fsync(f.fileno())


def load_done(out_dir: str) -> Dict[str, dict]:
    """Records of all ranks whose image file exists, by ``file_name`` (torn lines are ignored)."""
    done = {}
    for path in sorted(glob.glob(os.path.join(out_dir, MANIFEST_FOLDER, 'rank*.jsonl'))):
        with open(path, encoding='utf-8') as f:
            for line in f:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if os.path.isfile(os.path.join(out_dir, IMAGES_FOLDER, record['file_name'])):
                    done[record['file_name']] = record
    return done


def assemble_coco(records: Sequence[dict], categories: List[dict], record: dict) -> dict:
    """The synthetic COCO dict: images in plan order with ids 1..N, annotations numbered in order.

    Each record holds ``index``, ``file_name``, ``width``, ``height``, ``detdiffusion`` (per-image
    provenance) and ``annotations`` (``bbox`` xywh pixels, ``category_id``, ``pa_attr``; ``iscrowd`` and
    ``layout_bbox`` and ``segmentation`` where boxes were repaired, :mod:`.box_repair`); ``record`` is the
    dataset's provenance (top-level ``"detdiffusion"``).
    """
    images, annotations = [], []
    for image_id, image in enumerate(sorted(records, key=lambda r: r['index']), start=1):
        images.append({'id': image_id, 'file_name': image['file_name'], 'width': image['width'],
                       'height': image['height'], RECORD_KEY: image[RECORD_KEY]})
        for ann in image['annotations']:
            x, y, w, h = ann['bbox']
            annotations.append({'id': len(annotations) + 1, 'image_id': image_id, 'category_id': ann['category_id'],
                                'bbox': [x, y, w, h], 'area': w * h, 'iscrowd': ann.get('iscrowd', 0),
                                ATTR_KEY: ann.get(ATTR_KEY),
                                **{key: ann[key] for key in ('layout_bbox', 'segmentation') if key in ann}})
    return {'info': dict(description='DetDiffusion synthetic dataset'), 'images': images, 'annotations': annotations,
            'categories': categories, RECORD_KEY: record}


def write_coco(coco: dict, out_dir: str) -> str:
    """Write ``annotations.json`` atomically; return its path."""
    path = os.path.join(out_dir, ANNOTATION_FILE)
    atomic_write_json(coco, path)
    return path
