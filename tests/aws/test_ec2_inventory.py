"""inventories/aws/aws_ec2.yml against a real EC2 API (moto_server on 127.0.0.1).

The instances carry the tags docs/aws-inventory.md asks Terraform for; the
inventory must give the playbooks the same groups and node labels/taints as
the static example inventory, leave out what is not a running member of the
cluster, and fail with a readable message (no stack trace) on bad keys, a
denied action or an endpoint nobody listens on.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.aws.ec2_world import (
    BAD_TAINT_CLUSTER, INVENTORY, OTHER_CLUSTER, SEED_NODES, STAGING_NODE, UNTAGGED_CLUSTER, WORKLOAD_GROUPS, Keys, World, aws_env,
    documented_policies, free_port, inventory_list, run, unwrap,
)
from tools.localcluster.ansible import VENV_BIN, ansible_env
from tools.localcluster.versions import REPO_ROOT

pytestmark = pytest.mark.aws

NAMES = {n.name for n in SEED_NODES}
CONTROL_PLANE = {n.name for n in SEED_NODES if n.role == "control-plane"}
WORKERS = NAMES - CONTROL_PLANE
PLAYBOOK_GROUPS = ("k8s_cluster", "k8s_control_plane", "k8s_workers", *WORKLOAD_GROUPS.values())
EXAMPLE = REPO_ROOT / "inventories" / "example" / "hosts.yml"


def members(data: dict[str, Any], group: str) -> set[str]:
    """Every host of a group of ``ansible-inventory --list`` output, through its children."""
    entry = data.get(group, {})
    hosts = set(entry.get("hosts", []))
    for child in entry.get("children", []):
        hosts |= members(data, child)
    return hosts


def no_traceback(done: Any) -> None:
    assert "Traceback" not in done.stderr + done.stdout, str(done)


@pytest.fixture(scope="module")
def reader_env(ec2: World) -> dict[str, str]:
    """Keys of the IAM user holding the documented read-only policy."""
    return aws_env(ec2.endpoint, ec2.keys["read-only"])


@pytest.fixture(scope="module")
def listed(reader_env: dict[str, str]) -> dict[str, Any]:
    done, data = inventory_list(reader_env)
    assert done.rc == 0 and data, str(done)
    no_traceback(done)
    assert "Failed to parse" not in done.stderr, str(done)
    return data


def test_cluster_groups(listed: dict[str, Any]) -> None:
    assert members(listed, "k8s_control_plane") == CONTROL_PLANE == {"k8s-master"}
    assert members(listed, "k8s_workers") == WORKERS and len(WORKERS) == 13
    assert members(listed, "k8s_cluster") == NAMES and len(NAMES) == 14
    # k8s_cluster is the parent of both, so its group_vars reach every node.
    assert set(listed["k8s_cluster"]["children"]) == {"k8s_control_plane", "k8s_workers"}
    assert "aws_role_unknown" not in listed


def test_workload_groups(listed: dict[str, Any]) -> None:
    for workload, group in WORKLOAD_GROUPS.items():
        expected = {n.name for n in SEED_NODES if n.workload == workload}
        assert expected, workload
        assert members(listed, group) == expected, group
    apis = ("auth", "scan", "chat", "mypage", "location", "info", "character")
    assert members(listed, "api") == {"k8s-worker-1"} | {f"k8s-api-{a}" for a in apis}


def test_hostvars(listed: dict[str, Any], ec2: World) -> None:
    hostvars = listed["_meta"]["hostvars"]
    assert set(hostvars) == NAMES
    for node in SEED_NODES:
        hv = hostvars[node.name]
        assert hv["ansible_host"] == ec2.private_ip[node.name], node.name
        assert hv["ec2_tags"]["Name"] == node.name
        assert hv["node_labels"]["workload"] == node.workload, node.name
        assert "tags" not in hv  # the EC2 facts are prefixed: no clash with the play keyword
    assert hostvars["k8s-api-auth"]["node_labels"] == {"workload": "application", "node-role": "auth"}
    assert hostvars["k8s-worker-2"]["node_labels"] == {"workload": "async-workers"}
    assert hostvars["k8s-worker-2"]["node_taints"] == []
    assert hostvars["k8s-postgresql"]["node_taints"] == [
        {"key": "dedicated", "value": "database", "effect": "PreferNoSchedule"}]


def test_same_groups_and_node_vars_as_the_example_inventory(listed: dict[str, Any]) -> None:
    """The playbooks cannot tell EC2 from the static example: same hosts, groups, labels, taints."""
    done = run([str(VENV_BIN / "ansible-inventory"), "-i", str(EXAMPLE), "--list"], ansible_env())
    assert done.rc == 0, str(done)
    example = unwrap(json.loads(done.stdout))
    for group in PLAYBOOK_GROUPS:
        assert members(listed, group) == members(example, group), group
    ex_vars, ec2_vars = example["_meta"]["hostvars"], listed["_meta"]["hostvars"]
    for host in NAMES:
        assert ec2_vars[host]["node_taints"] == ex_vars[host].get("node_taints", []), host
        # node_labels, and the cluster settings of group_vars (group_vars/all/cluster.yml is the example's)
        for var, value in ex_vars[host].items():
            if var != "ansible_host":
                assert ec2_vars[host].get(var) == value, f"{host}: {var}"
    assert {"ansible_user", "ecoeco_kubeconfig", "ecoeco_pod_subnet"} <= set(ex_vars["k8s-master"])


def test_ec2_group_vars(listed: dict[str, Any]) -> None:
    for host, hv in listed["_meta"]["hostvars"].items():
        assert hv["prerequisites_ntp_servers"] == ["169.254.169.123"], host  # Amazon Time Sync


def test_excluded_instances(listed: dict[str, Any], ec2: World) -> None:
    hostvars = listed["_meta"]["hostvars"]
    assert set(ec2.excluded) == {"k8s-api-old", "staging-master", "mystery", "bad-taint"}
    for name, why in ec2.excluded.items():
        assert name not in hostvars, f"{name} ({why}) must not be in the inventory"
        assert all(name not in members(listed, g) for g in PLAYBOOK_GROUPS)


def test_cluster_name_and_optional_label_and_taint_tags(ec2: World) -> None:
    """ECOECO_CLUSTER picks the other cluster; NodeLabel/* and NodeTaints tags become node vars."""
    done, data = inventory_list(aws_env(ec2.endpoint, ec2.keys["read-only"], ECOECO_CLUSTER=OTHER_CLUSTER))
    assert done.rc == 0 and data, str(done)
    assert set(data["_meta"]["hostvars"]) == {STAGING_NODE.name}
    hv = data["_meta"]["hostvars"][STAGING_NODE.name]
    assert members(data, "k8s_control_plane") == {STAGING_NODE.name}
    assert hv["node_labels"] == {"node-role.kubernetes.io/edge": "", "topology.ecoeco.io/zone": "a"}
    assert hv["node_taints"] == [{"key": "dedicated", "value": "control", "effect": "NoSchedule"},
                                 {"key": "gpu", "value": "", "effect": "NoExecute"}]


def test_member_without_role_is_set_apart(ec2: World) -> None:
    done, data = inventory_list(aws_env(ec2.endpoint, ec2.keys["read-only"], ECOECO_CLUSTER=UNTAGGED_CLUSTER))
    assert done.rc == 0 and data, str(done)
    assert members(data, "aws_role_unknown") == {"mystery"}
    assert all(not members(data, g) for g in PLAYBOOK_GROUPS)
    assert data["_meta"]["hostvars"]["mystery"]["node_labels"] == {}


def test_malformed_taint_tag_is_an_error(ec2: World) -> None:
    done = inventory_list(aws_env(ec2.endpoint, ec2.keys["read-only"], ECOECO_CLUSTER=BAD_TAINT_CLUSTER))[0]
    no_traceback(done)
    assert ("Could not set node_taints for host bad-taint: tag NodeTaints: 'dedicated=db:Sometimes', "
            "'two words:NoSchedule': want key[=value]:NoSchedule|PreferNoSchedule|NoExecute") in done.stderr, str(done)


def test_public_address(reader_env: dict[str, str], ec2: World) -> None:
    done, data = inventory_list(reader_env, "-e", "ecoeco_ec2_address=public")
    assert done.rc == 0 and data, str(done)
    for name in NAMES:
        assert data["_meta"]["hostvars"][name]["ansible_host"] == ec2.public_ip[name], name
        assert ec2.public_ip[name] != ec2.private_ip[name]


def test_public_address_missing_is_an_error(ec2: World) -> None:
    env = aws_env(ec2.endpoint, ec2.keys["read-only"], ECOECO_CLUSTER=OTHER_CLUSTER)
    done, data = inventory_list(env, "-e", "ecoeco_ec2_address=public")
    no_traceback(done)
    assert data is None or not data["_meta"]["hostvars"], str(done)
    assert ("Could not set ansible_host for host staging-master: "
            in done.stderr and "the instance has no public IP address" in done.stderr), str(done)


def test_unknown_address_mode_is_an_error(reader_env: dict[str, str]) -> None:
    done = inventory_list(reader_env, "-e", "ecoeco_ec2_address=elastic")[0]
    no_traceback(done)
    assert "ecoeco_ec2_address must be 'private' or 'public', not 'elastic'" in done.stderr, str(done)


def test_minimal_documented_policy_is_enough(ec2: World) -> None:
    assert set(documented_policies()) == {"read-only", "minimal"}
    done, data = inventory_list(aws_env(ec2.endpoint, ec2.keys["minimal"]))
    assert done.rc == 0 and data and set(data["_meta"]["hostvars"]) == NAMES, str(done)


# --- failures: a clear message, never a stack trace --------------------------

FAILED = "Failed to parse inventory with 'auto' plugin: Failed to describe instances: "


@pytest.mark.parametrize("strict", [False, True], ids=["default", "unparsed-is-failed"])
def test_bad_credentials(ec2: World, strict: bool) -> None:
    extra = {"ANSIBLE_INVENTORY_UNPARSED_FAILED": "true" if strict else "false"}
    env = aws_env(ec2.endpoint, Keys("AKIAEXAMPLEWRONGKEY0", "not-the-secret"), **extra)
    done, data = inventory_list(env)
    no_traceback(done)
    assert FAILED + "An error occurred (AuthFailure) when calling the DescribeInstances operation: " \
        "AWS was not able to validate the provided access credentials" in done.stderr, str(done)
    if strict:
        assert done.rc != 0 and "No inventory was parsed" in done.stderr, str(done)
    else:  # Ansible's default: warn and go on with an empty inventory
        assert done.rc == 0 and data is not None and not data["_meta"]["hostvars"], str(done)


def test_policy_without_describe_instances(ec2: World) -> None:
    done = inventory_list(aws_env(ec2.endpoint, ec2.keys["no-describe-instances"]))[0]
    no_traceback(done)
    assert FAILED in done.stderr and "is not authorized to perform: ec2:DescribeInstances" in done.stderr, str(done)


def test_unreachable_endpoint(ec2: World) -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    done = inventory_list(aws_env(closed, ec2.keys["read-only"], ANSIBLE_INVENTORY_UNPARSED_FAILED="true"))[0]
    no_traceback(done)
    assert done.rc != 0, str(done)
    assert FAILED + f'Could not connect to the endpoint URL: "{closed}/"' in done.stderr, str(done)


# --- the playbooks with this inventory ----------------------------------------

def _site_phases() -> list[str]:
    """The phase playbooks site.yml imports, plus the GitOps-only ones."""
    site = (REPO_ROOT / "playbooks" / "site.yml").read_text(encoding="utf-8")
    phases = re.findall(r"import_playbook:\s*([\w-]+)\.yml", site)
    return phases + [p for p in ("gitops", "verify") if (REPO_ROOT / "playbooks" / f"{p}.yml").exists()]


PATTERN_HOSTS = {
    "k8s_cluster": NAMES,
    "k8s_control_plane": CONTROL_PLANE,
    "k8s_control_plane[0]": CONTROL_PLANE,
    "k8s_control_plane[1:]": set(),
    "k8s_workers": WORKERS,
}


def parse_list_hosts(stdout: str) -> list[tuple[str, set[str]]]:
    """(pattern, hosts) of every play in ``ansible-playbook --list-hosts`` output."""
    plays: list[tuple[str, set[str]]] = []
    expected = 0
    for line in stdout.splitlines():
        if m := re.match(r"\s+pattern: \['(.*?)'\]$", line):
            plays.append((m.group(1), set()))
        elif m := re.match(r"\s+hosts \((\d+)\):$", line):
            expected = int(m.group(1))
        elif plays and re.match(r"\s{6,}\S+$", line):
            plays[-1][1].add(line.strip())
        elif re.match(r"\s+play #\d+ ", line) and plays:
            assert len(plays[-1][1]) == expected, stdout
    assert not plays or len(plays[-1][1]) == expected, stdout
    return plays


def test_site_syntax_check(reader_env: dict[str, str]) -> None:
    done = run([str(VENV_BIN / "ansible-playbook"), "ecoeco.gitops.site", "-i", str(INVENTORY),
                "--syntax-check"], reader_env, timeout=300)
    assert done.rc == 0, str(done)
    assert "Failed to parse" not in done.stderr, str(done)


@pytest.mark.parametrize("phase", _site_phases())
def test_phase_list_hosts(reader_env: dict[str, str], phase: str) -> None:
    done = run([str(VENV_BIN / "ansible-playbook"), f"ecoeco.gitops.{phase}", "-i", str(INVENTORY),
                "--list-hosts"], reader_env, timeout=300)
    assert done.rc == 0, str(done)
    plays = parse_list_hosts(done.stdout)
    assert plays, str(done)
    for pattern, hosts in plays:
        assert pattern in PATTERN_HOSTS, f"{phase}: new host pattern {pattern!r}: add its expected hosts"
        assert hosts == PATTERN_HOSTS[pattern], f"{phase}: {pattern}"
