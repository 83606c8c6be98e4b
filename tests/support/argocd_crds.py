"""Argo CD's CRDs on the local real cluster, for tests that need Applications but no Argo CD processes."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import yaml

from tools.localcluster.argocd import manifest_path
from tools.localcluster.procs import wait_until

ESTABLISHED = '{.status.conditions[?(@.type=="Established")].status}'


def install_argocd_crds(cluster: Any, manifest: Optional[Path] = None, timeout: float = 120) -> None:
    """Apply every CRD of the Argo CD release manifest; return once the Application CRD is Established."""
    text = Path(manifest or manifest_path()).read_text()
    cluster.apply(yaml.safe_dump_all([d for d in yaml.safe_load_all(text)
                                      if d and d.get("kind") == "CustomResourceDefinition"]))
    wait_until("the Application CRD Established", lambda: cluster.kubectl(
        "get", "crd", "applications.argoproj.io", "-o", f"jsonpath={ESTABLISHED}", check=False).stdout.strip() == "True",
        timeout, interval=0.5)
