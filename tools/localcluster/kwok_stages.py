"""kwok Stage objects (``kwok.x-k8s.io/v1alpha1``) that make fake nodes behave like kubelets.

kwok ships no stages of its own: without a ``--config`` holding some it exits
"no stages found".  These are the harness's:

- ``node-initialize``: a node that is not Ready gets Ready conditions,
  addresses, capacity (kept when the Node already declares one) and node info;
- ``node-heartbeat``: a Ready node gets its condition heartbeats refreshed
  every ``heartbeat_seconds`` (kwok also renews each node's Lease, which is
  what the node lifecycle controller watches first);
- ``pod-ready``: a scheduled, Pending pod becomes Running and Ready, with
  a pod IP from kwok's ``--cidr`` (the node's IP for hostNetwork pods);
- ``pod-complete``: a running pod owned by a Job succeeds;
- ``pod-delete``: a pod being deleted loses its finalizers and is removed
  (what a kubelet does once the containers are gone).

kwok's server (``--server-address``) also plays the kubelets' API, which the API
server reaches at the node's InternalIP and ``daemonEndpoints`` port (kwok's
``--node-port``, set by ``node-initialize``).  :func:`port_forward` builds a
``ClusterPortForward``: ``pods/portforward`` to a pod of the given namespaces
reaches the local process listening on the target port instead of a container
(how ``argocd ... --core`` reaches the harness's redis and repo-server).
"""

from __future__ import annotations

from typing import Any

import yaml

# kwok's Go templates for each stage's new status (kwok renders them, not Python).
NODE_INITIALIZE_STATUS = r"""
{{ $now := Now }}
conditions:
{{ range NodeConditions }}
- type: {{ .type | Quote }}
  status: {{ .status | Quote }}
  reason: {{ .reason | Quote }}
  message: {{ .message | Quote }}
  lastHeartbeatTime: {{ $now | Quote }}
  lastTransitionTime: {{ $now | Quote }}
{{ end }}
addresses:
{{ with .status.addresses }}
{{ YAML . 1 }}
{{ else }}
- type: InternalIP
  address: {{ NodeIP | Quote }}
- type: Hostname
  address: {{ NodeName | Quote }}
{{ end }}
allocatable:
{{ with .status.allocatable }}
{{ YAML . 1 }}
{{ else }}
  cpu: "32"
  memory: 128Gi
  pods: "110"
{{ end }}
capacity:
{{ with .status.capacity }}
{{ YAML . 1 }}
{{ else }}
  cpu: "32"
  memory: 128Gi
  pods: "110"
{{ end }}
{{ $info := .status.nodeInfo }}
nodeInfo:
  architecture: {{ or $info.architecture "amd64" | Quote }}
  operatingSystem: {{ or $info.operatingSystem "linux" | Quote }}
  kubeletVersion: {{ or $info.kubeletVersion (printf "kwok-%s" Version) | Quote }}
  kubeProxyVersion: {{ or $info.kubeProxyVersion (printf "kwok-%s" Version) | Quote }}
  containerRuntimeVersion: {{ or $info.containerRuntimeVersion (printf "kwok-%s" Version) | Quote }}
  kernelVersion: {{ or $info.kernelVersion (printf "kwok-%s" Version) | Quote }}
  osImage: {{ or $info.osImage "kwok" | Quote }}
  bootID: ""
  machineID: ""
  systemUUID: ""
{{ with NodePort }}
daemonEndpoints:
  kubeletEndpoint:
    Port: {{ . }}
{{ end }}
phase: Running
"""

NODE_HEARTBEAT_STATUS = r"""
{{ $now := Now }}
{{ $since := or .metadata.creationTimestamp $now }}
conditions:
{{ range NodeConditions }}
- type: {{ .type | Quote }}
  status: {{ .status | Quote }}
  reason: {{ .reason | Quote }}
  message: {{ .message | Quote }}
  lastHeartbeatTime: {{ $now | Quote }}
  lastTransitionTime: {{ $since | Quote }}
{{ end }}
"""

POD_READY_STATUS = r"""
{{ $now := Now }}
conditions:
- type: PodReadyToStartContainers
  status: "True"
  lastTransitionTime: {{ $now | Quote }}
- type: Initialized
  status: "True"
  lastTransitionTime: {{ $now | Quote }}
- type: ContainersReady
  status: "True"
  lastTransitionTime: {{ $now | Quote }}
- type: Ready
  status: "True"
  lastTransitionTime: {{ $now | Quote }}
{{ range .spec.readinessGates }}
- type: {{ .conditionType | Quote }}
  status: "True"
  lastTransitionTime: {{ $now | Quote }}
{{ end }}
containerStatuses:
{{ range .spec.containers }}
- name: {{ .name | Quote }}
  image: {{ .image | Quote }}
  imageID: ""
  ready: true
  started: true
  restartCount: 0
  state:
    running:
      startedAt: {{ $now | Quote }}
{{ end }}
initContainerStatuses:
{{ range .spec.initContainers }}
- name: {{ .name | Quote }}
  image: {{ .image | Quote }}
  imageID: ""
  ready: true
  restartCount: 0
  state:
    terminated:
      exitCode: 0
      reason: Completed
      startedAt: {{ $now | Quote }}
      finishedAt: {{ $now | Quote }}
{{ end }}
{{ with NodeIPsWith .spec.nodeName }}
hostIP: {{ index . 0 | Quote }}
hostIPs:
{{ range . }}
- ip: {{ . | Quote }}
{{ end }}
{{ end }}
{{ with PodIPsWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) }}
podIP: {{ index . 0 | Quote }}
podIPs:
{{ range . }}
- ip: {{ . | Quote }}
{{ end }}
{{ end }}
phase: Running
startTime: {{ $now | Quote }}
"""

