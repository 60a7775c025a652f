"""Write a synthetic COCO dataset with a DetDiffusionPipeline: sharded, batched, resumable.

Each rank takes every ``world_size``-th work item of the plan and generates them in batches of
fixed composition, so a restarted run regenerates an interrupted batch exactly as before (same
images, byte for byte, on the same device). Rank 0 assembles ``annotations.json`` once every item is
done and draws ``preview.png`` (generated images with their boxes).
"""
import os
import warnings
from typing import Container, Dict, List, Mapping, Optional, Sequence

from mmengine import dist
from tqdm import tqdm

from mmdet_detdiffusion.generator.sampling import sampler_name
from mmdet_detdiffusion.layout.attributes import ATTR_KEY, HARD, MODE_ORIGINAL, RECORD_KEY
from mmdet_detdiffusion.layout.inputs import MissingAttributesWarning, count_unlabelled
from mmdet_detdiffusion.synthetic.box_repair import box_labelling, mask_rle
from mmdet_detdiffusion.synthetic.manifest import IMAGES_FOLDER, Manifest, assemble_coco, load_done, write_coco
from mmdet_detdiffusion.synthetic.plan import WorkItem, class_counts, plan_items, plan_summary, shard, skipped_reasons
from mmdet_detdiffusion.synthetic.quotas import histogram_table
from mmdet_detdiffusion.synthetic.render import Rendering, render_layouts
from mmdet_detdiffusion.visualization import draw_annotated, save_image, tile_grid

OUTPUT_SIZES = ('source', 'model')


def category_names(coco: dict, classes: Sequence[str], ann_file: str) -> Dict[int, str]:
    """Category id -> name, checked against the generator's classes."""
    names = {cat['id']: cat['name'] for cat in coco['categories']}
    unknown = sorted(set(names.values()) - set(classes))
    if unknown:
        raise ValueError(f'{ann_file}: categories {unknown} are not classes of the generator {list(classes)}')
    return names


