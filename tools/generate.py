"""Generate a synthetic COCO dataset from the layouts of a real one with a trained DetDiffusion generator.

Writes ``OUT/images/``, ``OUT/annotations.json`` (the real categories; every image records its source
image, attribute mode, seed, prompt, sampler, steps, guidance scales, box source and the generator's sha256) and
``OUT/preview.png``. ``--box-source head`` labels each object with the tight box of its perception-head mask and
writes the mask (``segmentation``), which ``SyntheticInstancePaste`` cuts objects out with.
Killed or interrupted runs continue where they stopped when started again.

Examples::

    python tools/generate.py work_dirs/gen/export --ann-file data/shapes/annotations/train_pa_attr.json \\
        --out data/shapes_synthetic_hard --attr-mode hard --num-per-image 1
    torchrun --nproc_per_node 8 tools/generate.py GEN_DIR --ann-file ... --out ... --launcher pytorch
"""
import argparse
import os

import torch
from mmengine import dist
from mmengine.utils import import_modules_from_strings

from mmdet_detdiffusion.generator.export import generator_identity
from mmdet_detdiffusion.generator.pipeline import DetDiffusionPipeline, read_export_config
from mmdet_detdiffusion.generator.sampling import DEFAULT_SAMPLER, SAMPLERS
from mmdet_detdiffusion.layout.attribute_file import CocoFormatError, load_coco
from mmdet_detdiffusion.layout.attributes import GENERATION_MODES, HARD
from mmdet_detdiffusion.synthetic.box_repair import DEFAULT_MASK_THR, DEFAULT_MIN_CONFIDENCE, GENERATED_BOX_SOURCES
from mmdet_detdiffusion.synthetic.writer import OUTPUT_SIZES, SyntheticDatasetWriter
from mmdet_detdiffusion.utils.distributed import init_distributed

