"""DetDiffusionPipeline on a tiny export: loading, output shapes and boxes, seeds, samplers and the scheduler,
diffusers' call arguments (latents, callbacks, output types, return_dict, progress bar, images per prompt),
exports of earlier versions and GeoDiffusion checkpoints, errors."""
import json
import os
import shutil
import warnings

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler
from diffusers.utils.torch_utils import randn_tensor

from mmdet_detdiffusion.generator.geodiffusion import GENERATION_CONFIG
from mmdet_detdiffusion.generator.pipeline import SAMPLERS, DetDiffusionPipeline, read_export_config
from mmdet_detdiffusion.layout.inputs import MissingAttributesWarning

LAYOUT = dict(boxes=[[10, 20, 60, 100], [70, 10, 120, 40]], labels=['circle', 2], attrs=['easy', 'hard'],
              image_size=(128, 160))


def seeded(*seeds):
    return [torch.Generator().manual_seed(s) for s in seeds]


def public(config) -> dict:
    """A scheduler config without diffusers' bookkeeping (``_class_name``, ``_use_default_values``, ...)."""
    return {k: v for k, v in config.items() if not k.startswith('_')}


def rewritten_export(export: str, folder, scheduler=None, **index) -> str:
    """A copy of ``export`` in ``folder`` with ``scheduler`` saved in place of its own and ``index`` written
    into its ``model_index.json``."""
    shutil.copytree(export, folder)
    model_index = json.load(open(os.path.join(folder, 'model_index.json')))
    if scheduler is not None:
        shutil.rmtree(os.path.join(folder, 'scheduler'))
        scheduler.save_pretrained(os.path.join(folder, 'scheduler'))
        model_index['scheduler'] = ['diffusers', type(scheduler).__name__]
    with open(os.path.join(folder, 'model_index.json'), 'w') as f:
        json.dump({**model_index, **index}, f)
    return str(folder)


def test_export_is_the_pipelines_save_pretrained_folder(pipe, tiny_generator_export):
    from transformers import CLIPTextModel
    assert pipe.classes == ('circle', 'square', 'triangle') and pipe.vae is None and pipe.default_size == 32
    assert type(pipe.unet).__name__ == 'UNet2DConditionModel' and pipe.mask_text_padding
    assert type(pipe.perception_head).__name__ == 'PerceptionHead'
    assert pipe.config.data_filters == dict(min_object_area_ratio=0.02)
    assert sorted(os.listdir(tiny_generator_export)) == ['model_index.json', 'perception_head', 'scheduler',
                                                         'text_encoder', 'tokenizer', 'unet']
    index = json.load(open(os.path.join(tiny_generator_export, 'model_index.json')))
    assert index['_class_name'] == 'DetDiffusionPipeline' and index['location_bins'] == 16
    assert index['unet'] == ['diffusers', 'UNet2DConditionModel']  # loads without this package's classes
    text_encoder = CLIPTextModel.from_pretrained(tiny_generator_export, subfolder='text_encoder')  # plain transformers
    assert text_encoder.get_input_embeddings().num_embeddings == len(pipe.tokenizer)


def test_loading_prints_no_accelerate_notice(tiny_generator_export, capfd):
    DetDiffusionPipeline.from_pretrained(tiny_generator_export)
    assert 'accelerate' not in capfd.readouterr().err


