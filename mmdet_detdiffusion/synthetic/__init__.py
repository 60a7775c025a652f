"""Synthetic COCO datasets from a generator: the plan (pure), the resumable manifest, the writer."""
