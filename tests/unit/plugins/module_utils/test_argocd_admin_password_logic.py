"""argocd_admin_password logic: bcrypt idempotence, check mode, and no password anywhere."""

from __future__ import annotations

import base64
import copy
import json

import bcrypt
import pytest

from ansible_collections.ecoeco.gitops.plugins.module_utils._argocd import admin_password as ap
from ansible_collections.ecoeco.gitops.plugins.module_utils.errors import ValidationError
from ansible_collections.ecoeco.gitops.plugins.module_utils.k8s_client import SECRETS

PASSWORD = "s3cret-Pa55word!"


def b64(text):
    return base64.b64encode(text if isinstance(text, bytes) else text.encode()).decode()


class FakeSecrets:
    def __init__(self, secret=None):
        self.secret = copy.deepcopy(secret)
        self.calls = []

    def get(self, ref, name, namespace=None):
        assert ref == SECRETS
        self.calls.append(("get", namespace, name))
        return copy.deepcopy(self.secret)

    def merge_patch(self, ref, name, patch, namespace=None, dry_run=False):
        self.calls.append(("patch", namespace, name, dry_run, copy.deepcopy(patch)))
        if not dry_run:
            assert patch["metadata"]["resourceVersion"] == self.secret["metadata"]["resourceVersion"]
            self.secret["data"].update(patch["data"])
            self.secret["metadata"]["resourceVersion"] += "1"
        return copy.deepcopy(self.secret)


def argocd_secret(password_hash=None, mtime="2026-01-01T00:00:00Z"):
    data = {"server.secretkey": b64("k")}
    if password_hash:
        data["admin.password"] = b64(password_hash)
        data["admin.passwordMtime"] = b64(mtime)
    return {"metadata": {"name": "argocd-secret", "namespace": "argocd", "resourceVersion": "5"}, "data": data}


def params(**over):
    base = {"password": PASSWORD, "namespace": "argocd", "secret_name": "argocd-secret"}
    base.update(over)
    return base


def now():
    return "2026-11-24T14:00:00Z"


def stored_hash(api):
    return base64.b64decode(api.secret["data"]["admin.password"])


def test_sets_hash_and_mtime_then_rerun_is_unchanged():
    api = FakeSecrets(argocd_secret())
    first = ap.run(api, params(), check_mode=False, want_diff=False, now=now)
    assert first["changed"] is True and first["password_mtime"] == "2026-11-24T14:00:00Z"
    assert bcrypt.checkpw(PASSWORD.encode(), stored_hash(api))
    assert stored_hash(api).startswith(b"$2b$10$")
    assert base64.b64decode(api.secret["data"]["admin.passwordMtime"]).decode() == "2026-11-24T14:00:00Z"
    assert api.secret["data"]["server.secretkey"] == b64("k")
    api.calls.clear()
    second = ap.run(api, params(), check_mode=False, want_diff=False, now=lambda: "later")
    assert second["changed"] is False and second["password_mtime"] == "2026-11-24T14:00:00Z"
    assert [c[0] for c in api.calls] == ["get"]


def test_existing_hash_of_other_password_is_replaced():
    old = bcrypt.hashpw(b"old-password", bcrypt.gensalt(rounds=4))
    api = FakeSecrets(argocd_secret(old))
    result = ap.run(api, params(), check_mode=False, want_diff=True, now=now)
    assert result["changed"] is True
    assert result["diff"]["before"] == {"admin.password": "<hidden>", "admin.passwordMtime": "2026-01-01T00:00:00Z"}
    assert result["diff"]["after"] == {"admin.password": "<hidden, changed>",
                                       "admin.passwordMtime": "2026-11-24T14:00:00Z"}


def test_argocd_written_hash_is_accepted():
    api = FakeSecrets(argocd_secret(bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4))))
    assert ap.run(api, params(), check_mode=False, want_diff=False)["changed"] is False


def test_garbage_hash_is_replaced():
    api = FakeSecrets(argocd_secret(b"not-a-bcrypt-hash"))
    assert ap.run(api, params(), check_mode=False, want_diff=False, now=now)["changed"] is True


def test_check_mode_is_a_dry_run_patch():
    api = FakeSecrets(argocd_secret())
    result = ap.run(api, params(), check_mode=True, want_diff=False, now=now)
    assert result["changed"] is True
    assert api.calls[-1][3] is True
    assert "admin.password" not in api.secret["data"]


def test_password_never_in_result_or_diff():
    old = bcrypt.hashpw(b"old-password", bcrypt.gensalt(rounds=4))
    api = FakeSecrets(argocd_secret(old))
    result = ap.run(api, params(), check_mode=False, want_diff=True, now=now)
    text = json.dumps(result)
    assert PASSWORD not in text
    assert b64(PASSWORD) not in text
    assert "$2" not in text  # not even the hash


def test_missing_secret_fails_clearly():
    api = FakeSecrets(None)
    with pytest.raises(ValidationError, match="Secret argocd/argocd-secret does not exist"):
        ap.run(api, params(), check_mode=False, want_diff=False)


def test_missing_secret_in_check_mode_is_a_predicted_change_with_a_warning():
    # check mode before the install: the manifest's dry-run apply created nothing
    api = FakeSecrets(None)
    result = ap.run(api, params(), check_mode=True, want_diff=False)
    assert result["changed"] and "does not exist yet" in result["warnings"][0]
    assert [c[0] for c in api.calls] == ["get"]


@pytest.mark.parametrize("password, needle", [("", "must not be empty"), ("x" * 73, "72 bytes")])
def test_password_validation(password, needle):
    with pytest.raises(ValidationError) as exc:
        ap.validate(params(password=password))
    assert needle in str(exc.value) and str(exc.value).startswith("password:")
