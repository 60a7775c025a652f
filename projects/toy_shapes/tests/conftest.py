"""The toy project's fixtures: the core suite's shapes data and trained detector, with the toy package imported
(its attribute values registered) before any test runs. Run apart from the core suite (``make test`` runs both)."""
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.join(REPO, 'tests'))

import projects.toy_shapes.toy_shapes  # noqa: E402,F401
from helpers import batch, fresh_clip_text, shapes_root, trained_retinanet  # noqa: E402,F401  (shared fixtures)