def test_output_sizes_boxes_and_prompts(pipe):
    out = pipe([LAYOUT, dict(boxes=[[0.5, 0.5, 1.0, 1.0]], labels=[1])], height=48, width=64, attr_mode='original',
               num_inference_steps=3, generator=seeded(0, 1), output_type='np')
    assert out.images.shape == (2, 48, 64, 3) and out.images.dtype == np.float32
    assert 0 <= out.images.min() < out.images.max() <= 1
    # pixel boxes of a 160x128 image, rescaled to 64x48 (up to the location grid: 16 bins)
    np.testing.assert_allclose(out.boxes[0], [[4, 7.5, 24, 37.5], [28, 3.75, 48, 15]], atol=0.01)
    np.testing.assert_allclose(out.boxes[1], [[32, 24, 64, 48]])
    assert out.labels[0].tolist() == [0, 2] and out.attrs[0] == ['easy', 'hard'] and out.kept[0] == [0, 1]
    assert out.prompts[0].startswith('An image with circle <l') and '<hard>' in out.prompts[0]
    assert out.attrs[1] == [None] and '<easy>' not in out.prompts[1]
    pil = pipe(LAYOUT, num_inference_steps=2, generator=seeded(0)).images
    assert len(pil) == 1 and pil[0].size == (32, 32)
    pt = pipe(LAYOUT, num_inference_steps=2, generator=seeded(0), output_type='pt').images
    assert pt.shape == (1, 3, 32, 32)
    np.testing.assert_array_equal(np.asarray(pil[0]), (pt[0].permute(1, 2, 0).numpy() * 255).round())
    images, boxes, labels, attrs, kept, prompts = pipe(LAYOUT, num_inference_steps=1, return_dict=False)
    assert len(images) == 1 and attrs == [['easy', 'hard']] and prompts[0].startswith('An image with')


def test_attr_mode_overrides_attributes(pipe):
    out = pipe([LAYOUT], attr_mode='hard', num_inference_steps=1, generator=seeded(0))
    assert out.attrs[0] == ['hard', 'hard'] and '<easy>' not in out.prompts[0]


def test_flipped_prompts_swap_easy_and_hard_and_keep_the_rest(pipe):
    prompts, objects, _ = pipe.layout_prompts([LAYOUT, dict(LAYOUT, attrs=['hard', None])])
    flipped = pipe.flipped_prompts(objects)
    assert '<easy>' in prompts[0] and '<hard>' in prompts[0]
    swap = {'<easy>': '<hard>', '<hard>': '<easy>'}
    assert flipped[0].split() == [swap.get(word, word) for word in prompts[0].split()]
    assert flipped[1].split() == [swap.get(word, word) for word in prompts[1].split()]
    assert '<hard>' not in flipped[1] and flipped[1].count('<easy>') == 1  # the box without one stays without


def test_attribute_guidance_steers_away_from_the_flipped_prompts(pipe, monkeypatch):
    """eps = eps_null + s (eps_prompt - eps_null) + s_a (eps_prompt - eps_flipped), from one U-Net batch of the three
    branches, null prompts first."""
    passes, steered = [], []
    unet_forward, scheduler_step = pipe.unet.forward, pipe.scheduler.step

    def recording_forward(sample, t, encoder_hidden_states=None, **kwargs):
        out = unet_forward(sample, t, encoder_hidden_states=encoder_hidden_states, **kwargs)
        passes.append((encoder_hidden_states, out[0]))
        return out

    def recording_step(model_output, *args, **kwargs):
        steered.append(model_output)
        return scheduler_step(model_output, *args, **kwargs)

    monkeypatch.setattr(pipe.unet, 'forward', recording_forward)
    monkeypatch.setattr(pipe.scheduler, 'step', recording_step)
    out = pipe(LAYOUT, attr_mode='hard', num_inference_steps=2, guidance_scale=5.0, attribute_guidance_scale=2.0,
               generator=seeded(0), output_type='np')
    states, noise = passes[0]
    _, objects, _ = pipe.layout_prompts([LAYOUT], 'hard')
    expected_states = [pipe.null_embedding(1)[0], pipe.encode_prompt(out.prompts)[0],
                       pipe.encode_prompt(pipe.flipped_prompts(objects))[0]]
    torch.testing.assert_close(states, torch.cat(expected_states))
    null, prompt, flipped = noise.chunk(3)
    torch.testing.assert_close(steered[0], null + 5.0 * (prompt - null) + 2.0 * (prompt - flipped))
    assert (prompt - flipped).abs().mean() > 1e-3  # the attribute tokens change the prediction
    monkeypatch.undo()
    plain = pipe(LAYOUT, attr_mode='hard', num_inference_steps=2, guidance_scale=5.0, generator=seeded(0),
                 output_type='np')
    assert np.abs(out.images - plain.images).mean() > 1 / 255


