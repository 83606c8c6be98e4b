"""The Application watch: resume from the last resourceVersion, 410 -> LIST, reconnect with backoff."""

from __future__ import annotations

import pytest

from ansible_collections.ecoeco.gitops.plugins.module_utils._argocd.app_watch import (
    BACKOFF_MAX,
    ApplicationWatch,
    CountingClient,
)
from ansible_collections.ecoeco.gitops.plugins.module_utils.k8s_client import K8sError
from tests.support.argocd_objects import application, bookmark, event, gone
from tests.unit.plugins.module_utils._argocd.fake_k8s import Advance, FakeClient, FakeClock, dropped


def setup(streams, apps=None):
    clock = FakeClock()
    client = FakeClient(clock, apps if apps is not None else [application("ns", 0, rv="100")], list_rv="150")
    client.streams = streams
    w = ApplicationWatch(CountingClient(client), "argocd", clock=clock, sleep=clock.sleep)
    w.relist()
    return clock, client, w


def test_list_then_watch_from_its_resource_version():
    clock, client, w = setup([[event("MODIFIED", application("ns", 0, health="Progressing", rv="151"))]])
    assert w.index[("argocd", "ns")]["metadata"]["resourceVersion"] == "100"
    assert w.wait_for_change(30) is True
    assert client.calls[-1][:4] == ("watch", "applications", "argocd", "150")
    assert w.index[("argocd", "ns")]["status"]["health"]["status"] == "Progressing"
    assert w.resource_version == "151"


def test_added_and_deleted():
    clock, client, w = setup([[event("ADDED", application("db", 1, rv="151")),
                               event("DELETED", application("ns", 0, rv="152"))]])
    w.wait_for_change(30)
    w.wait_for_change(30)
    assert list(w.index) == [("argocd", "db")]


def test_resume_after_the_stream_ends_uses_the_last_bookmark():
    clock, client, w = setup([[bookmark("170"), Advance(20)],
                              [event("MODIFIED", application("ns", 0, rv="171"))]])
    assert w.wait_for_change(60) is True
    watches = [c for c in client.calls if c[0] == "watch"]
    assert [c[3] for c in watches] == ["150", "170"]
    assert w.resumes == 1 and w.relists == 1


def test_expired_version_event_410_relists():
    clock, client, w = setup([[gone()]])
    client.apps[("argocd", "db")] = application("db", 1, rv="400")
    client.list_rv = "400"
    assert w.wait_for_change(60) is True
    assert w.relists == 2 and w.resource_version == "400"
    assert ("argocd", "db") in w.index
    assert clock.sleeps == []                 # a 410 is answered at once


def test_http_410_on_watch_start_relists():
    clock, client, w = setup([K8sError("GET ...: 410 Gone", 410)])
    assert w.wait_for_change(60) is True
    assert w.relists == 2


def test_dropped_connection_is_retried_with_bounded_backoff_then_resumed():
    clock, client, w = setup([dropped(), dropped(), dropped(), dropped(), dropped(), dropped(),
                              [event("MODIFIED", application("ns", 0, rv="160"))]])
    assert w.wait_for_change(120) is True
    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert max(clock.sleeps) <= BACKOFF_MAX
    assert w.reconnects == 6 and w.relists == 1       # resumed from 150, no LIST needed
    assert [c[3] for c in client.calls if c[0] == "watch"][-1] == "150"


def test_stream_that_breaks_mid_way_resumes_from_the_last_event():
    clock, client, w = setup([[event("MODIFIED", application("ns", 0, rv="155")), dropped("reset by peer")],
                              [event("MODIFIED", application("ns", 0, rv="156"))]])
    w.wait_for_change(60)
    w.wait_for_change(60)
    assert [c[3] for c in client.calls if c[0] == "watch"] == ["150", "155"]
    assert w.resource_version == "156"


def test_backoff_never_passes_the_deadline():
    clock, client, w = setup([dropped()] * 50)
    start = clock()
    assert w.wait_for_change(7) is False
    assert clock() - start == pytest.approx(7)


def test_quiet_watch_returns_at_the_deadline():
    clock, client, w = setup([])
    start = clock()
    assert w.wait_for_change(12.5) is False
    assert clock() - start >= 12.5
    assert client.calls[-1][4] == 13          # timeoutSeconds rounds up, the server ends the stream


def test_other_error_events_relist_after_a_pause():
    clock, client, w = setup([[{"type": "ERROR", "object": {"kind": "Status", "code": 500, "message": "etcd"}}]])
    assert w.wait_for_change(60) is True
    assert w.relists == 2 and clock.sleeps == [0.5]


def test_forbidden_is_not_retried():
    clock, client, w = setup([K8sError("GET ...: 403 forbidden", 403)])
    with pytest.raises(K8sError):
        w.wait_for_change(60)


def test_relist_retries_while_the_apiserver_is_down():
    clock, client, w = setup([[gone()]])
    client.list_errors = [dropped(), dropped()]
    assert w.wait_for_change(60) is True
    assert w.relists == 2 and len(clock.sleeps) == 2


def test_counting_client_counts_every_request():
    clock, client, w = setup([[event("MODIFIED", application("ns", 0, rv="151"))]])
    w.wait_for_change(10)
    assert w.client.requests == 2             # LIST + WATCH


def test_a_wait_ends_at_its_own_deadline_and_the_next_one_resumes():
    # the stream outlasts the second wait: the wait returns at its deadline, the next one resumes
    clock, client, w = setup([[event("MODIFIED", application("ns", 0, rv="151")), Advance(1000)],
                              [event("MODIFIED", application("ns", 0, rv="152"))]])
    assert w.wait_for_change(240) is True
    assert w.wait_for_change(30) is False
    assert w.wait_for_change(30) is True
    watches = [c for c in client.calls if c[0] == "watch"]
    assert [(c[3], c[4]) for c in watches] == [("150", 240), ("151", 30)]
    assert w.relists == 1 and w.resumes == 1