class SyntheticDatasetWriter:
    """Generates the items of a plan into ``out_dir`` (see :mod:`.manifest` for the folder layout).

    Args:
        pipe: a :class:`~mmdet_detdiffusion.generator.pipeline.DetDiffusionPipeline`.
        out_dir: output folder (created; existing finished images are kept).
        attr_mode: ``'hard'``, ``'easy'`` or ``'original'`` attributes for every layout.
        output_size: ``'source'`` resizes each image to its source image's size so the real pixel boxes
            are its labels; ``'model'`` keeps the generator's resolution and rescales the boxes.
        num_inference_steps / guidance_scale / attribute_guidance_scale: for the pipeline.
        sampler: a name of ``SAMPLERS`` to sample with; ``None``: ``pipe.scheduler`` (an export's saved one). Every
            image records the one it used by name (:func:`~mmdet_detdiffusion.generator.sampling.sampler_name`).
        generator_sha256: identity of the generator, recorded in every image.
        box_source: ``'layout'``: each object's label is its layout box; ``'head'``: the tight box of the perception
            head's mask of it, or an ignore region (``iscrowd = 1``) where the mask is empty or unsure
            (:mod:`~mmdet_detdiffusion.synthetic.box_repair`, settings ``box_repair``, given with ``'head'`` only).
            Every image records both (``box_source``, ``box_repair``), and every repaired annotation its
            ``layout_bbox``.
    """

    def __init__(self, pipe, out_dir: str, attr_mode: str = HARD, output_size: str = 'source',
                 batch_size: int = 8, num_inference_steps: int = 25, guidance_scale: float = 5.0,
                 attribute_guidance_scale: float = 0.0, sampler: Optional[str] = None, generator_sha256: str = '',
                 box_source: str = 'layout', box_repair: Optional[dict] = None):
        if output_size not in OUTPUT_SIZES:
            raise ValueError(f'output_size must be one of {OUTPUT_SIZES}, got {output_size!r}')
        self.pipe = pipe
        self.out_dir = out_dir
        self.attr_mode = attr_mode
        self.output_size = output_size
        self.batch_size = batch_size
        self.call_kwargs = dict(num_inference_steps=num_inference_steps, guidance_scale=guidance_scale,
                                attribute_guidance_scale=attribute_guidance_scale, sampler=sampler)
        self.box_settings = box_labelling(box_source, box_repair)
        self.recorded_settings = dict(self.call_kwargs, sampler=sampler or sampler_name(pipe.scheduler),
                                      **self.box_settings)
        self.generator_sha256 = generator_sha256

    def run(self, coco: dict, ann_file: str, num_per_image: int = 1, seed: int = 0, ext: str = 'png',
            filters: Optional[dict] = None, layout_options: Optional[dict] = None, progress: bool = True
            ) -> Optional[str]:
        """Generate this rank's share of the plan; on rank 0 write the COCO file when all is done.

        ``filters``: the plan's layout filters (area, object count); ``layout_options``: its new layouts
        (``flip_prob``, ``max_shift``, ``repeat_thr``), see :func:`~mmdet_detdiffusion.synthetic.plan.plan_items`.
        Returns the path of ``annotations.json`` on rank 0, else ``None``.
        """
        names = category_names(coco, self.pipe.classes, ann_file)
        filters, layout_options = dict(filters or {}), dict(layout_options or {})
        items, skipped = plan_items(coco, num_per_image, self.attr_mode, seed, ext, **filters, **layout_options)
        rank, world_size = dist.get_rank(), dist.get_world_size()
        if progress and rank == 0:
            print(plan_summary(items, skipped))
            if layout_options.get('repeat_thr') is not None:
                before = {c: n * num_per_image for c, n in class_counts(items, per_source=True).items()}
                print(f'rare-class quotas (repeat_thr {layout_options["repeat_thr"]}): objects per class\n'
                      + histogram_table(before, class_counts(items), names))
        if rank == 0:
            self.warn_missing_attributes(items, ann_file)
        done = load_done(self.out_dir)
        manifest = Manifest(self.out_dir, rank)
        mine = shard(items, rank, world_size)
        bar = tqdm(total=len(mine), initial=sum(item.file_name in done for item in mine), unit='img',
                   desc=f'generating ({self.attr_mode})', disable=not progress or rank != 0)
        with warnings.catch_warnings():
            # warn_missing_attributes has said it once, naming the file; the pipeline would repeat it per batch
            warnings.simplefilter('ignore', MissingAttributesWarning)
            for start in range(0, len(mine), self.batch_size):
                batch = mine[start:start + self.batch_size]
                if all(item.file_name in done for item in batch):
                    continue
                for record in self.generate_batch(batch, names, skip=done, filters=filters):
                    manifest.append(record)
                    bar.update(1)
        bar.close()
        dist.barrier()
        if rank != 0:
            return None
        records = list(load_done(self.out_dir).values())
        missing = len(items) - len(records)
        if missing:
            raise RuntimeError(f'{self.out_dir}: {missing} of {len(items)} images are missing after generation')
        info = dict(source_ann_file=os.path.abspath(ann_file), generator_sha256=self.generator_sha256,
                    attr_mode=self.attr_mode, num_per_image=num_per_image, seed=seed, output_size=self.output_size,
                    filters=filters, layout_options=layout_options, skipped_source_images=skipped,
                    **self.recorded_settings)
        path = write_coco(assemble_coco(records, coco['categories'], info), self.out_dir)
        self.write_preview(records, names)
        if progress and any(skipped.values()):
            print(f'{sum(skipped.values())} source images skipped ({skipped_reasons(skipped)}); their counts are '
                  f'under "{RECORD_KEY}" > "skipped_source_images" in {path}')
        return path

    def warn_missing_attributes(self, items: Sequence[WorkItem], ann_file: str) -> None:
        """Warn when ``'original'`` mode would write boxes without attribute tokens (boxes without ``pa_attr``)."""
        if self.attr_mode != MODE_ORIGINAL or not self.pipe.use_attributes:
            return
        unlabelled, total = count_unlabelled(item.attrs for item in items if item.variant == 0)
        if unlabelled:
            warnings.warn(
                f"attr mode 'original': {unlabelled} of the {total} boxes kept from {ann_file} carry no P.A. "
                f'attribute ({ATTR_KEY}), so their prompts get no attribute token. Label the boxes first (python '
                f'tools/label_attributes.py DET_CONFIG DET_CHECKPOINT --ann-file {ann_file} --img-prefix IMAGES '
                "--out ATTR_FILE) and generate from ATTR_FILE, or give every box one with attr mode 'hard' or "
                "'easy' (tools/generate.py --attr-mode hard|easy).", MissingAttributesWarning, stacklevel=3)

    def generate_batch(self, batch: List[WorkItem], names: Dict[int, str], skip: Container[str] = (),
                       filters: Optional[Mapping[str, float]] = None) -> List[dict]:
        """Generate the whole ``batch`` (its composition fixes every image), write the images whose file
        name is not in ``skip``; return their manifest records (nothing appended yet).

        ``filters``: the area filters of :func:`~mmdet_detdiffusion.synthetic.render.render_layouts`; objects
        that are not drawn (filtered, or cut from the prompt) are left out of the annotations. The plan's
        layouts passed the same filters already (layout edits move boxes rigidly), so none of them is dropped.
        """
        layouts = [dict(boxes=item.boxes, labels=[names[c] for c in item.category_ids], attrs=item.attrs,
                        image_size=(item.source['height'], item.source['width'])) for item in batch]
        renderings = render_layouts(self.pipe, layouts, [item.seed for item in batch], self.attr_mode,
                                    resize=self.output_size == 'source', filters=filters, **self.box_settings,
                                    **self.call_kwargs)
        records = []
        for item, rendering in zip(batch, renderings):
            if item.file_name in skip:
                continue
            if rendering is None:
                raise RuntimeError(f'{item.file_name}: the filters {filters} drop a layout that the plan kept')
            height, width = rendering.image.shape[:2]
            save_image(os.path.join(self.out_dir, IMAGES_FOLDER, item.file_name), rendering.image)
            annotations = [self.annotation(item, rendering, j) for j in range(len(rendering.drawn))]
            provenance = dict(source_image_id=item.source['id'], source_file_name=item.source['file_name'],
                              attr_mode=self.attr_mode, variant=item.variant, seed=item.seed, layout_edit=item.edit,
                              prompt=rendering.prompt, generator_sha256=self.generator_sha256,
                              **self.recorded_settings)
            records.append({'index': item.index, 'file_name': item.file_name, 'width': width, 'height': height,
                            RECORD_KEY: provenance, 'annotations': annotations})
        return records

    def annotation(self, item: WorkItem, rendering: Rendering, j: int) -> dict:
        """The annotation of the ``j``-th drawn object of ``rendering`` (``bbox`` xywh pixels); an ignored one is the
        layout box with ``iscrowd = 1``; a repaired one keeps its ``layout_bbox`` and its mask (``segmentation``, COCO
        RLE), what :class:`~mmdet_detdiffusion.transforms.SyntheticInstancePaste` cuts objects out with."""
        k = rendering.drawn[j]
        x1, y1, x2, y2 = rendering.boxes[j].tolist()
        annotation = {'bbox': [x1, y1, x2 - x1, y2 - y1], 'category_id': item.category_ids[k],
                      ATTR_KEY: rendering.attrs[j]}
        if self.box_settings['box_source'] != 'layout':
            lx1, ly1, lx2, ly2 = rendering.layout_boxes[j].tolist()
            annotation.update(layout_bbox=[lx1, ly1, lx2 - lx1, ly2 - ly1], iscrowd=int(rendering.ignored[j]))
            if not rendering.ignored[j]:
                annotation['segmentation'] = mask_rle(rendering.masks[j])
        return annotation

    def write_preview(self, records: List[dict], names: Dict[int, str], count: int = 8) -> str:
        """``preview.png``: the first ``count`` images with their boxes (green easy, red hard)."""
        tiles = [draw_annotated(os.path.join(self.out_dir, IMAGES_FOLDER, record['file_name']),
                                record['annotations'], names, size=128)
                 for record in sorted(records, key=lambda r: r['index'])[:count]]
        path = os.path.join(self.out_dir, 'preview.png')
        if tiles:
            save_image(path, tile_grid(tiles, columns=4))
        return path
