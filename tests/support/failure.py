"""Tests of module_utils that fail: the ModuleFailure they raise, as (message, partial result)."""

from __future__ import annotations

from typing import Any, Callable, Dict, Tuple

import pytest

from ansible_collections.ecoeco.gitops.plugins.module_utils.errors import ModuleFailure


def failure(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Tuple[str, Dict[str, Any]]:
    """Call ``fn``, which must raise ModuleFailure; return its message and partial result."""
    with pytest.raises(ModuleFailure) as info:
        fn(*args, **kwargs)
    return info.value.msg, info.value.result
