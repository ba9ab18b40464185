"""deploy/kuberay-rayjob.yaml would run: what KubeRay's API server and operator accept, and what the sweep needs.

No Kubernetes cluster is needed: the checks are the ones that decide, before any pod starts,
whether a RayJob is admitted and validated, done here on the file itself.

- The RayJob CRD's OpenAPI schema (KubeRay v1.5.2, vendored in tests/data/kuberay/ with its
  source), made strict about unknown fields as ``kubectl apply`` (field validation ``Strict``)
  is, so that a misspelt field fails here instead of being pruned silently by the API server.
- The operator's own rule for token auth (Go code, not in the CRD): ``rayVersion`` >= 2.52.0,
  ported line by line below, with the version parser it uses.
- One Ray version everywhere: the Dockerfile's base image, the manifest's ``rayVersion`` and
  pyproject's ``ray`` pin.
- The entrypoint, parsed by the real ``resnetx sweep`` parser and planned (no Ray started):
  CIFAR-10 is downloaded, onto the shared volume.
- Per-worker resources and per-trial resources run out together.
- docs/clusters.md's MLflow server accepts the manifest's tracking URI (MLflow's own host rule).
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import jsonschema
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "deploy" / "kuberay-rayjob.yaml"
DOCKERFILE = ROOT / "Dockerfile"
CLUSTERS_DOC = ROOT / "docs" / "clusters.md"
CRD = Path(__file__).resolve().parent / "data" / "kuberay" / "ray.io_rayjobs.yaml"
CRD_README = CRD.with_name("README.md")


# --- loading -------------------------------------------------------------------------------------
def load_manifest() -> dict[str, Any]:
    """A fresh copy each call, so a test can break it without touching the others'."""
    return yaml.safe_load(MANIFEST.read_text())


@functools.lru_cache(maxsize=1)
def _crd() -> dict[str, Any]:
    """The vendored CRD (1.3 MB: libyaml's loader when there is one, ~0.3 s here; pure Python is far slower)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(CRD.read_text(), Loader=loader)  # a safe loader either way


def strict(schema: Any) -> Any:
    """``schema`` with ``additionalProperties: false`` wherever the API server would prune.

    A structural CRD schema lists every known field; an unknown one is pruned by the API server
    and refused by ``kubectl apply``'s default strict field validation. JSON Schema allows it
    unless told otherwise, so every object with ``properties`` and no ``additionalProperties``
    or ``x-kubernetes-preserve-unknown-fields`` is closed here.
    """
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: strict(value) for key, value in schema.items()}
    if "properties" in schema:
        out["properties"] = {name: strict(sub) for name, sub in schema["properties"].items()}
        if "additionalProperties" not in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    return out


@functools.lru_cache(maxsize=4)
def crd_validator(api_version: str) -> jsonschema.protocols.Validator:
    """The strict validator of the CRD version named by a manifest's ``apiVersion`` (``ray.io/v1``)."""
    crd = _crd()
    group, _, version = api_version.partition("/")
    assert group == crd["spec"]["group"], f"apiVersion {api_version!r}: the CRD is for group {crd['spec']['group']}"
    served = {v["name"]: v for v in crd["spec"]["versions"] if v.get("served")}
    assert version in served, f"apiVersion {api_version!r}: the CRD serves {sorted(served)}"
    return jsonschema.Draft7Validator(strict(served[version]["schema"]["openAPIV3Schema"]))


def schema_errors(manifest: dict[str, Any]) -> list[str]:
    """What the API server would refuse in ``manifest``, one line each (empty: admitted)."""
    kind = _crd()["spec"]["names"]["kind"]
    if manifest.get("kind") != kind:
        return [f"$.kind: {manifest.get('kind')!r} is not {kind!r}"]
    validator = crd_validator(manifest["apiVersion"])
    return sorted(f"{e.json_path}: {e.message[:200]}" for e in validator.iter_errors(manifest))


