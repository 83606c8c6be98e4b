"""A real EC2 API on loopback (moto_server) holding the seed cluster's 14 instances.

``MotoServer`` starts ``moto_server`` from the venv on a free 127.0.0.1 port and
stops it by PID. ``build_world`` creates, through boto3, what Terraform would:
a VPC, a subnet, the seed cluster's instances with the tags the inventory reads
(docs/aws-inventory.md), plus instances the inventory must leave out, and IAM
users whose keys the tests use. It then turns on moto's IAM enforcement, so
from that point credentials and policies are checked like AWS does.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.localcluster.ansible import VENV_BIN, ansible_env
from tools.localcluster.versions import REPO_ROOT

REGION = "ap-northeast-2"
CLUSTER = "ecoeco"
OTHER_CLUSTER = "ecoeco-staging"
INVENTORY = REPO_ROOT / "inventories" / "aws" / "aws_ec2.yml"
DOC = REPO_ROOT / "docs" / "aws-inventory.md"


@dataclass(frozen=True)
class Node:
    """One machine of the seed cluster and the tags Terraform gives it."""

    name: str
    role: str
    workload: str | None = None
    extra_tags: tuple[tuple[str, str], ...] = ()

    def tags(self, cluster: str = CLUSTER) -> list[dict[str, str]]:
        tags = {"Name": self.name, "Cluster": cluster}
        if self.role:
            tags["Role"] = self.role
        if self.workload:
            tags["Workload"] = self.workload
        tags.update(dict(self.extra_tags))
        return [{"Key": k, "Value": v} for k, v in tags.items()]


# The seed cluster as inventories/example/ declares it (seeds:
# namespaces-and-node-placement.md, gitops-architecture.md): one control plane,
# the sync-API worker and the seven API nodes, the async worker, and the
# dedicated data, messaging and monitoring nodes (tainted PreferNoSchedule).
def _api(name: str) -> Node:
    return Node(f"k8s-api-{name}", "worker", "application", (("NodeLabel/node-role", name),))


def _dedicated(name: str, workload: str) -> Node:
    return Node(name, "worker", workload, (("NodeTaints", f"dedicated={workload}:PreferNoSchedule"),))


SEED_NODES: tuple[Node, ...] = (
    Node("k8s-master", "control-plane", "control-plane"),
    Node("k8s-worker-1", "worker", "application"),
    *(_api(name) for name in ("auth", "scan", "chat", "mypage", "location", "info", "character")),
    Node("k8s-worker-2", "worker", "async-workers"),
    _dedicated("k8s-postgresql", "database"),
    _dedicated("k8s-redis", "cache"),
    _dedicated("k8s-rabbitmq", "message-queue"),
    _dedicated("k8s-monitoring", "monitoring"),
)

# The other cluster's only machine: it carries the optional label/taint tags.
STAGING_NODE = Node("staging-master", "control-plane", extra_tags=(
    ("NodeLabel/node-role.kubernetes.io/edge", ""),
    ("NodeLabel/topology.ecoeco.io/zone", "a"),
    ("NodeTaints", "dedicated=control:NoSchedule, gpu:NoExecute"),
))

# Clusters of one machine each, for the error paths: no Role tag, a malformed NodeTaints tag.
UNTAGGED_CLUSTER, UNTAGGED_NODE = "ecoeco-untagged", Node("mystery", "")
BAD_TAINT_CLUSTER, BAD_TAINT_NODE = "ecoeco-bad-taint", Node("bad-taint", "worker", "database", (
    ("NodeTaints", "dedicated=db:Sometimes, gpu:NoExecute, two words:NoSchedule"),))

# Workload tag value -> the inventory group the playbooks use.
WORKLOAD_GROUPS = {
    "application": "api",
    "async-workers": "async_workers",
    "database": "database",
    "cache": "cache",
    "message-queue": "message_queue",
    "monitoring": "monitoring",
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MotoServer:
    """``moto_server`` on 127.0.0.1, started and stopped by PID."""

    def __init__(self, log_path: Path, startup_timeout: float = 60.0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "MotoServer":
        env = dict(os.environ, NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
        env.pop("INITIAL_NO_AUTH_ACTION_COUNT", None)  # unauthenticated until build_world enforces IAM
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto_server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/moto-api/data.json", timeout=2):
                    return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"moto_server did not answer within {self.startup_timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-4000:]

    def enforce_iam(self) -> None:
        """From now on every request needs valid keys whose policy allows the action."""
        req = urllib.request.Request(f"{self.url}/moto-api/reset-auth", data=b"0", method="POST",
                                     headers={"Content-Type": "text/plain"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            json.loads(resp.read())

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


@dataclass
class Keys:
    access_key_id: str
    secret_access_key: str


@dataclass
class World:
    """What build_world made: addresses by instance name and keys by IAM user."""

    endpoint: str
    private_ip: dict[str, str] = field(default_factory=dict)
    public_ip: dict[str, str] = field(default_factory=dict)
    excluded: dict[str, str] = field(default_factory=dict)  # name -> why
    keys: dict[str, Keys] = field(default_factory=dict)


def documented_policies() -> dict[str, dict[str, Any]]:
    """The IAM policies docs/aws-inventory.md shows, by the name in the ```json fence's comment line."""
    text = DOC.read_text(encoding="utf-8")
    found = {}
    for name, body in re.findall(r"<!-- policy: ([\w-]+) -->\s*```json\n(.*?)```", text, re.S):
        found[name] = json.loads(body)
    return found


def _client(service: str, endpoint: str, region: str = REGION) -> Any:
    import boto3  # imported here: collecting the tests must not need boto3

    return boto3.client(service, region_name=region, endpoint_url=endpoint,
                        aws_access_key_id="setup", aws_secret_access_key="setup")


def _run(ec2: Any, image: str, subnet: str, tags: list[dict[str, str]], public: bool) -> dict[str, Any]:
    resp = ec2.run_instances(
        ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.medium",
        NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": subnet, "AssociatePublicIpAddress": public}],
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}])
    return resp["Instances"][0]


def build_world(server: MotoServer) -> World:
    """Create the VPC, the instances and the IAM users, then enforce IAM."""
    world = World(endpoint=server.url)
    ec2 = _client("ec2", server.url)
    image = ec2.describe_images()["Images"][0]["ImageId"]
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.1.0/24",
                               AvailabilityZone=f"{REGION}a")["Subnet"]["SubnetId"]
    for node in SEED_NODES:
        inst = _run(ec2, image, subnet, node.tags(), public=True)
        world.private_ip[node.name] = inst["PrivateIpAddress"]
    # Left out: a stopped member of the cluster, and another cluster's machine
    # (which has no public IP: the "public" address mode must say so).
    stopped = _run(ec2, image, subnet, Node("k8s-api-old", "worker", "application").tags(), public=True)
    ec2.stop_instances(InstanceIds=[stopped["InstanceId"]])
    world.excluded["k8s-api-old"] = "stopped"
    _run(ec2, image, subnet, STAGING_NODE.tags(OTHER_CLUSTER), public=False)
    world.excluded["staging-master"] = f"Cluster={OTHER_CLUSTER}"
    for cluster, node in ((UNTAGGED_CLUSTER, UNTAGGED_NODE), (BAD_TAINT_CLUSTER, BAD_TAINT_NODE)):
        _run(ec2, image, subnet, node.tags(cluster), public=False)
        world.excluded[node.name] = f"Cluster={cluster}"

    for res in ec2.describe_instances()["Reservations"]:
        for inst in res["Instances"]:
            name = {t["Key"]: t["Value"] for t in inst.get("Tags", [])}.get("Name")
            if inst.get("PublicIpAddress"):
                world.public_ip[name] = inst["PublicIpAddress"]

    iam = _client("iam", server.url, region="us-east-1")
    policies = documented_policies()
    policies["no-describe-instances"] = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["ec2:DescribeRegions"], "Resource": "*"}],
    }
    for name, document in policies.items():
        iam.create_user(UserName=f"inventory-{name}")
        arn = iam.create_policy(PolicyName=f"inventory-{name}",
                                PolicyDocument=json.dumps(document))["Policy"]["Arn"]
        iam.attach_user_policy(UserName=f"inventory-{name}", PolicyArn=arn)
        key = iam.create_access_key(UserName=f"inventory-{name}")["AccessKey"]
        world.keys[name] = Keys(key["AccessKeyId"], key["SecretAccessKey"])
    server.enforce_iam()
    return world


def aws_env(endpoint: str, keys: Keys, **extra: str) -> dict[str, str]:
    """Environment for ansible commands: the moto endpoint, these keys, nothing from ~/.aws, no IMDS."""
    env = ansible_env({
        "AWS_URL": endpoint,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": keys.access_key_id,
        "AWS_SECRET_ACCESS_KEY": keys.secret_access_key,
        # Never look for instance-profile credentials (169.254.169.254) or ~/.aws.
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        **extra,
    })
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
                 "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_EC2", "ECOECO_CLUSTER"):
        if name not in extra:
            env.pop(name, None)
    return env


@dataclass
class Completed:
    rc: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return f"rc={self.rc}\n--- stdout ---\n{self.stdout[-4000:]}\n--- stderr ---\n{self.stderr[-4000:]}"


def run(cmd: list[str], env: dict[str, str], timeout: float = 120) -> Completed:
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    return Completed(proc.returncode, proc.stdout, proc.stderr)


def unwrap(value: Any) -> Any:
    """Drop the ``{"__ansible_unsafe": ...}`` wrappers ansible-inventory --list puts on untrusted strings."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def inventory_list(env: dict[str, str], *args: str) -> tuple[Completed, dict[str, Any] | None]:
    """``ansible-inventory -i inventories/aws/aws_ec2.yml --list``; the parsed JSON when rc is 0."""
    done = run([str(VENV_BIN / "ansible-inventory"), "-i", str(INVENTORY), "--list", *args], env)
    data = unwrap(json.loads(done.stdout)) if done.rc == 0 and done.stdout.strip() else None
    return done, data
