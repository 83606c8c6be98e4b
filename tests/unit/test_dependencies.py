"""The AWS SDK in the venv is the real one (pip once resolved boto3 to the 0.0.x placeholder).

requirements/constraints.txt pins boto3/botocore 1.44.*; these tests fail when
a resolver picks something else, before the EC2 inventory fails in odder ways.
"""

from __future__ import annotations

from importlib import metadata


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


def test_the_ec2_inventory_plugin_is_bundled() -> None:
    from ansible_collections.amazon.aws.plugins.inventory import aws_ec2  # noqa: F401  (import is the test)

    version = metadata.version("ansible")
    assert _release(version) >= (12,), version
