"""The AWS SDK in the venv is the real one (pip once resolved boto3 to the 0.0.x placeholder).

requirements/constraints.txt pins boto3/botocore 1.44.*; these tests fail when
a resolver picks something else, before the EC2 inventory fails in odder ways.
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import yaml
from packaging.specifiers import SpecifierSet


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".")[:3] if part.isdigit())


def test_botocore_is_a_real_release() -> None:
    import botocore

    assert botocore.__version__ == metadata.version("botocore")
    assert _release(botocore.__version__) >= (1, 44), botocore.__version__


def test_botocore_has_its_service_models() -> None:
    import botocore.session

    model = botocore.session.get_session().get_service_model("ec2")
    assert "DescribeInstances" in model.operation_names


def test_boto3_is_not_the_placeholder() -> None:
    import boto3

    assert boto3.__version__ == metadata.version("boto3")
    assert _release(boto3.__version__)[:2] != (0, 0), boto3.__version__
    assert _release(boto3.__version__) >= (1, 44), boto3.__version__
    assert boto3.session.Session(region_name="ap-northeast-2").region_name == "ap-northeast-2"


def test_the_ec2_inventory_plugin_is_installed_in_galaxy_ymls_range() -> None:
    """amazon.aws comes from the `ansible` package (requirements/lock.txt) or, on the other
    ansible-core versions tested, from tests/ansible-versions.sh: either way inside the
    range galaxy.yml declares."""
    from ansible_collections.amazon.aws.plugins.inventory import aws_ec2

    manifest = Path(aws_ec2.__file__).resolve().parents[2] / "MANIFEST.json"
    version = json.loads(manifest.read_text(encoding="utf-8"))["collection_info"]["version"]
    galaxy = yaml.safe_load((Path(__file__).resolve().parents[2] / "galaxy.yml").read_text(encoding="utf-8"))
    assert version in SpecifierSet(galaxy["dependencies"]["amazon.aws"]), version
