# The image deploy/kuberay-rayjob.yaml runs on its head and workers: Ray 2.60.0 on Python 3.11
# (the project's Ray and Python) with this project installed. Build, tag and push it as
# docs/clusters.md section 5 says:
#   docker build -t REGISTRY/resnetx-sweeps:0.1.0-ray2.60.0 . && docker push REGISTRY/resnetx-sweeps:0.1.0-ray2.60.0
#
# The base's Ray version must equal the manifest's rayClusterSpec.rayVersion and fit pyproject's
# ray pin; tests/test_kuberay_manifest.py checks both. -gpu is the CUDA base for the GPU workers;
# rayproject/ray:2.60.0-py311 (no suffix: CPU) is enough for a CPU-only cluster.
FROM rayproject/ray:2.60.0-py311-gpu

# Empty: torch and torchvision come from PyPI (CUDA wheels). For a CPU-only image, about 2 GB smaller:
#   docker build --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu ...
ARG TORCH_INDEX_URL=""

ENV RAY_USAGE_STATS_ENABLED=0 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The base image's user is ray (uid 1000, group users = gid 100), its Python in /home/ray/anaconda3.
# The folder is made by that user (WORKDIR alone would make it root's, and pip builds in it).
RUN mkdir -p /home/ray/resnetx-sweeps
WORKDIR /home/ray/resnetx-sweeps
COPY --chown=1000:100 pyproject.toml README.md ./
COPY --chown=1000:100 resnetx ./resnetx
COPY --chown=1000:100 search_spaces ./search_spaces
COPY --chown=1000:100 sweep ./sweep
COPY --chown=1000:100 reports ./reports

# The constraint keeps the base's Ray (and its compiled parts) exactly as they are: pip only adds
# the ray[tune] extras and the project's other dependencies around it.
RUN python -c "import ray; print(f'ray=={ray.__version__}')" > /tmp/ray-constraint.txt \
    && if [ -n "$TORCH_INDEX_URL" ]; then \
           pip install --index-url "$TORCH_INDEX_URL" torch torchvision; \
       fi \
    && pip install -c /tmp/ray-constraint.txt . \
    && python -c "import ray, sweep, torch; print('ray', ray.__version__, 'torch', torch.__version__)" \
    && resnetx --help > /dev/null
