"""Samplers by name, each a diffusers scheduler over a generator's training noise schedule."""
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler, PNDMScheduler, SchedulerMixin

# Samplers by name: (scheduler class, options over the training noise schedule).
# 'plms' is Stable Diffusion v1.5's default sampler (PNDM without Runge-Kutta warm-up steps).
SAMPLERS = {
    'ddim': (DDIMScheduler, {}),
    'dpmsolver++': (DPMSolverMultistepScheduler, dict(algorithm_type='dpmsolver++')),
    'plms': (PNDMScheduler, dict(skip_prk_steps=True)),
    'ddpm': (DDPMScheduler, {}),
}
DEFAULT_SAMPLER = 'dpmsolver++'  # what an export samples with (its saved scheduler)
TRAILING = 'trailing'


def make_sampler(sampler: str, training_config: dict) -> SchedulerMixin:
    """A fresh scheduler of kind ``sampler`` (see ``SAMPLERS``) over the noise schedule of
    ``training_config`` (the training scheduler's config, or another sampler's: they share its betas).

    Its steps are ``'trailing'``: the first one is the last training timestep, where the initial noise
    really is pure noise (Lin et al., "Common Diffusion Noise Schedules and Sample Steps are Flawed").
    With the training scheduler's ``'leading'`` spacing, 10 steps start at t = 900, where the model
    expects some signal left, and every image comes out with a mid-grey mean.
    """
    if sampler not in SAMPLERS:
        raise ValueError(f'sampler must be one of {sorted(SAMPLERS)}, got {sampler!r}')
    scheduler_cls, options = SAMPLERS[sampler]
    return scheduler_cls.from_config(training_config, **{'timestep_spacing': TRAILING, **options})


def sampler_name(scheduler: SchedulerMixin) -> str:
    """The name of ``scheduler`` among ``SAMPLERS`` (its class and options, trailing steps), else its class name:
    what provenance records of the sampler that made an image."""
    for name, (scheduler_cls, options) in SAMPLERS.items():
        if type(scheduler) is scheduler_cls and scheduler.config.get('timestep_spacing') == TRAILING and all(
                scheduler.config.get(key) == value for key, value in options.items()):
            return name
    return type(scheduler).__name__


def is_training_scheduler(scheduler: SchedulerMixin) -> bool:
    """Whether ``scheduler`` is a training noise scheduler rather than a sampler: a ``DDPMScheduler`` without
    the trailing steps that every sampler of :func:`make_sampler` has (the training configs' DDPMScheduler
    keeps diffusers' ``'leading'`` default)."""
    return isinstance(scheduler, DDPMScheduler) and scheduler.config.timestep_spacing != TRAILING


def training_scheduler(sampler_config: dict) -> DDPMScheduler:
    """The training noise scheduler over a sampler's noise schedule: a ``DDPMScheduler`` with its betas,
    number of training timesteps and ``prediction_type``, all that training reads (``add_noise``,
    ``get_velocity``, ``alphas_cumprod``); its sampling options (step spacing, variance type) are the
    sampler's, which training does not use."""
    return DDPMScheduler.from_config(sampler_config)
