"""Every role documents and validates its variables in meta/argument_specs.yml.

For every role under roles/:
- meta/main.yml (galaxy_info) and meta/argument_specs.yml with a ``main`` entry point exist;
- every variable of defaults/main.yml is an option of the ``main`` entry point, carries the role
  prefix, and has the same default there (the spec is the single source of role docs) - except a
  default computed by Jinja for an option that is not a string: the spec's text describes it
  ("Default (computed) - ...") instead of a ``default`` of the wrong type;
- every option is typed and described, and a default has the option's type; required options have
  no default;
- every option ending in ``_version`` has the version pinned in versions.yml as its default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
ROLES = sorted(p.name for p in (REPO_ROOT / "roles").iterdir() if (p / "tasks").is_dir())
VERSIONS: dict[str, str] = yaml.safe_load((REPO_ROOT / "versions.yml").read_text(encoding="utf-8"))
# Option-name fragments that name a pinned component under another word.
VERSION_ALIASES = {"kubeadm": "kubernetes", "kubelet": "kubernetes", "kubectl": "kubernetes",
                   "kube": "kubernetes"}


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None


def specs(role: str) -> dict[str, Any]:
    data = load(REPO_ROOT / "roles" / role / "meta" / "argument_specs.yml")
    assert data and "argument_specs" in data, f"roles/{role}/meta/argument_specs.yml is missing or empty"
    return data["argument_specs"]


def defaults(role: str) -> dict[str, Any]:
    return load(REPO_ROOT / "roles" / role / "defaults" / "main.yml") or {}


COMPUTED = "Default (computed)"
# Python types a spec default may have, per argument_spec type.
TYPES: dict[str, tuple[type, ...]] = {"str": (str,), "path": (str,), "bool": (bool,), "int": (int,),
                                      "float": (float, int), "list": (list,), "dict": (dict,)}


def computed(value: Any) -> bool:
    """Whether a defaults/main.yml value is a Jinja expression (evaluated per host at run time)."""
    return isinstance(value, str) and "{{" in value


def text(description: str | list[str]) -> str:
    return " ".join(description) if isinstance(description, list) else description


def pinned_component(option: str) -> str | None:
    """The versions.yml key an option like ``calico_version`` pins, if any."""
    stem = option[: -len("_version")]
    matches = [key for key in VERSIONS if key in stem]
    if matches:
        return max(matches, key=len)
    for fragment, key in VERSION_ALIASES.items():
        if fragment in stem:
            return key
    return None


def test_roles_found() -> None:
    assert {"calico", "node_labels", "argocd", "app_of_apps"} <= set(ROLES)


@pytest.mark.parametrize("role", ROLES)
def test_role_has_galaxy_info_and_main_spec(role: str) -> None:
    meta = load(REPO_ROOT / "roles" / role / "meta" / "main.yml")
    assert meta and meta.get("galaxy_info"), f"roles/{role}/meta/main.yml lacks galaxy_info"
    assert "main" in specs(role), f"roles/{role}: no 'main' entry point in argument_specs"
    assert specs(role)["main"].get("short_description"), f"roles/{role}: main entry point lacks short_description"


@pytest.mark.parametrize("role", ROLES)
def test_every_default_is_specified_with_the_same_default(role: str) -> None:
    options = specs(role)["main"].get("options") or {}
    problems = []
    for name, value in defaults(role).items():
        if not name.startswith(role + "_"):
            problems.append(f"{name}: not prefixed with '{role}_'")
        elif name not in options:
            problems.append(f"{name}: in defaults/main.yml but not in argument_specs main")
        elif computed(value) and options[name].get("type", "str") != "str":
            if "default" in options[name]:
                problems.append(f"{name}: a Jinja default of a {options[name]['type']} option belongs in its "
                                f"description, not in 'default'")
            elif COMPUTED not in text(options[name]["description"]):
                problems.append(f"{name}: Jinja default in defaults/main.yml, but the description lacks "
                                f"'{COMPUTED} - ...'")
        elif "default" not in options[name]:
            problems.append(f"{name}: argument_specs gives no default (defaults/main.yml has {value!r})")
        elif options[name]["default"] != value:
            problems.append(f"{name}: argument_specs default {options[name]['default']!r} != defaults/main.yml {value!r}")
    assert not problems, f"roles/{role}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("role", ROLES)
def test_every_option_is_typed_and_described(role: str) -> None:
    problems = []

    def walk(options: dict[str, Any], where: str) -> None:
        for name, spec in (options or {}).items():
            if not spec.get("type"):
                problems.append(f"{where}{name}: no type")
            if not spec.get("description"):
                problems.append(f"{where}{name}: no description")
            if spec.get("required") and "default" in spec:
                problems.append(f"{where}{name}: required and defaulted")
            wanted = TYPES.get(spec.get("type", "str"))
            if wanted and spec.get("default") is not None and (
                    not isinstance(spec["default"], wanted) or (bool not in wanted and isinstance(spec["default"], bool))):
                problems.append(f"{where}{name}: default {spec['default']!r} is not a {spec['type']}")
            if spec.get("type") == "list" and not spec.get("elements"):
                problems.append(f"{where}{name}: list without elements")
            if spec.get("options"):
                walk(spec["options"], f"{where}{name}.")

    for entry, spec in specs(role).items():
        walk(spec.get("options") or {}, f"{entry}: ")
    assert not problems, f"roles/{role}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("role", ROLES)
def test_version_defaults_equal_versions_yml(role: str) -> None:
    problems = []
    for entry, spec in specs(role).items():
        for name, option in (spec.get("options") or {}).items():
            if not name.endswith("_version") or option.get("default") in (None, ""):
                continue
            component = pinned_component(name)
            if component is None:
                problems.append(f"{entry}: {name} pins a version that versions.yml does not know")
            elif option["default"] != VERSIONS[component]:
                problems.append(f"{entry}: {name} default {option['default']!r} != versions.yml "
                                f"{component}: {VERSIONS[component]!r}")
    for name, value in defaults(role).items():
        component = pinned_component(name) if name.endswith("_version") else None
        if component and value not in (None, "") and value != VERSIONS[component]:
            problems.append(f"defaults: {name} {value!r} != versions.yml {component}: {VERSIONS[component]!r}")
    assert not problems, f"roles/{role}:\n  " + "\n  ".join(problems)


def test_pinned_component_mapping() -> None:
    assert pinned_component("calico_version") == "calico"
    assert pinned_component("argocd_version") == "argocd"
    assert pinned_component("kubeadm_version") == "kubernetes"
    assert pinned_component("control_plane_kubernetes_version") == "kubernetes"
    assert pinned_component("containerd_cni_plugins_version") == "cni_plugins"
