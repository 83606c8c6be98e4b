# -*- coding: utf-8 -*-
# Copyright (c) ecoeco.gitops contributors
# Apache License 2.0 (see LICENSE)
"""The one place where exceptions become ``fail_json``.

module_utils raise :class:`ValidationError` (bad input, before any write), :class:`ModuleFailure` (the work
failed; carries the partial result) or ``K8sError`` (an API call failed); they return warnings as a list under
the result's ``warnings`` key.  :func:`run_module` turns all of it into ``exit_json``/``fail_json`` and
``module.warn``.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional

from ansible_collections.ecoeco.gitops.plugins.module_utils.k8s_client import (
    ClientConfigError,
    K8sError,
    kubernetes_import_error,
)


# What an HTTP status from the API server means for whoever runs the module (the hook Job's log shows it).
HINTS = {
    401: "the API server rejected the credentials (an expired token, or one issued for a ServiceAccount that "
         "was re-created since)",
    403: "the user of these credentials lacks an RBAC permission for this request (for the hook Job see "
         "deploy/hooks/rbac.yaml)",
}


class ValidationError(ValueError):
    """Bad module input; the message names the option or object."""


class ModuleFailure(Exception):
    """The module's work failed: ``msg`` says why, ``result`` is what it did and saw up to then.

    module_utils raise it; only :func:`run_module` turns it into ``fail_json`` (with the result's keys, so a
    failed verification still returns its report).
    """

    def __init__(self, msg: str, result: Optional[Dict[str, Any]] = None):
        super().__init__(msg)
        self.msg = msg
        self.result: Dict[str, Any] = dict(result or {})


def run_module(module: Any, body: Callable[[], Dict[str, Any]]) -> None:
    """Run ``body`` and exit the module with its result, or fail with a clear message."""
    missing = kubernetes_import_error()
    if missing is not None:
        module.fail_json(msg="the 'kubernetes' Python library is required on the host that runs "
                             "this module (pip install kubernetes)",
                         exception=str(missing))
    try:
        result = body()
    except ModuleFailure as exc:
        failed = dict(exc.result)
        for warning in failed.pop("warnings", []):
            module.warn(warning)
        module.fail_json(msg=exc.msg, **failed)
    except ValidationError as exc:
        module.fail_json(msg=str(exc))
    except ClientConfigError as exc:
        module.fail_json(msg=f"cannot configure the Kubernetes client: {exc}")
    except K8sError as exc:
        extra: Dict[str, Any] = {"status": exc.status}
        msg = str(exc)
        if exc.status in HINTS:
            extra["hint"] = HINTS[exc.status]
            msg += f" -- {HINTS[exc.status]}"
        module.fail_json(msg=msg, **extra)
    else:
        for warning in result.pop("warnings", []):
            module.warn(warning)
        module.exit_json(**result)