def test_attribute_guidance_skips_its_pass_when_no_box_has_an_attribute(pipe, monkeypatch):
    """Flipped prompts equal to the prompts would add a zero term: the U-Net batch then holds null and prompts only."""
    batches = []
    unet_forward = pipe.unet.forward

    def recording_forward(sample, *args, **kwargs):
        batches.append(sample.shape[0])
        return unet_forward(sample, *args, **kwargs)

    monkeypatch.setattr(pipe.unet, 'forward', recording_forward)
    unlabelled = dict(LAYOUT, attrs=None)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', MissingAttributesWarning)
        guided = pipe(unlabelled, num_inference_steps=2, attribute_guidance_scale=2.0, generator=seeded(0),
                      output_type='np')
        plain = pipe(unlabelled, num_inference_steps=2, generator=seeded(0), output_type='np')
    assert batches == [2] * 4
    np.testing.assert_array_equal(guided.images, plain.images)
    pipe(dict(LAYOUT, attrs=['hard', None]), num_inference_steps=1, attribute_guidance_scale=2.0)
    assert batches[-1] == 3  # one box with an attribute brings the pass back


def test_original_mode_without_attributes_warns_once_per_call_site(pipe):
    unlabelled = dict(LAYOUT, attrs=None)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter('default')  # Python's own: once per location
        for _ in range(3):
            out = pipe([unlabelled, unlabelled], num_inference_steps=1, output_type='latent')
    assert [(r.category, r.filename) for r in record] == [(MissingAttributesWarning, __file__)]  # at the caller
    assert 'tools/label_attributes.py' in str(record[0].message) and "attr_mode='hard'" in str(record[0].message)
    assert '<easy>' not in out.prompts[0] and '<hard>' not in out.prompts[0]
    with warnings.catch_warnings():
        warnings.simplefilter('error', MissingAttributesWarning)
        pipe([LAYOUT, unlabelled], num_inference_steps=1, output_type='latent')  # some boxes have attributes
        pipe([unlabelled], attr_mode='hard', num_inference_steps=1, output_type='latent')


def test_missing_export_names_the_step_that_writes_it(tmp_path):
    with pytest.raises(FileNotFoundError, match='does not exist: tools/train_generator.py writes'):
        DetDiffusionPipeline.from_pretrained(str(tmp_path / 'absent' / 'export'))
    (tmp_path / 'export').mkdir()
    (tmp_path / 'export' / 'model_index.json').write_text('{}')
    with pytest.raises(FileNotFoundError, match=f'work dir, not a generator export: pass .*{tmp_path}/export'):
        read_export_config(str(tmp_path))


def test_export_of_an_earlier_version_is_refused_by_name(tmp_path):
    # an earlier version kept the settings in detdiffusion.json; loaded as it is, it had no classes
    (tmp_path / 'model_index.json').write_text('{"_class_name": "DetDiffusionPipeline", "unet": ["diffusers", '
                                               '"UNet2DConditionModel"]}')
    with pytest.raises(ValueError, match=f'{tmp_path}/model_index.json has no classes: an export of an earlier'):
        DetDiffusionPipeline.from_pretrained(str(tmp_path))


def test_a_component_of_a_module_not_imported_names_the_import(tiny_generator_export, tmp_path):
    folder = str(tmp_path / 'export')
    shutil.copytree(tiny_generator_export, folder)
    index = json.load(open(os.path.join(folder, 'model_index.json')))
    index['unet'] = ['projects.some_project.unets', 'SomeUNet']  # e.g. projects/toy_shapes' U-Net
    json.dump(index, open(os.path.join(folder, 'model_index.json'), 'w'))
    message = (f'{folder}: its unet is a SomeUNet of the module projects.some_project.unets, which is not imported: '
               '.*--custom-imports projects.some_project.unets')
    with pytest.raises(ImportError, match=message):
        DetDiffusionPipeline.from_pretrained(folder)


