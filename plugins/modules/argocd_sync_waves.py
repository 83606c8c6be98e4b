#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) ecoeco.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Wait wave by wave until every child Application of an App-of-Apps is Synced and Healthy."""

from __future__ import annotations

DOCUMENTATION = r"""
module: argocd_sync_waves
short_description: Verify an Argo CD App-of-Apps wave by wave (Synced and Healthy, in order)
version_added: "0.1.0"
description:
  - Discovers the child Applications of a root App-of-Apps (or the Applications that match a label selector),
    groups them by the annotation C(argocd.argoproj.io/sync-wave) (missing means 0, negative waves allowed) and waits
    wave by wave, lowest first, until every app of the wave passes.
  - An app passes only when it is C(Synced) with a comparison that matches its current spec (a stale
    C(status.sync.comparedTo) does not count), on the revision the root tracks (see O(check_root_revision) and
    O(target_revision)), C(Healthy), with no error condition (C(ComparisonError), C(InvalidSpecError), ...) and no
    running or failed operation. Health alone never counts, and the root's own status is never trusted.
  - The children are the C(Application) entries of the root's C(status.resources), including those Argo CD has not
    created yet (status C(Missing)), plus any Application whose C(argocd.argoproj.io/tracking-id) annotation or
    C(app.kubernetes.io/instance) label names the root. They are re-discovered on every change, so apps that Argo CD
    creates only after an earlier wave is healthy are waited for too (unlike C(argocd app wait -l)).
  - A child's wave is the one in its parent's C(status.resources), taken from the parent's desired manifest (the
    wave Argo CD orders the parent's sync by), not a live annotation that another owner may rewrite. A sync-wave that
    is not an integer counts as wave 0, as in Argo CD, with a warning.
  - An ApplicationSet among the root's (or a nested parent's) resources is a member of its wave, and so is every
    Application it generates (controller C(ownerReference) to the set's uid, or listed in the set's
    C(status.resources)), judged like any child. The set itself fails its wave on C(ErrorOccurred=True) or
    C(ResourcesUpToDate=False), naming the condition, and waits while it has no status yet, while a progressive sync
    is under way (C(RolloutProgressing=True), the step is named), or while an app it lists (or counts in
    C(status.resourcesCount)) is not created yet. Argo CD orders the root's sync by the set's wave only, so a generated
    app whose template carries another C(sync-wave) is judged in the set's wave, with a warning naming both numbers.
    An app that a parent lists and a set generates is reported as having two owners. Apps of sets outside the root
    are not pulled in.
  - A nested App-of-Apps (a child that manages Applications itself) is judged by its own children, not by its health,
    which Argo CD updates only on its resync period.
  - Watch based. One LIST of the Applications of O(namespace), then one WATCH resumed from the last resourceVersion
    when the server ends the stream (and the same for ApplicationSets once one is a member, both streams waited on
    at once); C(410 Gone) triggers a fresh LIST; a dropped connection (API server restart) is
    retried with bounded backoff. The number of requests does not grow with the number of apps. One timeout per
    wave and one overall, on the monotonic clock.
  - Fails fast when an app of the wave being waited on (or of an earlier one) is C(Degraded), has an error condition
    or a failed operation. The message names the wave, the app, its sync, health and operation state, the
    conditions (for example Argo CD's C(Manifest generation error (cached))), the resources that are not healthy,
    and goes down to the object that blocks - for example
    C(StatefulSet data/pg 0/1 ready, pod pg-0 Pending - 0/14 nodes are available ...) - including a StatefulSet pod of
    an old revision that Kubernetes will not replace by itself.
  - An error condition about reaching the cluster or the repo-server (C(context deadline exceeded), C(connection
    refused), C(failed to load open api schema), ...) is something Argo CD retries by itself; the module waits on it
    within the timeouts, and names it in the report, instead of failing fast.
  - Reads C(argocd-cm) once. Without a health check for C(argoproj.io/Application), or with only the check from Argo
    CD's documentation (which copies C(status.health)), Argo CD does not hold back later waves; the module warns (or
    fails with O(require_health_check=true)) and reports which check it found in RV(health_check).
  - Reports C(ordering broken) when an app of a later wave was synced while an app of an earlier wave was not ready.
author:
  - ecoeco platform team (@ecoeco)
extends_documentation_fragment:
  - ecoeco.gitops.k8s_auth
attributes:
  check_mode:
    description: Reports the current state of every wave from one LIST, without waiting or refreshing.
    support: full
  diff_mode:
    description: Nothing to show; the module changes nothing but the refresh annotation.
    support: none
options:
  root_app:
    description:
      - Name of the root App-of-Apps Application in O(namespace).
      - Exactly one of O(root_app) and O(label_selector) is required.
    type: str
  namespace:
    description: Namespace of the Applications (where Argo CD watches them, and where C(argocd-cm) lives).
    type: str
    default: argocd
  label_selector:
    description:
      - Verify the Applications of O(namespace) that match this label selector (for example C(team=platform)),
        instead of the children of a root app.
      - Apps created later that match are picked up; list the ones that must appear in O(expected_apps).
    type: str
  expected_apps:
    description:
      - Names (or C(namespace/name)) of Applications that must exist and pass, even if nothing lists them yet.
        Mostly useful with O(label_selector).
    type: list
    elements: str
    default: []
  target_revision:
    description:
      - Branch, tag or commit every app must be synced to. A commit may be abbreviated (7 characters or more).
      - Without it, apps from the root's repository must track the root's C(targetRevision) or be synced to the same
        commit as the root (see O(check_root_revision)).
    type: str
  check_root_revision:
    description:
      - Hold apps built from the root's repository to the root's C(targetRevision). Set to false when children pin
        other revisions of the same repository on purpose.
    type: bool
    default: true
  wave_timeout:
    description:
      - Seconds to wait for one wave, counted from the moment it becomes the wave being waited on.
      - Must be finite and positive.
    type: float
    default: 600
  timeout:
    description:
      - Seconds to wait for all waves together. Must not be less than O(wave_timeout); finite and positive.
      - Bounds every API request too (with O(slice_seconds) when shorter), plus 5 seconds for the failure report,
        also when the API server stops answering.
    type: float
    default: 1800
  hard_refresh_on_error:
    description:
      - When an app fails (error condition, failed operation, Degraded), or the root app cannot list its children
        (error condition), set the annotation C(argocd.argoproj.io/refresh=hard) on it once, and wait for the
        result of that refresh within the timeouts before failing.
      - Useful for errors that Argo CD caches (C(Manifest generation error (cached))). Argo CD's repo-server caches
        a failed manifest generation under the commit of the app's repository and, after three failures in a row,
        answers from that cache for 60 minutes; a normal refresh (what a Git webhook asks for) does not clear it.
        A fix that leaves that commit unchanged, for example in a Kustomize remote base or a Helm repository the
        app pulls from, is seen only after a hard refresh.
      - The module reports C(changed) when it refreshed an app.
    type: bool
    default: false
  require_health_check:
    description:
      - Fail instead of warning when C(argocd-cm) has no gating health check for C(argoproj.io/Application).
    type: bool
    default: false
  junit_file:
    description:
      - Also write the report as JUnit XML to this path on the host that runs the module, whether the waves pass or
        not (also in check mode), with one C(testsuite) per wave, one C(testcase) per app (ApplicationSets and their
        generated apps too) whose C(time) is its seconds to healthy; an app that is not ready is a C(failure) whose
        message is its verdict and diagnosis. CI systems (GitLab CI C(artifacts:reports:junit), Jenkins C(junit))
        show it as test results.
    type: path
  slice_seconds:
    description:
      - Return after at most this many seconds even when the waves are still converging, with RV(done=false), the
        report so far and RV(progress); call the module again with O(progress) to go on. The overall and per-wave
        timeouts keep running across the calls, and each call costs the same few requests whatever the number of
        apps. This is how the C(app_of_apps) role and the PostSync hook print progress every 30 seconds.
      - Without it the module returns only when every wave passed, one failed, or a timeout was reached.
    type: float
  progress:
    description:
      - The RV(progress) an earlier call returned (with O(slice_seconds)); this call goes on from there, with the
        same start time, wave start times and seconds to healthy.
    type: dict
  report_file:
    description:
      - Also write the whole result (every wave and app, C(detected_at), seconds to healthy, the report lines, the
        warnings and, when it failed, C(failed) and the message) as JSON to this path on the host that runs the
        module, whether the waves pass or not.
    type: path
notes:
  - Times in RV(waves) are seconds since the module started watching; an app or wave that was ready at the first
    LIST shows C(0).
  - Child Applications must live in O(namespace); the module watches that one namespace.
  - Needs C(list) and C(watch) on C(applications.argoproj.io) (and on C(applicationsets.argoproj.io) when the tree
    has ApplicationSets), C(get) on the C(argocd-cm) ConfigMap (and on C(argocd-cmd-params-cm) when the tree has
    ApplicationSets), C(patch) on
    Applications for O(hard_refresh_on_error), and C(get) on workloads plus C(list) on pods for the diagnosis.
seealso:
  - module: ecoeco.gitops.argocd_root_app
"""