# --- the operator's rayVersion rule ---------------------------------------------------------------
# KubeRay v1.5.2, ray-operator/controllers/ray/utils/validation.go, ValidateRayClusterSpec lines
# 194-210 (the same rule at v1.7.0), called for a RayJob from ValidateRayJobSpec; a failure sets
# the job's JobDeploymentStatus to ValidationFailed (rayjob_controller.go:151):
#     if IsAuthEnabled(spec) {                   // util.go: AuthOptions != nil && Mode == "token"
#         if spec.RayVersion == "" { return "... RayVersion was not specified ..." }
#         rayVersion, err := version.ParseGeneric(spec.RayVersion)
#         if err != nil { return "... RayVersion format is invalid ..." }
#         if rayVersion.LessThan(version.MustParseGeneric("2.52.0")) { return "... minimum ... 2.52.0 ..." }
#     }
# version is k8s.io/apimachinery/pkg/util/version (v0.34.1 in KubeRay's go.mod), ported below.
MIN_TOKEN_RAY = "2.52.0"
# versionMatchRE of apimachinery's version.go; Go's \s is [\t\n\f\r ], its $ (no m flag) is \Z
# and its . does not match a newline.
_GENERIC = re.compile(r"[\t\n\f\r ]*v?([0-9]+(?:\.[0-9]+)*)(.*)\Z")


def parse_generic(text: str) -> tuple[int, ...]:
    """apimachinery's ``ParseGeneric``: two or more dot-separated numbers, the rest ignored.

    ``v2.60.0``, ``2.52`` and ``2.52.0rc1`` parse (the last as 2.52.0: a generic version keeps
    no pre-release); ``2``, ``latest`` and ``02.60`` do not (ValueError, Go's error text).
    """
    match = _GENERIC.match(text)
    if match is None:
        raise ValueError(f"could not parse {text!r} as version")
    components = match.group(1).split(".")
    if len(components) < 2:
        raise ValueError(f"illegal version string {text!r}")
    if components[0].startswith("0") and components[0] != "0":
        raise ValueError(f"illegal zero-prefixed version component {components[0]!r} in {text!r}")
    numbers = tuple(int(c) for c in components)
    if any(n >= 2**64 for n in numbers):  # strconv.ParseUint(comp, 10, 0) on a 64-bit operator
        raise ValueError(f"illegal non-numeric version component in {text!r}: value out of range")
    return numbers