def test_same_seed_same_image_and_independent_of_the_batch(pipe):
    other = dict(boxes=[[0, 0, 0.3, 0.3]], labels=['square'])
    alone = pipe([LAYOUT], num_inference_steps=4, generator=seeded(5), output_type='np').images
    again = pipe([LAYOUT], num_inference_steps=4, generator=seeded(5), output_type='np').images
    batched = pipe([other, LAYOUT], num_inference_steps=4, generator=seeded(9, 5), output_type='np').images
    different = pipe([LAYOUT], num_inference_steps=4, generator=seeded(6), output_type='np').images
    assert np.array_equal(alone, again)
    assert np.abs(alone[0] - batched[1]).max() <= 1 / 255
    assert np.abs(alone[0] - different[0]).mean() > 5 / 255


def test_given_latents_reproduce_the_image(pipe):
    drawn = pipe([LAYOUT, LAYOUT], num_inference_steps=3, sampler='ddim', generator=seeded(3, 4), output_type='np')
    latents = randn_tensor(pipe.latent_shape(2, 32, 32), generator=seeded(3, 4))
    given = pipe([LAYOUT, LAYOUT], num_inference_steps=3, sampler='ddim', latents=latents, output_type='np')
    assert np.array_equal(drawn.images, given.images) and not np.array_equal(given.images[0], given.images[1])


def test_callback_on_step_end_runs_once_per_step_and_replaces_tensors(pipe):
    calls = []

    def callback(p, step, t, tensors):
        calls.append((step, int(t), sorted(tensors)))
        assert tensors['prompt_embeds'].shape[0] == 2  # the null prompt and the layout prompt
        return dict(latents=torch.zeros_like(tensors['latents'])) if step == 3 else {}

    out = pipe(LAYOUT, num_inference_steps=4, sampler='ddim', generator=seeded(0), output_type='np',
               callback_on_step_end=callback, callback_on_step_end_tensor_inputs=['latents', 'prompt_embeds'])
    assert [c[0] for c in calls] == [0, 1, 2, 3] and [c[2] for c in calls] == [['latents', 'prompt_embeds']] * 4
    assert calls[0][1] == 999 and all(a[1] > b[1] for a, b in zip(calls, calls[1:]))
    np.testing.assert_allclose(out.images, 0.5)  # the last step's latents were replaced by zeros (mid-grey)


def test_progress_bar_counts_the_steps(pipe, capfd):
    pipe.set_progress_bar_config(disable=False)
    try:
        pipe(LAYOUT, num_inference_steps=3, generator=seeded(0))
    finally:
        pipe.set_progress_bar_config(disable=True)
    assert '3/3' in capfd.readouterr().err


def test_export_saves_the_default_sampler_and_a_saved_scheduler_reloads_as_it_is(pipe, tmp_path):
    scheduler = pipe.scheduler
    assert type(scheduler) is DPMSolverMultistepScheduler and scheduler.config.algorithm_type == 'dpmsolver++'
    assert scheduler.config.timestep_spacing == 'trailing' and scheduler.config.prediction_type == 'v_prediction'
    for chosen in (DDIMScheduler.from_config(scheduler.config), pipe.make_scheduler('ddpm')):
        pipe.scheduler = chosen
        try:
            pipe.save_pretrained(tmp_path / type(chosen).__name__)
        finally:
            pipe.scheduler = scheduler
        reloaded = DetDiffusionPipeline.from_pretrained(str(tmp_path / type(chosen).__name__)).scheduler
        assert type(reloaded) is type(chosen) and public(reloaded.config) == public(chosen.config)


