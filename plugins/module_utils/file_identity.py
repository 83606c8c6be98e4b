# -*- coding: utf-8 -*-
# Copyright (c) ecoeco.gitops contributors
# Apache License 2.0 (see LICENSE)
"""When a recorded digest of a file may be trusted without reading the file again.

One rule for the node (module ``node_binaries``) and the control node (lookup
``file_digests``): a digest is kept with the file's identity when it was
hashed, and trusted while that identity is unchanged.  Any write, replacement,
rename over, touch, chmod or chown moves the change time (or the inode), and
the change time cannot be set back from user space.
"""

from __future__ import annotations

import hashlib
import os
from typing import List


def identity(st: os.stat_result) -> List[int]:
    """What must stay the same for a recorded digest to be trusted: size, mtime, ctime, inode, device."""
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


def sha256_of(path: str) -> str:
    """SHA-256 of a file, hexadecimal, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
