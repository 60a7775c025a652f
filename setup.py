"""mmdet-detdiffusion: DetDiffusion (CVPR 2024) as an OpenMMLab / mmdetection plugin."""
import os

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def read_version() -> str:
    scope: dict = {}
    with open(os.path.join(HERE, 'mmdet_detdiffusion', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


setup(
    name='mmdet-detdiffusion',
    version=read_version(),
    description='DetDiffusion: perception-aware layout-to-image generation as training data for mmdet',
    long_description=open(os.path.join(HERE, 'README.md'), encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['mmdet_detdiffusion', 'mmdet_detdiffusion.*']),
    python_requires='>=3.9',
    # Ranges here; the exact versions tested together are in requirements/constraints.txt.
    # mmcv (with compiled ops) is built from source by `make install`, see README.
    install_requires=[
        'torch>=2.1',
        'numpy<2',
        'mmengine>=0.10.4,<0.11',
        'mmcv>=2.0.0rc4,<2.2.0',
        'mmdet>=3.3.0,<3.4',
        'pycocotools',
        'opencv-python',
        'diffusers>=0.30',
        'transformers>=4.40',
        'safetensors',
        'tqdm',
    ],
    # open-clip-torch only ships CLIP's BPE vocabulary for offline tokenizers (installed with --no-deps).
    extras_require={'tests': ['pytest>=7', 'flake8', 'isort']},
    license='Apache-2.0',
)
