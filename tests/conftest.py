"""Shared pytest set-up. Keep it small: each fixture here is used by more than one test module."""

from __future__ import annotations

import pytest

from tests.support import register_standin

register_standin()  # --trainable synthetic for the in-process sweep tests (never in the shipped CLI)


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """One intra-op thread for the suite's tiny tensors.

    Measured on the 2-core CI machine while other jobs ran: a 2x3x32x32 forward+backward took
    3 ms with one thread and up to 2 s with two, the OpenMP workers spinning against the load.
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
