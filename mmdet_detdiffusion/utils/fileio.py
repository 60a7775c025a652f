"""File helpers: atomic writes (a reader never sees a half-written file, a killed job leaves none behind) and
chunked hashing (memory stays flat for checkpoints of any size)."""
import hashlib
import json
import os
import tempfile
from typing import Any

HASH_CHUNK = 1 << 20  # bytes read at a time when hashing a file


def atomic_write_bytes(data: bytes, path: str) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(dir=folder, prefix='.' + os.path.basename(path) + '.', suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise


def atomic_write_json(obj: Any, path: str, indent: int = None) -> None:
    """Serialise ``obj`` as JSON and write it atomically to ``path``."""
    atomic_write_bytes(json.dumps(obj, indent=indent).encode('utf-8'), path)


def update_digest(digest: 'hashlib._Hash', path: str) -> None:
    """Feed the bytes of the file ``path`` to ``digest`` (e.g. ``hashlib.sha256()``), ``HASH_CHUNK`` at a time."""
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(HASH_CHUNK), b''):
            digest.update(chunk)


def file_sha256(path: str) -> str:
    """Hex sha256 of the bytes of the file ``path``."""
    digest = hashlib.sha256()
    update_digest(digest, path)
    return digest.hexdigest()
