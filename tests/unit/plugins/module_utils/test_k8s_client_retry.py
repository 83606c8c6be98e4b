"""A read answered "not now" (429, 503) is tried again inside the deadline; other answers are not."""

from __future__ import annotations

import pytest

from ansible_collections.ecoeco.gitops.plugins.module_utils.k8s_client import K8sClient, K8sError
from ansible_collections.ecoeco.gitops.plugins.module_utils.waiter import Deadline


def _client(answers, deadline=None):
    client = object.__new__(K8sClient)   # no kubeconfig: only the retry plumbing is under test
    client.deadline, client.slept, client.calls = deadline, [], []
    client.sleep = client.slept.append

    def call_once(method, path, *_args):
        client.calls.append(method)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer
    setattr(client, "_call_once", call_once)
    return client


def test_a_read_answered_429_or_503_is_tried_again():
    busy = K8sError("GET /x: 429 storage is (re)initializing", 429)
    client = _client([busy, K8sError("GET /x: 503", 503), {"items": []}])
    assert client.get_path("/x") == {"items": []}
    assert client.calls == ["GET"] * 3 and client.slept == [0.5, 1.0]


@pytest.mark.parametrize("method, status", [("GET", 403), ("GET", 500), ("POST", 429), ("POST", 503)])
def test_other_answers_and_writes_are_not_retried(method, status):
    client = _client([K8sError(f"{method} /x: {status}", status), {}])
    with pytest.raises(K8sError):
        if method == "GET":
            client.get_path("/x")
        else:
            client.post_path("/x", {})
    assert client.calls == [method] and client.slept == []


def test_no_retry_past_the_deadline():
    client = _client([K8sError("GET /x: 429", 429), {}], deadline=Deadline(0.1))
    with pytest.raises(K8sError, match="429"):
        client.get_path("/x")
    assert client.slept == []
