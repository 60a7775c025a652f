"""DetDiffusionPipeline on a tiny export: loading, output shapes and boxes, seeds, samplers, errors."""
import numpy as np
import pytest
import torch

from mmdet_detdiffusion.generator.pipeline import SAMPLERS, DetDiffusionPipeline

LAYOUT = dict(boxes=[[10, 20, 60, 100], [70, 10, 120, 40]], labels=['circle', 2], attrs=['easy', 'hard'],
              image_size=(128, 160))


@pytest.fixture(scope='module')
def pipe(tiny_generator_export):
    pipe = DetDiffusionPipeline.from_pretrained(tiny_generator_export)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def seeded(*seeds):
    return [torch.Generator().manual_seed(s) for s in seeds]


def test_export_loads_as_pipeline_and_in_plain_diffusers(pipe, tiny_generator_export):
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextModel
    assert pipe.classes == ('circle', 'square', 'triangle') and pipe.vae is None and pipe.default_size == 32
    assert type(pipe.unet).__name__ == 'CoordUNet2DConditionModel' and pipe.mask_text_padding
    unet = UNet2DConditionModel.from_pretrained(tiny_generator_export, subfolder='unet')
    text_encoder = CLIPTextModel.from_pretrained(tiny_generator_export, subfolder='text_encoder')
    assert unet.config.sample_size == 32
    assert text_encoder.get_input_embeddings().num_embeddings == len(pipe.tokenizer)


def test_output_sizes_boxes_and_prompts(pipe):
    out = pipe([LAYOUT, dict(boxes=[[0.5, 0.5, 1.0, 1.0]], labels=[1])], height=48, width=64, attr_mode='original',
               num_inference_steps=3, generator=seeded(0, 1), output_type='np')
    assert out.images.shape == (2, 48, 64, 3) and out.images.dtype == np.uint8
    # pixel boxes of a 160x128 image, rescaled to 64x48 (up to the location grid: 16 bins)
    np.testing.assert_allclose(out.boxes[0], [[4, 7.5, 24, 37.5], [28, 3.75, 48, 15]], atol=0.01)
    np.testing.assert_allclose(out.boxes[1], [[32, 24, 64, 48]])
    assert out.labels[0].tolist() == [0, 2] and out.attrs[0] == ['easy', 'hard'] and out.kept[0] == [0, 1]
    assert out.prompts[0].startswith('An image with circle <l') and '<hard>' in out.prompts[0]
    assert out.attrs[1] == [None] and '<easy>' not in out.prompts[1]
    pil = pipe(LAYOUT, num_inference_steps=2, generator=seeded(0)).images
    assert len(pil) == 1 and pil[0].size == (32, 32)


def test_attr_mode_overrides_attributes(pipe):
    out = pipe([LAYOUT], attr_mode='hard', num_inference_steps=1, generator=seeded(0))
    assert out.attrs[0] == ['hard', 'hard'] and '<easy>' not in out.prompts[0]


def test_same_seed_same_image_and_independent_of_the_batch(pipe):
    other = dict(boxes=[[0, 0, 0.3, 0.3]], labels=['square'])
    alone = pipe([LAYOUT], num_inference_steps=4, generator=seeded(5), output_type='np').images
    again = pipe([LAYOUT], num_inference_steps=4, generator=seeded(5), output_type='np').images
    batched = pipe([other, LAYOUT], num_inference_steps=4, generator=seeded(9, 5), output_type='np').images
    different = pipe([LAYOUT], num_inference_steps=4, generator=seeded(6), output_type='np').images
    assert np.array_equal(alone, again)
    assert np.abs(alone[0].astype(int) - batched[1].astype(int)).max() <= 1
    assert np.abs(alone[0].astype(int) - different[0].astype(int)).mean() > 5


@pytest.mark.parametrize('sampler', sorted(SAMPLERS))
def test_every_sampler_runs(pipe, sampler):
    out = pipe([LAYOUT], sampler=sampler, num_inference_steps=3, generator=seeded(0), output_type='np')
    assert out.images.shape == (1, 32, 32, 3) and out.images.std() > 0


def test_bad_arguments_are_named(pipe, tmp_path):
    with pytest.raises(ValueError, match='sampler must be one of'):
        pipe([LAYOUT], sampler='euler')
    with pytest.raises(ValueError, match="'dog' is not among"):
        pipe([dict(boxes=[[0, 0, 1, 1]], labels=['dog'])])
    with pytest.raises(FileNotFoundError, match='detdiffusion.json is missing'):
        DetDiffusionPipeline.from_pretrained(str(tmp_path))


def test_model_sample_uses_the_pipeline(tiny_generator_export):
    from mmdet_detdiffusion.generator.export import load_exported_generator
    from mmdet_detdiffusion.layout.inputs import to_layout_objects
    model = load_exported_generator(tiny_generator_export, device='cpu')
    layout = to_layout_objects(LAYOUT, model.classes)
    images = model.sample([layout], 32, 32, num_inference_steps=3, seed=0)
    pipe_images = model.as_pipeline()([layout], num_inference_steps=3, sampler='ddim', generator=seeded(0),
                                      output_type='np').images
    assert images.shape == (1, 32, 32, 3) and np.array_equal(images.numpy(), pipe_images)