def version_less(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    """``LessThan`` of two generic versions: missing trailing components count as zeros."""
    width = max(len(a), len(b))
    return a + (0,) * (width - len(a)) < b + (0,) * (width - len(b))


def token_auth_error(cluster_spec: dict[str, Any]) -> str | None:
    """The operator's error for this ``rayClusterSpec`` under token auth, word for word; None: accepted."""
    if (cluster_spec.get("authOptions") or {}).get("mode") != "token":
        return None
    ray_version = cluster_spec.get("rayVersion", "")
    if not isinstance(ray_version, str):  # the CRD schema refuses it first (type: string)
        return f"rayVersion {ray_version!r} is not a string"
    if ray_version == "":
        return ("authOptions.mode is 'token' but RayVersion was not specified. "
                f"Ray version {MIN_TOKEN_RAY} or later is required")
    try:
        parsed = parse_generic(ray_version)
    except ValueError as exc:
        return f"authOptions.mode is 'token' but RayVersion format is invalid: {ray_version}, {exc}"
    if version_less(parsed, parse_generic(MIN_TOKEN_RAY)):
        return f"authOptions.mode is 'token' but minimum Ray version is {MIN_TOKEN_RAY}, got {ray_version}"
    return None


# --- the image, the project, the entrypoint, resources ------------------------------------------
_FROM = re.compile(r"^FROM\s+rayproject/ray:(?P<ray>\d+\.\d+\.\d+)-py(?P<py>3\d+)(?:-(?P<platform>\S+))?\s*$",
                   re.MULTILINE)


def dockerfile_base(text: str) -> tuple[str, str]:
    """(Ray version, Python version) of the one ``FROM rayproject/ray:X.Y.Z-pyNNN[-platform]`` line."""
    froms = [line for line in text.splitlines() if line.upper().startswith("FROM ")]
    assert len(froms) == 1, f"expected one FROM line, got {froms}"
    match = _FROM.match(froms[0])
    assert match, f"{froms[0]!r}: expected FROM rayproject/ray:X.Y.Z-pyNNN[-platform] (a pinned Ray and Python)"
    return match["ray"], f"3.{match['py'][1:]}"


def pyproject() -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def ray_requirement() -> Requirement:
    """pyproject's ``ray[...]`` dependency."""
    rays = [Requirement(d) for d in pyproject()["project"]["dependencies"] if Requirement(d).name == "ray"]
    assert len(rays) == 1, rays
    return rays[0]


def containers(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The Ray container (KubeRay's index 0) of the head and of each worker group, by group name."""
    spec = manifest["spec"]["rayClusterSpec"]
    groups = {"head": spec["headGroupSpec"], **{g["groupName"]: g for g in spec.get("workerGroupSpecs", [])}}
    return {name: group["template"]["spec"]["containers"][0] for name, group in groups.items()}


def kube_count(quantity: Any) -> int:
    """A CPU/GPU quantity as KubeRay passes it to ``ray start`` (``Quantity.Value()``: rounded up)."""
    text = str(quantity)
    return math.ceil(int(text[:-1]) / 1000) if text.endswith("m") else math.ceil(float(text))


def ray_resources(group: dict[str, Any]) -> tuple[int, int]:
    """(CPUs, GPUs) Ray advertises on one pod of ``group``.

    KubeRay v1.5.2 common/pod.go: rayStartParams' num-cpus, else the CPU limit, else the request
    (generateRayStartCommand); num-gpus, else the ``nvidia.com/gpu`` limit.
    """
    params = group.get("rayStartParams") or {}
    resources = group["template"]["spec"]["containers"][0].get("resources", {})
    limits, requests = resources.get("limits", {}), resources.get("requests", {})
    cpus = params.get("num-cpus", limits.get("cpu", requests.get("cpu", 0)))
    gpus = params.get("num-gpus", limits.get("nvidia.com/gpu", 0))
    return kube_count(cpus), kube_count(gpus)


def trial_slots(cpus: float, gpus: float, cpus_per_trial: float, gpus_per_trial: float) -> tuple[int, float]:
    """(trials the CPUs allow, trials the GPUs allow) on one node; the node runs the smaller."""
    by_gpu = int(gpus / gpus_per_trial + 1e-9) if gpus_per_trial > 0 else math.inf
    return int(cpus / cpus_per_trial + 1e-9), by_gpu


def entrypoint_argv(manifest: dict[str, Any]) -> list[str]:
    argv = shlex.split(manifest["spec"]["entrypoint"])
    assert argv[:2] == ["resnetx", "sweep"], argv[:2]
    return argv


@functools.lru_cache(maxsize=1)
def entrypoint_plan() -> Any:
    """The sweep the manifest's entrypoint would run, through the real parser and planner (no Ray)."""
    from sweep.cli.main import build_parser
    from sweep.cli.sweep import settings_from_args
    from sweep.tune.runner import plan_sweep

    args = build_parser().parse_args(entrypoint_argv(load_manifest())[1:])
    return plan_sweep(settings_from_args(args))


def mlflow_server_commands(markdown: str) -> list[list[str]]:
    """Every ``mlflow server`` command in the fenced shell blocks of ``markdown``, as argv."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", markdown, re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            argv = shlex.split(line, comments=True)
            if "mlflow" in argv and argv[argv.index("mlflow") + 1:][:1] == ["server"]:
                commands.append(argv)
    return commands


def option(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


# --- the CRD schema -------------------------------------------------------------------------------
def test_vendored_crd_is_the_one_its_readme_names():
    recorded = re.search(r"sha256: `([0-9a-f]{64})`", CRD_README.read_text())
    assert recorded, "tests/data/kuberay/README.md must record the CRD's sha256"
    assert hashlib.sha256(CRD.read_bytes()).hexdigest() == recorded.group(1)


def test_manifest_passes_the_rayjob_crd_schema():
    assert schema_errors(load_manifest()) == []


@pytest.mark.parametrize(("path", "value", "expected"), [
    (("spec", "entryPoint"), "resnetx sweep", "'entryPoint' was unexpected"),  # a misspelt field
    (("spec", "rayClusterSpec", "workerGroupSpecs", 0, "replicas"), "two", "is not of type 'integer'"),
    (("spec", "rayClusterSpec", "rayVersion"), 2.6, "is not of type 'string'"),  # unquoted rayVersion: 2.60
    (("spec", "rayClusterSpec", "authOptions", "mode"), "tokens", "is not one of ['disabled', 'token']"),
    (("spec", "rayClusterSpec", "headGroupSpec", "template", "spec", "containers", 0, "imag"), "x",
     "'imag' was unexpected"),
])
def test_schema_refuses_a_broken_manifest(path: tuple, value: Any, expected: str):
    manifest = load_manifest()
    node = manifest
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    errors = schema_errors(manifest)
    assert any(expected in e for e in errors), errors


def test_schema_refuses_a_container_without_its_required_name():
    manifest = load_manifest()
    del containers(manifest)["gpu"]["name"]
    assert any("'name' is a required property" in e for e in schema_errors(manifest))


# --- the operator's rayVersion rule under token auth ----------------------------------------------
def test_manifest_uses_token_auth_and_passes_the_operators_ray_version_rule():
    spec = load_manifest()["spec"]["rayClusterSpec"]
    assert spec["authOptions"]["mode"] == "token"
    assert token_auth_error(spec) is None


@pytest.mark.parametrize(("text", "parsed"), [
    ("2.60.0", (2, 60, 0)), ("v2.52", (2, 52)), ("2.52.0rc1", (2, 52, 0)), (" 2.60.0 ", (2, 60, 0)),
    ("0.9", (0, 9)), ("2.052", (2, 52)),  # only the first component may not start with 0
])
def test_parse_generic_accepts_what_apimachinery_accepts(text: str, parsed: tuple[int, ...]):
    assert parse_generic(text) == parsed


@pytest.mark.parametrize(("text", "error"), [
    ("2", "illegal version string"), ("latest", "could not parse"), ("02.60.0", "zero-prefixed"),
    ("2.60.0\nx", "could not parse"), ("", "could not parse"),
])
def test_parse_generic_refuses_what_apimachinery_refuses(text: str, error: str):
    with pytest.raises(ValueError, match=error):
        parse_generic(text)


@pytest.mark.parametrize(("ray_version", "error"), [
    (None, "RayVersion was not specified"),  # removed: the manifest as it was
    ("", "RayVersion was not specified"),
    ("2.51.9", "minimum Ray version is 2.52.0, got 2.51.9"),
    ("2.6", "minimum Ray version is 2.52.0, got 2.6"),  # 2.6 < 2.52: numbers, not text
    ("latest", "RayVersion format is invalid: latest"),
    ("2", "RayVersion format is invalid: 2"),
    ("2.52", None), ("v2.52.0", None), ("2.52.0rc1", None), ("2.60.0", None), ("3.0", None),
])
def test_operator_rule_refuses_an_old_or_missing_ray_version_under_token_auth(ray_version: str | None,
                                                                               error: str | None):
    spec = load_manifest()["spec"]["rayClusterSpec"]
    spec.pop("rayVersion")
    if ray_version is not None:
        spec["rayVersion"] = ray_version
    got = token_auth_error(spec)
    assert (got is None) if error is None else (got is not None and error in got), got


def test_operator_rule_applies_to_token_auth_only():
    spec = load_manifest()["spec"]["rayClusterSpec"]
    spec.pop("rayVersion")
    spec["authOptions"]["mode"] = "disabled"
    assert token_auth_error(spec) is None
    spec.pop("authOptions")
    assert token_auth_error(spec) is None


# --- one Ray version: image, manifest, project ----------------------------------------------------
def test_dockerfile_base_ray_is_the_manifests_and_the_projects():
    ray, python = dockerfile_base(DOCKERFILE.read_text())
    manifest_ray = load_manifest()["spec"]["rayClusterSpec"]["rayVersion"]
    assert ray == manifest_ray, f"Dockerfile's base has Ray {ray}, the manifest says rayVersion {manifest_ray}"
    requirement = ray_requirement()
    assert requirement.specifier.contains(ray), f"Ray {ray} is outside pyproject's {requirement}"
    floors = [Version(s.version) for s in requirement.specifier if s.operator == ">="]
    assert floors == [Version(ray)], f"pyproject pins {requirement}: the image should run its Ray, {ray}"
    assert SpecifierSet(pyproject()["project"]["requires-python"]).contains(python), python


def test_dockerfile_base_parser_reads_the_tag_and_refuses_an_unpinned_one():
    assert dockerfile_base("FROM rayproject/ray:2.60.0-py311-gpu\n") == ("2.60.0", "3.11")
    assert dockerfile_base("FROM rayproject/ray:2.60.0-py310\n") == ("2.60.0", "3.10")
    with pytest.raises(AssertionError, match="pinned Ray"):
        dockerfile_base("FROM rayproject/ray:latest\n")


def test_head_and_workers_run_one_image_tagged_with_its_ray_version():
    manifest = load_manifest()
    images = {name: c["image"] for name, c in containers(manifest).items()}
    assert len(set(images.values())) == 1, images
    ray = manifest["spec"]["rayClusterSpec"]["rayVersion"]
    assert f"ray{ray}" in next(iter(images.values())).rpartition(":")[2], images


# --- the entrypoint -------------------------------------------------------------------------------
def test_entrypoint_downloads_cifar10_onto_the_shared_volume():
    manifest = load_manifest()
    plan = entrypoint_plan()
    mounts = [m["mountPath"] for m in containers(manifest)["head"]["volumeMounts"]]

    def shared(path: str | Path) -> bool:
        return any(Path(path).is_relative_to(m) for m in mounts)

    data = plan.example.data
    assert (data.name, data.download) == ("cifar10", True)
    assert data.root and shared(data.root), data.root
    assert shared(plan.storage_path) and shared(plan.runs_folder), (plan.storage_path, plan.runs_folder)
    assert plan.space.data_is_constant()  # so the driver loads it once, before the first trial


# --- resources ------------------------------------------------------------------------------------
def test_every_worker_runs_out_of_cpus_and_gpus_together():
    manifest = load_manifest()
    settings = entrypoint_plan().settings
    spec = manifest["spec"]["rayClusterSpec"]
    assert ray_resources(spec["headGroupSpec"])[0] == 0, "the head runs the driver, not trials"
    for group in spec["workerGroupSpecs"]:
        cpus, gpus = ray_resources(group)
        by_cpu, by_gpu = trial_slots(cpus, gpus, settings.cpus_per_trial, settings.gpus_per_trial)
        assert by_cpu == by_gpu >= 1, (f"worker {group['groupName']}: {cpus} CPUs / {settings.cpus_per_trial} = "
                                       f"{by_cpu} trials, {gpus} GPUs / {settings.gpus_per_trial} = {by_gpu}")
        resources = group["template"]["spec"]["containers"][0]["resources"]
        assert resources["requests"] == resources["limits"], "the pod must get all the CPUs Ray schedules on"


def test_resource_rule_catches_the_old_manifests_8_of_16_slots():
    assert trial_slots(16, 4, cpus_per_trial=2, gpus_per_trial=0.25) == (8, 16)
    assert ray_resources({"rayStartParams": {}, "template": {"spec": {"containers": [
        {"resources": {"limits": {"cpu": "16", "nvidia.com/gpu": "4"}}}]}}}) == (16, 4)
    assert kube_count("1500m") == 2


# --- MLflow: docs' server and the manifest's tracking URI -----------------------------------------
def test_docs_mlflow_server_accepts_the_manifests_tracking_uri():
    from mlflow.server.security_utils import get_default_allowed_hosts, is_allowed_host_header

    host = urlparse(entrypoint_plan().tracking_uri).netloc  # the Host header MLflow's client sends
    commands = mlflow_server_commands(CLUSTERS_DOC.read_text())
    assert commands, "docs/clusters.md shows no mlflow server command"
    for argv in commands:
        assert option(argv, "--host") == "0.0.0.0", f"unreachable from other machines and pods: {shlex.join(argv)}"
        assert option(argv, "--allowed-hosts"), f"MLflow >= 3.5 refuses other host names: {shlex.join(argv)}"
    allowing = [argv for argv in commands if is_allowed_host_header(option(argv, "--allowed-hosts").split(","), host)]
    assert allowing, f"no mlflow server command in docs/clusters.md allows Host {host!r}"
    assert not is_allowed_host_header(get_default_allowed_hosts(), host), "then --allowed-hosts would not be needed"


def test_docs_name_no_cluster_launcher_file_that_does_not_exist():
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text()
        for launcher in re.findall(r"ray (?:up|submit|down|attach|exec) (\S+\.ya?ml)", text):
            assert (ROOT / launcher).is_file(), f"{path.name} names {launcher}, which does not exist"
        assert not re.search(r"\bray submit\b", text), f"{path.name}: `ray submit` runs a Python script, not a sweep"