EXAMPLES = r"""
- name: Wait for every wave of the root app to be Synced and Healthy
  ecoeco.gitops.argocd_sync_waves:
    root_app: root
    namespace: argocd
    wave_timeout: 600
    timeout: 1800
    kubeconfig: /etc/kubernetes/admin.conf
  register: waves

- name: Print the per-wave report
  ansible.builtin.debug:
    msg: "{{ waves.report }}"

- name: Retry apps whose error Argo CD cached, fail when Argo CD would not gate
  ecoeco.gitops.argocd_sync_waves:
    root_app: root
    target_revision: main
    hard_refresh_on_error: true
    require_health_check: true

- name: Verify apps by label, including the ones a later wave creates
  ecoeco.gitops.argocd_sync_waves:
    label_selector: app.kubernetes.io/part-of=ecoeco
    expected_apps: [infrastructure, databases, workers, apis]

- name: Verify, and leave a JUnit report for the CI system
  ecoeco.gitops.argocd_sync_waves:
    root_app: root
    junit_file: "{{ lookup('env', 'CI_PROJECT_DIR') }}/waves-junit.xml"

- name: Show the current state only
  ecoeco.gitops.argocd_sync_waves:
    root_app: root
  check_mode: true
  register: state
"""

RETURN = r"""
waves:
  description: One entry per wave, lowest first.
  returned: always
  type: list
  elements: dict
  contains:
    wave:
      description: The wave number.
      type: int
    healthy:
      description: Whether every app of the wave passed.
      type: bool
    seconds_to_healthy:
      description: Seconds from the start of the module until the wave was seen passing, or null.
      type: float
    detected_at:
      description: UTC time (RFC 3339) when the module saw the wave pass, or null.
      type: str
    apps:
      description: The apps of the wave.
      type: list
      elements: dict
      contains:
        name:
          description: Application (or ApplicationSet) name (C(namespace/name) outside O(namespace)).
          type: str
        kind:
          description: C(Application), or C(ApplicationSet) for the row of a set (its apps follow it).
          type: str
        owner:
          description: The ApplicationSet that generated the app, or null.
          type: str
        namespace:
          description: Application namespace.
          type: str
        sync:
          description: Sync status (C(Synced), C(OutOfSync), C(Unknown), or C(Missing) when not created yet).
          type: str
        health:
          description: Health status (for a nested App-of-Apps, the module's verdict over its children).
          type: str
        operation:
          description: Phase of the last operation (C(Running), C(Succeeded), C(Failed), ...) or empty.
          type: str
        revision:
          description: The revision the app is synced to.
          type: str
        ready:
          description: Whether the app passed.
          type: bool
        seconds_to_healthy:
          description: Seconds from the start of the module until the app was seen passing, or null.
          type: float
        message:
          description: Why the app has not passed (empty when it has).
          type: str
  sample:
    - wave: 0
      healthy: true
      seconds_to_healthy: 3.2
      detected_at: "2026-11-24T14:02:11.52Z"
      apps:
        - name: infrastructure
          namespace: argocd
          sync: Synced
          health: Healthy
          operation: Succeeded
          revision: 4f2a1c9e0b7d
          kind: Application
          owner: null
          ready: true
          seconds_to_healthy: 3.2
          message: ""
report:
  description:
    - The waves as aligned table lines (C(WAVE APP SYNC HEALTH SECONDS NOTE)) for M(ansible.builtin.debug), an
      ApplicationSet as a row with its apps under it, and last the sentence saying which Application health check
      Argo CD has (RV(health_check)) and what it means for the waves; when the tree has ApplicationSets, one
      more sentence saying whether Argo CD holds later waves behind their apps (RV(applicationset_health_check)).
  returned: always
  type: list
  elements: str
  sample:
    - "WAVE  APP             SYNC       HEALTH       SECONDS  NOTE"
    - "   0  infrastructure  Synced     Healthy          3.2"
    - "   1  databases       Synced     Progressing        -  health Progressing: Waiting for rollout"
    - "health check: gating (argocd-cm) - Argo CD holds back each wave until the earlier ones are Synced and Healthy"
health_check:
  description:
    - The Application health check found in C(argocd-cm). C(gating) also gates on sync status and conditions;
      C(documented) copies C(status.health) (Argo CD's documented check); C(missing) means Argo CD does not gate
      waves at all; C(unknown) when C(argocd-cm) could not be read.
  returned: always
  type: str
  sample: gating
applicationset_health_check:
  description:
    - Whether Argo CD holds a later wave until an ApplicationSet's apps are Synced and Healthy, judged only when the
      tree has ApplicationSets (null otherwise). C(gating) needs an C(argoproj.io/ApplicationSet) health check in
      C(argocd-cm) that reads the apps' health from the set's status and progressive syncs on in
      C(argocd-cmd-params-cm); C(missing) (no check, so Argo CD counts a set Healthy once it exists),
      C(not-gating) (a check that does not read the apps), C(no-progressive-syncs) and C(unknown) also add a
      warning. In every case the verifier judges each generated app itself and reports a later wave synced too
      early in RV(ordering_violations).
  returned: always
  type: str
  sample: gating
ordering_violations:
  description: Times Argo CD synced a later wave while an earlier one was not ready.
  returned: always
  type: list
  elements: str
  sample:
    - "ordering broken: wave 2 app apis synced at 2026-11-24T14:02:11Z while wave 1 app databases was Unknown/Healthy"
refreshed:
  description: Apps the module hard-refreshed (O(hard_refresh_on_error)).
  returned: always
  type: list
  elements: str
elapsed:
  description: Seconds the module spent watching.
  returned: always
  type: float
api_requests:
  description: Number of Kubernetes API requests the module made (a WATCH counts once per stream).
  returned: always
  type: int
  sample: 3
watch:
  description: How often the watch had to list again (C(relists)), resume (C(resumes)) and reconnect (C(reconnects)).
  returned: always
  type: dict
  sample: {relists: 1, resumes: 0, reconnects: 0}
done:
  description:
    - False when the call ended because its O(slice_seconds) ran out while a wave was still converging (call again
      with RV(progress)); true otherwise.
  returned: always
  type: bool
progress:
  description: Where the verification stands (start time, wave start and completion times, seconds to healthy), for
    the next call's O(progress).
  returned: always
  type: dict
msg:
  description: What the module concluded, or why it failed (wave, app, states, conditions, diagnosis).
  returned: always
  type: str
"""

