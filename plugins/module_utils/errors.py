# -*- coding: utf-8 -*-
# Copyright (c) ecoeco.gitops contributors
# Apache License 2.0 (see LICENSE)
"""The one place where exceptions become ``fail_json``."""

from __future__ import annotations

from typing import Any, Callable, Dict

from ansible_collections.ecoeco.gitops.plugins.module_utils.k8s_client import (
    HAS_KUBERNETES,
    KUBERNETES_IMPORT_ERROR,
    ClientConfigError,
    K8sError,
)


class ValidationError(ValueError):
    """Bad module input; the message names the option or object."""


def run_module(module: Any, body: Callable[[], Dict[str, Any]]) -> None:
    """Run ``body`` and exit the module with its result, or fail with a clear message."""
    if not HAS_KUBERNETES:
        module.fail_json(msg="the 'kubernetes' Python library is required on the host that runs "
                             "this module (pip install kubernetes)",
                         exception=str(KUBERNETES_IMPORT_ERROR))
    try:
        result = body()
    except ValidationError as exc:
        module.fail_json(msg=str(exc))
    except ClientConfigError as exc:
        module.fail_json(msg=f"cannot configure the Kubernetes client: {exc}")
    except K8sError as exc:
        extra: Dict[str, Any] = {"status": exc.status}
        if exc.status == 403:
            extra["hint"] = "the credentials lack an RBAC permission for this request"
        module.fail_json(msg=str(exc), **extra)
    else:
        for warning in result.pop("warnings_list", []):
            module.warn(warning)
        failed_msg = result.pop("_fail_msg", None)
        if failed_msg:
            module.fail_json(msg=failed_msg, **result)
        module.exit_json(**result)
