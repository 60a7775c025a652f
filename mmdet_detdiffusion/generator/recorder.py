"""UNetRecorder: tensors computed inside a U-Net forward pass, kept by name for the losses that read them.

Forward hooks on U-Net blocks record their outputs (the perception head's decoder features) and attention
processors record their probabilities (the layout attention loss), both through one recorder:

    recorder = UNetRecorder()
    unet.up_blocks[1].register_forward_hook(recorder.output_hook('up_blocks.1'))
    with recorder.recording():
        unet(noisy, t, encoder_hidden_states=text)
    features = recorder.pop('up_blocks.1')      # [output of up_blocks[1]]

Hooks and processors hold the recorder itself, so a deep copy of the model holding them (an EMA model)
records into its own copy of the recorder.
"""
import contextlib
import functools
from typing import Any, Callable, Dict, Iterator, List, Mapping

from torch import nn

UP_BLOCK_RECORD = 'up_blocks.{}'  # the name under which the output of the U-Net's up block i is recorded


class UNetRecorder:
    """Keeps what is added under each name while recording is on (one forward pass at a time)."""

    def __init__(self):
        self.active = False
        self.records: Dict[str, List[Any]] = {}

    def add(self, name: str, value: Any) -> None:
        """Keep ``value`` under ``name`` if recording."""
        if self.active:
            self.records.setdefault(name, []).append(value)

    def output_hook(self, name: str) -> Callable:
        """A forward hook that adds its module's output under ``name`` (a partial of a bound method, so that
        a deep copy of the module copies the recorder with it)."""
        return functools.partial(self._add_output, name)

    def _add_output(self, name: str, module, args, output) -> None:
        self.add(name, output)

    @contextlib.contextmanager
    def recording(self) -> Iterator['UNetRecorder']:
        """Record the passes run inside the block, dropping earlier records; they stay until popped."""
        self.records = {}
        self.active = True
        try:
            yield self
        finally:
            self.active = False

    def pop(self, name: str) -> List[Any]:
        """What was recorded under ``name`` (in call order), removed from the recorder."""
        return self.records.pop(name, [])


@contextlib.contextmanager
def recorded_outputs(modules: Mapping[str, nn.Module]) -> Iterator[UNetRecorder]:
    """Record the outputs of ``modules`` (name -> module; none: a no-op) in the passes run inside the block, through
    forward hooks that are removed on leaving it."""
    recorder = UNetRecorder()
    handles = [module.register_forward_hook(recorder.output_hook(name)) for name, module in modules.items()]
    try:
        with recorder.recording():
            yield recorder
    finally:
        for handle in handles:
            handle.remove()