from ansible_collections.ecoeco.gitops.plugins.module_utils._argocd import sync_waves
from ansible_collections.ecoeco.gitops.plugins.module_utils.errors import run_module
from ansible_collections.ecoeco.gitops.plugins.module_utils.k8s_client import AUTH_ARG_SPEC, K8sClient
from ansible_collections.ecoeco.gitops.plugins.module_utils.secrets import SecretMaskingModule

ARGUMENT_SPEC = dict(
    root_app=dict(type="str"),
    namespace=dict(type="str", default="argocd"),
    label_selector=dict(type="str"),
    expected_apps=dict(type="list", elements="str", default=[]),
    target_revision=dict(type="str"),
    check_root_revision=dict(type="bool", default=True),
    wave_timeout=dict(type="float", default=600),
    timeout=dict(type="float", default=1800),
    hard_refresh_on_error=dict(type="bool", default=False),
    require_health_check=dict(type="bool", default=False),
    junit_file=dict(type="path"),
    report_file=dict(type="path"),
    slice_seconds=dict(type="float"),
    progress=dict(type="dict"),
    **AUTH_ARG_SPEC,
)


def main() -> None:
    module = SecretMaskingModule(
        argument_spec=ARGUMENT_SPEC,
        supports_check_mode=True,
        mutually_exclusive=[("root_app", "label_selector")],
        required_one_of=[("root_app", "label_selector")],
    )

    def body() -> dict:
        sync_waves.validate(module.params)  # the one validation step, before the client is configured
        client = K8sClient(module.params)
        return sync_waves.verify_sync_waves(client, module.params, check_mode=module.check_mode, validated=True)

    run_module(module, body)


if __name__ == "__main__":
    main()
