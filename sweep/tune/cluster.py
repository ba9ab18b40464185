"""Starting or joining Ray, and checking that a multi-node sweep's storage is really shared."""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

from resnetx.errors import ConfigError

REMOTE_SCHEMES = ("s3://", "gs://", "gcs://", "abfs://", "az://", "hdfs://", "file://")


def init_ray(address: str | None, num_cpus: int | None = None, env: dict[str, str] | None = None) -> bool:
    """Join ``address`` (HOST:PORT or ``auto``) or start a local runtime in-process.

    Returns True when this call connected (so the caller should ``ray.shutdown()`` at the end),
    False when Ray was already initialised by the caller's program.
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    if ray.is_initialized():
        return False
    kwargs = dict(include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False,
                  configure_logging=True, runtime_env={"env_vars": dict(env or {})})
    os.environ.update(env or {})  # a local runtime's workers inherit the driver's environment
    if address:
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ConfigError("--address", address, f"could not join the Ray cluster ({message}); "
                              "is `ray start --head` running there, with the same RAY_AUTH_MODE?") from None
    else:
        ray.init(num_cpus=num_cpus, **kwargs)
    return True


def alive_nodes() -> list[dict]:
    import ray

    return [n for n in ray.nodes() if n.get("Alive")]


def is_remote_uri(path: str) -> bool:
    return path.startswith(REMOTE_SCHEMES) and not path.startswith("file://")


def check_shared_storage(storage_path: str) -> None:
    """Fail early when a multi-node sweep is given a path that not every node can see.

    A marker file is written on the driver and every other node is asked, by a tiny task
    pinned to it, whether it sees the same file. Object-store URIs (s3://, gs://...) pass.
    """
    nodes = alive_nodes()
    if len(nodes) <= 1 or is_remote_uri(storage_path):
        return
    folder = Path(storage_path.removeprefix("file://"))
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / f".resnetx-shared-{uuid.uuid4().hex}"
    marker.write_text("ok")
    try:
        missing = [n["NodeManagerAddress"] for n, seen in zip(nodes, _probe(nodes, str(marker))) if not seen]
    finally:
        marker.unlink(missing_ok=True)
    if missing:
        raise ConfigError("--storage-path", storage_path,
                          f"is node-local: not visible from node(s) {', '.join(sorted(set(missing)))}; "
                          "a multi-node sweep needs shared storage (an NFS mount on every node, or s3:// / gs://)")


def _probe(nodes: list[dict], marker: str) -> list[bool]:
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    @ray.remote(num_cpus=0)
    def sees(path: str) -> bool:
        return os.path.exists(path)

    refs = [sees.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote(marker)
            for n in nodes]
    return list(ray.get(refs, timeout=120))


def cluster_slots(cpus_per_trial: float, gpus_per_trial: float) -> int:
    """How many trials the cluster can run at once with these per-trial resources."""
    import ray

    resources = ray.cluster_resources()
    slots = int(resources.get("CPU", 0) / cpus_per_trial + 1e-9)  # 1 / 0.2 is 5 slots, not 1 // 0.2 == 4
    if gpus_per_trial > 0:
        slots = min(slots, int(resources.get("GPU", 0) / gpus_per_trial + 1e-9))
    if slots < 1:  # Tune would wait forever for resources that never come
        have = f"{resources.get('CPU', 0):g} CPUs, {resources.get('GPU', 0):g} GPUs"
        raise ConfigError("--cpus-per-trial/--gpus-per-trial", f"{cpus_per_trial:g}/{gpus_per_trial:g}",
                          f"no trial fits on this cluster ({have})")
    return slots
