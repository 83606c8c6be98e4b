# -*- coding: utf-8 -*-
# Copyright (c) ecoeco.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Kubernetes name, label and duration syntax checks.

Each check returns an error string (empty when the value is valid) so the
caller can name the option or object in the message it raises.
"""

from __future__ import annotations

import math
import re
from typing import Any

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
# Go time.ParseDuration units, as Argo CD parses retry backoff durations.
_GO_DURATION = re.compile(r"^([0-9]+(\.[0-9]+)?(ns|us|\u00b5s|ms|s|m|h))+$")


def dns1123_label_error(value: str) -> str:
    """Why ``value`` is not a DNS-1123 label (namespace names), or ''."""
    if not value:
        return "must not be empty"
    if len(value) > 63:
        return f"'{value}' is longer than 63 characters"
    if not _DNS1123_LABEL.match(value):
        return (f"'{value}' is not a valid DNS-1123 label (lower case alphanumerics and '-', "
                "starting and ending with an alphanumeric)")
    return ""


def dns1123_subdomain_error(value: str) -> str:
    """Why ``value`` is not a DNS-1123 subdomain (object names, node names), or ''."""
    if not value:
        return "must not be empty"
    if len(value) > 253:
        return f"'{value}' is longer than 253 characters"
    if not _DNS1123_SUBDOMAIN.match(value):
        return (f"'{value}' is not a valid DNS-1123 subdomain (lower case alphanumerics, '-' and '.', "
                "starting and ending with an alphanumeric)")
    return ""


def qualified_name_error(key: str) -> str:
    """Why ``key`` is not a valid label/annotation/taint key ([prefix/]name), or ''."""
    if not isinstance(key, str) or not key:
        return "key must be a non-empty string"
    prefix, slash, name = key.rpartition("/")
    if slash:
        if not prefix:
            return f"key '{key}': prefix before '/' must not be empty"
        err = dns1123_subdomain_error(prefix)
        if err:
            return f"key '{key}': prefix {err}"
    if len(name) > 63:
        return f"key '{key}': name part is longer than 63 characters"
    if not _QUALIFIED_NAME.match(name):
        return (f"key '{key}': name part must consist of alphanumerics, '-', '_' or '.', "
                "starting and ending with an alphanumeric")
    return ""


def label_value_error(value: str) -> str:
    """Why ``value`` is not a valid label value, or ''."""
    if len(value) > 63:
        return f"value '{value}' is longer than 63 characters"
    if not _LABEL_VALUE.match(value):
        return (f"value '{value}' must be empty or consist of alphanumerics, '-', '_' or '.', "
                "starting and ending with an alphanumeric")
    return ""


def go_duration_error(value: str) -> str:
    """Why ``value`` is not a Go duration such as ``5s`` or ``1m30s``, or ''."""
    if not _GO_DURATION.match(value or ""):
        return f"'{value}' is not a duration such as 5s, 3m or 1h30m"
    return ""


def label_string(value: Any) -> str:
    """Render a YAML scalar as a label value: booleans lower case, numbers as written."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


def seconds_error(value: Any) -> str:
    """Why ``value`` is not a usable timeout (a finite number of seconds above 0), or ''."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"must be a number of seconds, got {value!r}"
    if not math.isfinite(value):
        return f"must be a finite number of seconds, got {value!r}"
    if value <= 0:
        return f"must be a positive number of seconds, got {value!r}"
    return ""
