# DetDiffusion, COCO 2017, 256x256 (paper setting). 8 GPUs:
#   torchrun --nproc_per_node 8 tools/train_generator.py \
#       configs/generator/detdiffusion_sd15_8xb32-60e_coco-256x256.py --launcher pytorch
_base_ = './_base_/detdiffusion_sd15_coco.py'