POD_COMPLETE_STATUS = r"""
{{ $now := Now }}
conditions:
- type: Ready
  status: "False"
  reason: PodCompleted
  lastTransitionTime: {{ $now | Quote }}
- type: ContainersReady
  status: "False"
  reason: PodCompleted
  lastTransitionTime: {{ $now | Quote }}
containerStatuses:
{{ range .spec.containers }}
- name: {{ .name | Quote }}
  image: {{ .image | Quote }}
  imageID: ""
  ready: false
  started: false
  restartCount: 0
  state:
    terminated:
      exitCode: 0
      reason: Completed
      startedAt: {{ $now | Quote }}
      finishedAt: {{ $now | Quote }}
{{ end }}
phase: Succeeded
"""

NOT_DELETED = {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"}
READY = '.status.conditions.[] | select( .type == "Ready" ) | .status'


def _match(key: str, operator: str, *values: str) -> dict[str, Any]:
    return {"key": key, "operator": operator, **({"values": list(values)} if values else {})}


def _status(template: str) -> dict[str, str]:
    return {"statusTemplate": template.lstrip("\n")}


def _stage(name: str, kind: str, match: list[dict[str, Any]], next_: dict[str, Any],
           delay_ms: int | None = None, jitter_ms: int | None = None) -> dict[str, Any]:
    """One Stage object for ``kind`` objects that match every expression of ``match``."""
    spec: dict[str, Any] = {"resourceRef": {"apiGroup": "v1", "kind": kind},
                            "selector": {"matchExpressions": match}}
    if delay_ms is not None:
        spec["delay"] = {"durationMilliseconds": delay_ms}
        if jitter_ms is not None:
            spec["delay"]["jitterDurationMilliseconds"] = jitter_ms
    spec["next"] = next_
    return {"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Stage", "metadata": {"name": name}, "spec": spec}


def stages(heartbeat_seconds: int = 60, job_seconds: float = 1.0) -> list[dict[str, Any]]:
    """The harness's kwok stages as objects."""
    return [
        _stage("node-initialize", "Node", [NOT_DELETED, _match(READY, "NotIn", "True")],
               _status(NODE_INITIALIZE_STATUS)),
        _stage("node-heartbeat", "Node",
               [NOT_DELETED, _match(".status.phase", "In", "Running"), _match(READY, "In", "True")],
               _status(NODE_HEARTBEAT_STATUS),
               delay_ms=heartbeat_seconds * 1000, jitter_ms=heartbeat_seconds * 1500),
        _stage("pod-ready", "Pod",
               [NOT_DELETED, _match(".status.phase", "In", "Pending"), _match(READY, "NotIn", "True")],
               _status(POD_READY_STATUS)),
        _stage("pod-complete", "Pod",
               [NOT_DELETED, _match(".status.phase", "In", "Running"),
                _match(".metadata.ownerReferences.[].kind", "In", "Job")],
               _status(POD_COMPLETE_STATUS), delay_ms=int(job_seconds * 1000)),
        _stage("pod-delete", "Pod", [_match(".metadata.deletionTimestamp", "Exists")],
               {"finalizers": {"empty": True}, "delete": True}),
    ]


def port_forward(name: str, namespaces: list[str], targets: dict[int, int]) -> dict[str, Any]:
    """A ClusterPortForward: pod port ``p`` of pods in ``namespaces`` -> ``127.0.0.1:targets[p]``."""
    forwards = [{"ports": [pod_port], "target": {"address": "127.0.0.1", "port": local_port}}
                for pod_port, local_port in sorted(targets.items())]
    return {"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "ClusterPortForward", "metadata": {"name": name},
            "spec": {"selector": {"matchNamespaces": list(namespaces)}, "forwards": forwards}}


def stages_yaml(heartbeat_seconds: int = 60, job_seconds: float = 1.0,
                extra: list[dict[str, Any]] | None = None) -> str:
    """The harness's kwok configuration (stages, then ``extra`` objects), one multi-document YAML text."""
    return yaml.safe_dump_all(stages(heartbeat_seconds, job_seconds) + list(extra or []),
                              sort_keys=False, width=200)
