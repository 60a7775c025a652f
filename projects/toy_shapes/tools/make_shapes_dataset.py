"""Write the toy "shapes" COCO detection dataset (by default the demo's).

Example::

    python projects/toy_shapes/tools/make_shapes_dataset.py data/shapes --num-train 200 --num-val 300 --seed 0

The defaults are the demo's data (``DEMO_SHAPES``).
"""
import argparse

from projects.toy_shapes.toy_shapes.shapes import COLOUR_SCHEMES, DEMO_SHAPES, write_shapes_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('out_dir', help='dataset folder to write (images/ and annotations/)')
    parser.add_argument('--num-train', type=int, default=200)
    parser.add_argument('--num-val', type=int, default=300)
    parser.add_argument('--size', type=int, default=DEMO_SHAPES['size'], help='image side in pixels')
    parser.add_argument('--max-objects', type=int, default=4)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--min-radius', type=float, default=DEMO_SHAPES['min_radius'],
                        help='smallest half-size of an object in pixels (the largest is size / 5: --size must be '
                             'at least 5x this)')
    parser.add_argument('--colours', choices=COLOUR_SCHEMES, default=DEMO_SHAPES['colours'],
                        help="'by_class' (what the toy base and the demo use): red circles, green squares, blue "
                             "triangles on grey; 'random': any colour on any background")
    parser.add_argument('--min-contrast', type=float, default=DEMO_SHAPES['min_contrast'],
                        help="'by_class': each object's contrast is uniform in this..1")
    args = parser.parse_args()
    paths = write_shapes_dataset(args.out_dir, args.num_train, args.num_val, args.size, args.max_objects,
                                 min_radius=args.min_radius, seed=args.seed, colours=args.colours,
                                 min_contrast=args.min_contrast)
    for split, path in paths.items():
        print(f'{split}: {path}')


if __name__ == '__main__':
    main()
