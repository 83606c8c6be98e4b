# ecoeco.gitops -- every target installs what it needs first.
#   make demo   local real cluster + Argo CD, GitOps stages of site.yml, wave report
#   make test   every test tier this machine can run
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV      := .venv
PY        := $(VENV)/bin/python
STAMP     := $(VENV)/.installed-$(shell cat requirements/lock.txt requirements/constraints.txt 2>/dev/null | sha256sum | cut -c1-12)
COLL_LINK := .collections/ansible_collections/ecoeco/gitops
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.collections
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
PYTEST    := $(PY) -m pytest
ARGS      ?=

.PHONY: help setup build test test-unit sanity test-versions lint pytest test-integration test-e2e \
        test-hooks test-aws test-molecule test-cluster test-day2 test-day2-api test-day2-cluster bench demo cluster-up cluster-down \
        changelog collection clean

help: ## list targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

$(STAMP): requirements/lock.txt requirements/constraints.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade 'pip>=25'
	$(PY) -m pip install -q -c requirements/constraints.txt -r requirements/lock.txt
	@rm -f $(VENV)/.installed-* && touch $@

$(COLL_LINK):
	@mkdir -p $(dir $(COLL_LINK)) && ln -sfn ../../.. $(COLL_LINK)

setup: $(STAMP) $(COLL_LINK) ## create .venv with pinned dependencies (fast when unchanged)

build: setup ## build the real control-plane binaries from Go modules (cached by version)
	$(PY) -m tools.localcluster.build

test: setup ## every tier this machine can run
	@bash tests/run-tiers.sh

test-unit: setup ## unit tests (fakes allowed only here)
	$(PYTEST) tests/unit $(ARGS)

sanity: setup ## ansible-test sanity + ansible-lint (production profile)
	@bash tests/sanity.sh

test-versions: setup ## ansible-core 2.17 and 2.21 (container): sanity, unit, one integration file each
	@bash tests/run-tiers.sh versions

lint: setup ## ansible-lint only
	$(VENV)/bin/ansible-lint --offline --profile production

pytest: setup ## pytest with ARGS="..."
	$(PYTEST) $(ARGS)

test-integration: setup ## real kube-apiserver + kwok nodes (marker controlplane; a fresh cluster per file)
	@bash tests/run-tiers.sh integration

test-e2e: setup ## real Argo CD controller + repo-server (marker argocd; a fresh cluster per file)
	@bash tests/run-tiers.sh e2e

test-hooks: setup ## PreSync/PostSync hook Job (marker hooks; a fresh cluster per file)
	@bash tests/run-tiers.sh hooks

test-aws: setup ## EC2 inventory against a moto EC2 API on loopback (marker aws)
	@bash tests/run-tiers.sh aws

test-molecule: setup ## molecule scenarios on podman systemd machines
	@bash tests/molecule.sh $(ARGS)

test-cluster: setup ## real kubeadm cluster in podman machines (marker cluster)
	$(PYTEST) -m cluster -s -p no:cacheprovider $(ARGS)

test-day2: test-day2-api test-day2-cluster ## day 2: the API-side files, then the podman kubeadm cluster

test-day2-api: setup ## day 2 (calico upgrade, k8s_drain, remove_node, upgrade) on the real API server
	@set -e; for f in calico_upgrade drain_module remove_node remove_node_cleanup upgrade_playbook; do \
	  $(PYTEST) -m controlplane tests/integration/test_$$f.py -q -p no:cacheprovider $(ARGS); done

test-day2-cluster: setup ## day 2 on a podman kubeadm cluster: join, remove_node, blocked drain, upgrade (marker day2)
	$(PYTEST) -m day2 tests/cluster/test_day2.py -s -p no:cacheprovider $(ARGS)

bench: setup ## benchmarks -> benchmarks/results/*.json
	$(PY) -m benchmarks $(ARGS)

demo: setup ## local real cluster + Argo CD, run the GitOps stages, print the wave report
	$(PY) -m tools.localcluster demo

cluster-up: setup ## start the local real cluster (kubeconfig in .cluster/kubeconfig)
	$(PY) -m tools.localcluster up $(ARGS)

cluster-down: setup ## stop the local cluster (by PID)
	$(PY) -m tools.localcluster down

changelog: setup ## render CHANGELOG.md from changelogs/fragments
	$(VENV)/bin/antsibull-changelog release --refresh

collection: setup ## build the collection tarball
	$(VENV)/bin/ansible-galaxy collection build --force

clean: ## remove build products of the repo (not the binary cache)
	rm -rf tests/output .pytest_cache *.tar.gz