def test_pipe_scheduler_samples_and_swapping_it_changes_the_images(tiny_generator_export):
    pipe = DetDiffusionPipeline.from_pretrained(tiny_generator_export)  # its own: the shared one stays as it is
    pipe.set_progress_bar_config(disable=True)

    def generate(**kwargs):
        return pipe(LAYOUT, num_inference_steps=4, generator=seeded(0), output_type='np', **kwargs).images

    dpm = generate()
    assert np.array_equal(dpm, generate(sampler='dpmsolver++'))  # the saved sampler is the default one
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    ddim = generate()
    assert np.abs(ddim - dpm).mean() > 2 / 255
    assert np.array_equal(ddim, generate(sampler='ddim'))  # sampler= makes the same scheduler from the config
    generate(sampler='plms')
    assert type(pipe.scheduler) is DDIMScheduler  # sampler= leaves pipe.scheduler as it is


def test_num_images_per_prompt_repeats_each_layout_in_diffusers_order(pipe):
    other = dict(boxes=[[0, 0, 0.3, 0.3]], labels=['square'], attrs=['hard'])
    out = pipe([LAYOUT, other], num_images_per_prompt=2, num_inference_steps=3, generator=seeded(0, 1, 2, 3),
               output_type='np')
    assert out.images.shape == (4, 32, 32, 3)
    for first, second in ((0, 1), (2, 3)):
        assert np.abs(out.images[first] - out.images[second]).mean() > 5 / 255
    assert out.prompts[0] == out.prompts[1] != out.prompts[2] == out.prompts[3]
    assert out.kept == [[0, 1], [0, 1], [0], [0]] and out.attrs[:2] == [['easy', 'hard']] * 2
    for first, second in ((0, 1), (2, 3)):
        np.testing.assert_array_equal(out.boxes[first], out.boxes[second])
        np.testing.assert_array_equal(out.labels[first], out.labels[second])
    assert out.boxes[0] is not out.boxes[1] and out.kept[0] is not out.kept[1]  # each image its own
    alone = pipe([other], num_inference_steps=3, generator=seeded(3), output_type='np').images
    assert np.abs(alone[0] - out.images[3]).max() <= 1 / 255  # the second image of layout 1: the fourth generator


def test_export_of_an_earlier_version_samples_with_the_default_sampler(pipe, tiny_generator_export, shapes_root,
                                                                       tmp_path):
    from helpers import tiny_generator_cfg
    from mmdet_detdiffusion.generator.components import build_component
    from mmdet_detdiffusion.generator.export import load_exported_generator
    training = build_component(tiny_generator_cfg(shapes_root, str(tmp_path)).model.scheduler)
    assert type(training) is DDPMScheduler and training.config.timestep_spacing == 'leading'
    old = rewritten_export(tiny_generator_export, tmp_path / 'old', training)  # earlier exports saved it
    old_pipe = DetDiffusionPipeline.from_pretrained(old)
    old_pipe.set_progress_bar_config(disable=True)
    scheduler = old_pipe.scheduler
    assert type(scheduler) is DPMSolverMultistepScheduler and scheduler.config.timestep_spacing == 'trailing'
    old_images, images = (p(LAYOUT, num_inference_steps=3, generator=seeded(0), output_type='np').images
                          for p in (old_pipe, pipe))
    assert np.array_equal(old_images, images)
    # training gets its noise schedule back from either export
    for export in (old, tiny_generator_export):
        scheduler = load_exported_generator(export, device='cpu').scheduler
        assert type(scheduler) is DDPMScheduler and scheduler.config.prediction_type == 'v_prediction'
        assert scheduler.config.num_train_timesteps == training.config.num_train_timesteps
        assert torch.equal(scheduler.alphas_cumprod, training.alphas_cumprod)