DTYPES = dict(fp32=torch.float32, fp16=torch.float16, bf16=torch.bfloat16)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('generator', help='generator export folder (tools/train_generator.py: WORK_DIR/export)')
    parser.add_argument('--ann-file', required=True, help='COCO json whose layouts are generated (pa_attr kept)')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--attr-mode', choices=GENERATION_MODES, default=HARD,
                        help='attribute of every box: hard, easy, or the file\'s own pa_attr (original)')
    parser.add_argument('--num-per-image', type=int, default=1, help='synthetic images per source image')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--batch-size', type=int, default=8, help='images per pipeline call (per rank)')
    parser.add_argument('--steps', type=int, default=25, help='denoising steps')
    parser.add_argument('--guidance-scale', type=float, default=5.0)
    parser.add_argument('--attribute-guidance-scale', type=float, default=0.0,
                        help='steer each box towards its attribute and away from the opposite one (0: off, as in '
                             'the paper; one more U-Net pass per image; DetDiffusionPipeline.__call__)')
    parser.add_argument('--sampler', choices=sorted(SAMPLERS),
                        help=f'sampler over the export\'s noise schedule (default: the export\'s saved scheduler, '
                             f'{DEFAULT_SAMPLER} as exported)')
    parser.add_argument('--output-size', choices=OUTPUT_SIZES, default='source',
                        help='source: resize to the source image so the real boxes are the labels; '
                             'model: keep the generator resolution and rescale the boxes')
    parser.add_argument('--ext', choices=['png', 'jpg'], default='png')
    parser.add_argument('--min-box-area-ratio', type=float,
                        help='drop boxes below this share of the image (default: as in training)')
    parser.add_argument('--min-object-area-ratio', type=float,
                        help='skip images whose boxes cover less (default: as in training)')
    parser.add_argument('--min-objects', type=int, default=0,
                        help='skip source images with fewer boxes (after the area filters; the paper: 3)')
    parser.add_argument('--max-objects', type=int, default=None,
                        help='skip source images with more boxes (default: no limit; the paper: 8)')
    parser.add_argument('--flip-prob', type=float, default=0.0,
                        help='new layouts: flip each layout horizontally with this probability (GeoDiffusion: 0.5)')
    parser.add_argument('--max-shift', type=float, default=0.0,
                        help='new layouts: shift each layout by up to this share of the image side, boxes kept inside')
    parser.add_argument('--repeat-thr', type=float, default=None,
                        help='rare-class quotas: LVIS repeat-factor threshold t, r(c) = max(1, sqrt(t / f(c))) copies '
                             'of an image per its rarest class (default: one copy each)')
    parser.add_argument('--box-source', choices=GENERATED_BOX_SOURCES, default='layout',
                        help='labels: the layout boxes, or the tight boxes of the perception head\'s masks at the '
                             'last denoising step (unsure masks: ignore regions; mmdet_detdiffusion/synthetic/'
                             'box_repair.py)')
    parser.add_argument('--mask-thr', type=float, default=None,
                        help=f'--box-source head only: mask pixels have a probability above it ({DEFAULT_MASK_THR} if '
                             'not given)')
    parser.add_argument('--min-mask-confidence', type=float, default=None,
                        help='--box-source head only: a mask whose mean probability is lower makes an ignore region '
                             f'({DEFAULT_MIN_CONFIDENCE} if not given)')
    parser.add_argument('--dtype', choices=['auto', *DTYPES], default='auto', help='auto: fp16 on GPU, else fp32')
    parser.add_argument('--custom-imports', nargs='+', default=[], metavar='MODULE',
                        help='modules to import before loading the export: those of classes it names that are not '
                             'diffusers\' or transformers\' (e.g. projects.toy_shapes.toy_shapes)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    args = parser.parse_args()
    if args.box_source != 'head' and (args.mask_thr is not None or args.min_mask_confidence is not None):
        parser.error('--mask-thr and --min-mask-confidence set how the perception head\'s masks become boxes: give '
                     f'them with --box-source head, not {args.box_source}')
    return args


def head_box_settings(args: argparse.Namespace) -> dict:
    """The settings of :func:`~mmdet_detdiffusion.synthetic.box_repair.mask_box` that ``--box-source head`` labels
    with, the defaults filled in (every image records them)."""
    return dict(mask_thr=DEFAULT_MASK_THR if args.mask_thr is None else args.mask_thr,
                min_confidence=DEFAULT_MIN_CONFIDENCE if args.min_mask_confidence is None else args.min_mask_confidence)


def main() -> None:
    args = parse_args()
    import_modules_from_strings(args.custom_imports)
    init_distributed(args.launcher)
    if not os.path.isfile(args.ann_file):
        raise SystemExit(f'generate: --ann-file {args.ann_file} does not exist: give the COCO json of the layouts '
                         '(for --attr-mode original, the attribute file that tools/label_attributes.py --out writes)')
    try:
        settings = read_export_config(args.generator)
        coco = load_coco(args.ann_file)
    except (FileNotFoundError, CocoFormatError) as err:
        raise SystemExit(f'generate: {err}') from None
    filters = dict(settings.get('data_filters') or {}, min_objects=args.min_objects, max_objects=args.max_objects)
    for name in ('min_box_area_ratio', 'min_object_area_ratio'):
        if getattr(args, name) is not None:
            filters[name] = getattr(args, name)

    if torch.cuda.is_available():
        device = torch.device('cuda', int(os.environ.get('LOCAL_RANK', 0)))
        torch.cuda.set_device(device)
    else:
        device = torch.device('cpu')
    dtype = DTYPES.get(args.dtype, torch.float16 if device.type == 'cuda' else torch.float32)
    pipe = DetDiffusionPipeline.from_pretrained(args.generator, dtype=dtype).to(device)
    pipe.set_progress_bar_config(disable=True)
    writer = SyntheticDatasetWriter(
        pipe, args.out, args.attr_mode, args.output_size, args.batch_size, num_inference_steps=args.steps,
        guidance_scale=args.guidance_scale, attribute_guidance_scale=args.attribute_guidance_scale,
        sampler=args.sampler, generator_sha256=generator_identity(args.generator), box_source=args.box_source,
        box_repair=head_box_settings(args) if args.box_source == 'head' else None)
    try:
        path = writer.run(coco, args.ann_file, args.num_per_image, args.seed, args.ext, filters, dict(
            flip_prob=args.flip_prob, max_shift=args.max_shift, repeat_thr=args.repeat_thr))
    except ValueError as err:
        raise SystemExit(f'generate: {err}') from None
    if dist.is_main_process():
        print(f'synthetic dataset written: {path} (preview: {os.path.join(args.out, "preview.png")})')


if __name__ == '__main__':
    main()
