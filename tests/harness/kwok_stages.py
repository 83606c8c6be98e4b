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
"""

from __future__ import annotations

NODE_INITIALIZE = r"""
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: node-initialize
spec:
  resourceRef:
    apiGroup: v1
    kind: Node
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: 'NotIn'
      values: ['True']
  next:
    statusTemplate: |
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
      phase: Running
"""

NODE_HEARTBEAT = r"""
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: node-heartbeat
spec:
  resourceRef:
    apiGroup: v1
    kind: Node
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values: ['Running']
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: 'In'
      values: ['True']
  delay:
    durationMilliseconds: {delay_ms}
    jitterDurationMilliseconds: {jitter_ms}
  next:
    statusTemplate: |
      {{{{ $now := Now }}}}
      {{{{ $since := or .metadata.creationTimestamp $now }}}}
      conditions:
      {{{{ range NodeConditions }}}}
      - type: {{{{ .type | Quote }}}}
        status: {{{{ .status | Quote }}}}
        reason: {{{{ .reason | Quote }}}}
        message: {{{{ .message | Quote }}}}
        lastHeartbeatTime: {{{{ $now | Quote }}}}
        lastTransitionTime: {{{{ $since | Quote }}}}
      {{{{ end }}}}
"""

POD_READY = r"""
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-ready
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values: ['Pending']
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: 'NotIn'
      values: ['True']
  next:
    statusTemplate: |
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

POD_COMPLETE = r"""
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-complete
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values: ['Running']
    - key: '.metadata.ownerReferences.[].kind'
      operator: 'In'
      values: ['Job']
  delay:
    durationMilliseconds: {job_ms}
  next:
    statusTemplate: |
      {{{{ $now := Now }}}}
      conditions:
      - type: Ready
        status: "False"
        reason: PodCompleted
        lastTransitionTime: {{{{ $now | Quote }}}}
      - type: ContainersReady
        status: "False"
        reason: PodCompleted
        lastTransitionTime: {{{{ $now | Quote }}}}
      containerStatuses:
      {{{{ range .spec.containers }}}}
      - name: {{{{ .name | Quote }}}}
        image: {{{{ .image | Quote }}}}
        imageID: ""
        ready: false
        started: false
        restartCount: 0
        state:
          terminated:
            exitCode: 0
            reason: Completed
            startedAt: {{{{ $now | Quote }}}}
            finishedAt: {{{{ $now | Quote }}}}
      {{{{ end }}}}
      phase: Succeeded
"""

POD_DELETE = r"""
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-delete
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'Exists'
  next:
    finalizers:
      empty: true
    delete: true
"""


def stages_yaml(heartbeat_seconds: int = 60, job_seconds: float = 1.0) -> str:
    """The harness's kwok stage configuration, one multi-document YAML text."""
    docs = [
        NODE_INITIALIZE,
        NODE_HEARTBEAT.format(delay_ms=heartbeat_seconds * 1000, jitter_ms=heartbeat_seconds * 1500),
        POD_READY,
        POD_COMPLETE.format(job_ms=int(job_seconds * 1000)),
        POD_DELETE,
    ]
    return "\n---\n".join(d.strip() for d in docs) + "\n"