def test_geodiffusion_checkpoint_samples_with_its_saved_scheduler(tiny_generator_export, tmp_path):
    saved = DDPMScheduler(beta_schedule='scaled_linear', beta_start=0.00085, beta_end=0.012)
    folder = rewritten_export(tiny_generator_export, tmp_path / 'geodiffusion', saved,
                              _class_name='StableDiffusionPipeline')
    with open(os.path.join(folder, GENERATION_CONFIG), 'w') as f:
        json.dump(dict(prompt_template='An image with {bbox}', num_bucket_per_side=[16, 16]), f)
    scheduler = DetDiffusionPipeline.from_pretrained(folder, classes=['circle', 'square', 'triangle']).scheduler
    assert type(scheduler) is DDPMScheduler and public(scheduler.config) == public(saved.config)  # as diffusers


@pytest.mark.parametrize('sampler', sorted(SAMPLERS))
def test_every_sampler_runs(pipe, sampler):
    out = pipe([LAYOUT], sampler=sampler, num_inference_steps=3, generator=seeded(0), output_type='np')
    assert out.images.shape == (1, 32, 32, 3) and out.images.std() > 0


def test_bad_arguments_are_named(pipe, tmp_path):
    with pytest.raises(ValueError, match='sampler must be one of'):
        pipe([LAYOUT], sampler='euler')
    with pytest.raises(ValueError, match="'dog' is not among"):
        pipe([dict(boxes=[[0, 0, 1, 1]], labels=['dog'])])
    with pytest.raises(ValueError, match='output_type must be one of'):
        pipe([LAYOUT], output_type='tensor')
    with pytest.raises(ValueError, match=r'latents must have shape \(1, 3, 32, 32\)'):
        pipe([LAYOUT], latents=torch.zeros(1, 3, 16, 16))
    with pytest.raises(ValueError, match='2 generators for 1 layouts'):
        pipe([LAYOUT], generator=seeded(0, 1))
    with pytest.raises(ValueError, match=r'2 generators for 2 layouts x num_images_per_prompt=2: give one per image '
                                         r'\(4\)'):
        pipe([LAYOUT, LAYOUT], num_images_per_prompt=2, generator=seeded(0, 1))
    with pytest.raises(ValueError, match=r'latents must have shape \(2, 3, 32, 32\) for 1 layouts x '
                                         r'num_images_per_prompt=2'):
        pipe([LAYOUT], num_images_per_prompt=2, latents=torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match='num_images_per_prompt must be a positive integer, got 0'):
        pipe([LAYOUT], num_images_per_prompt=0)
    with pytest.raises(ValueError, match=r"\['noise'\] are not among"):
        pipe([LAYOUT], callback_on_step_end=lambda *a: {}, callback_on_step_end_tensor_inputs=['noise'])
    with pytest.raises(OSError, match='model_index.json'):
        DetDiffusionPipeline.from_pretrained(str(tmp_path))


def test_attribute_guidance_needs_attribute_tokens(tiny_generator_export):
    without = DetDiffusionPipeline.from_pretrained(tiny_generator_export, use_attributes=False)
    with pytest.raises(ValueError, match='attribute_guidance_scale needs a generator trained with attribute tokens'):
        without(LAYOUT, num_inference_steps=1, attribute_guidance_scale=2.0)


def test_model_sample_uses_the_pipeline(tiny_generator_export):
    from mmdet_detdiffusion.generator.export import load_exported_generator
    from mmdet_detdiffusion.layout.inputs import to_layout_objects
    model = load_exported_generator(tiny_generator_export, device='cpu')
    layout = to_layout_objects(LAYOUT, model.classes)
    images = model.sample([layout], 32, 32, num_inference_steps=3, seed=0)
    pipe_images = model.as_pipeline()([layout], num_inference_steps=3, sampler='ddim', generator=seeded(0)).images
    assert images.shape == (1, 32, 32, 3) and np.array_equal(images[0].numpy(), np.asarray(pipe_images[0]))


def test_public_names_are_exposed_at_the_top_level():
    import mmdet_detdiffusion
    from mmdet_detdiffusion.generator.pipeline import DetDiffusionPipeline as FromModule
    assert mmdet_detdiffusion.DetDiffusionPipeline is FromModule
    for name in mmdet_detdiffusion.__all__:
        assert getattr(mmdet_detdiffusion, name) is not None, name
