"""Zero-cost proxies: scores of a network at initialisation, from one minibatch, without training.

Each function takes an ``nn.Module`` (and, but for synflow, a batch) and returns one float,
larger meaning "predicted better" as in its paper. None of them changes the module it is given:
each works on a deep copy (synflow flips signs and casts to double; the others run the copy in
training mode, so its batch-norm layers use batch statistics, as the reference implementations
do, and the original's running statistics stay untouched).

- :func:`synflow`: Tanaka et al. 2020, arXiv 2006.05467; as a NAS proxy, Abdelfattah et al. 2021.
- :func:`grad_norm`: Abdelfattah et al. 2021, "Zero-Cost Proxies for Lightweight NAS", arXiv 2101.08134.
- :func:`naswot`: Mellor et al. 2021, "Neural Architecture Search without Training", arXiv 2006.04647 (v2+).
- :func:`jacob_cov`: Mellor et al. 2020, arXiv 2006.04647v1 (the Jacobian-covariance score).

Pure torch (numpy-free), so it lives in the model library; bench/zero_cost.py applies it to the
recorded benchmarks.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

JACOB_COV_K = 1e-5  # the constant of Mellor et al.'s v1 score (and of Abdelfattah et al.'s code)


def _layer_weights(model: nn.Module) -> list[Tensor]:
    """The weights of the conv and linear layers, what the proxies of Abdelfattah et al. score."""
    return [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def synflow(model: nn.Module, input_shape: tuple[int, ...]) -> float:
    """Synaptic flow of the network (Tanaka et al. 2020, "Pruning neural networks without any data
    by iteratively conserving synaptic flow", arXiv 2006.05467; used as a NAS proxy by Abdelfattah
    et al. 2021, arXiv 2101.08134).

    Every parameter and buffer is replaced by its absolute value, the network runs in double
    precision and in eval mode (batch norm at initialisation is then a positive per-channel scale,
    close to the "no batch norm" of Abdelfattah et al.) on one all-ones input of ``input_shape``
    (C, H, W), and ``R = sum(output)``. The score is ``sum(theta * dR/dtheta)`` over the weights of
    every conv and linear layer. For a bias-free linear chain each layer's sum equals ``R``, so the
    score is ``depth * R``. Double precision keeps the product of |weights| of these depths far
    from overflow (a float64 overflow would show as ``inf``).
    """
    net = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        for tensor in (*net.parameters(), *net.buffers()):
            if tensor.is_floating_point():
                tensor.abs_()
    net.zero_grad(set_to_none=True)
    device = next(net.parameters()).device
    ones = torch.ones((1, *input_shape), dtype=torch.float64, device=device)
    net(ones).sum().backward()
    total = torch.zeros((), dtype=torch.float64, device=device)
    for weight in _layer_weights(net):
        if weight.grad is not None:
            total += (weight.detach() * weight.grad).sum()
    return float(total)


def grad_norm(model: nn.Module, x: Tensor, y: Tensor) -> float:
    """Sum over conv and linear layers of the Euclidean norm of the gradient of the cross-entropy
    loss (mean over the batch) with respect to the layer's weight, at initialisation (Abdelfattah
    et al. 2021, "Zero-Cost Proxies for Lightweight NAS", ICLR, arXiv 2101.08134)."""
    net = copy.deepcopy(model).train()
    net.zero_grad(set_to_none=True)
    F.cross_entropy(net(x), y).backward()
    total = 0.0
    for weight in _layer_weights(net):
        if weight.grad is not None:
            total += float(weight.grad.norm())
    return total


def relu_codes(model: nn.Module, x: Tensor) -> Tensor:
    """Binary activation codes (N, N_A) of the batch: 1 where a ReLU's output is positive.

    Forward hooks on every ``nn.ReLU`` module, one code block per call (a module called twice in
    a forward, as the units' shared ``self.relu`` is, contributes two blocks), concatenated in call
    order. Training mode, as in Mellor et al.'s code."""
    net = copy.deepcopy(model).train()
    blocks: list[Tensor] = []

    def keep(_module: nn.Module, _inputs: object, output: Tensor) -> None:
        blocks.append((output.detach() > 0).flatten(1))

    handles = [m.register_forward_hook(keep) for m in net.modules() if isinstance(m, nn.ReLU)]
    try:
        with torch.no_grad():
            net(x)
    finally:
        for handle in handles:
            handle.remove()
    if not blocks:
        raise ValueError("naswot: the model has no nn.ReLU module to take activation codes from")
    return torch.cat(blocks, dim=1)


def hamming_kernel(codes: Tensor) -> Tensor:
    """``K_H[i, j] = N_A - hamming(c_i, c_j)``, the number of units on which codes i and j agree
    (Mellor et al. 2021, eq. 1), as ``c c^T + (1 - c)(1 - c)^T`` in float64."""
    c = codes.to(torch.float64)
    return c @ c.T + (1 - c) @ (1 - c).T


def naswot(model: nn.Module, x: Tensor) -> float:
    """``log |det K_H|`` of the binary ReLU-code kernel of one minibatch at initialisation
    (Mellor et al. 2021, "Neural Architecture Search without Training", ICML, arXiv 2006.04647):
    networks whose ReLUs separate the inputs into distinct linear regions score higher. ``-inf``
    when two inputs share a code (a singular kernel)."""
    _sign, logabsdet = torch.linalg.slogdet(hamming_kernel(relu_codes(model, x)))
    return float(logabsdet)


def input_jacobians(model: nn.Module, x: Tensor) -> Tensor:
    """(N, C*H*W): the gradient of the sum of the outputs with respect to each input, as in Mellor
    et al.'s v1 code (``y.backward(ones_like(y))``; in training mode batch norm couples the
    samples, which that code includes)."""
    net = copy.deepcopy(model).train()
    inputs = x.detach().clone().requires_grad_(True)
    out = net(inputs)
    (grad,) = torch.autograd.grad(out, inputs, torch.ones_like(out))
    return grad.detach().flatten(1)


def jacob_cov_score(jacobians: Tensor, k: float = JACOB_COV_K) -> float:
    """``-sum_i (log(v_i + k) + 1 / (v_i + k))`` over the eigenvalues ``v`` of the correlation
    matrix of the rows of ``jacobians`` (Mellor et al. 2020, arXiv 2006.04647v1): larger when the
    inputs' Jacobians are less correlated (the score's maximum, ``-N``, is at the identity, as
    ``log v + 1/v`` is smallest at ``v = 1``). NaN when a row is constant (no correlation)."""
    j = jacobians.to(torch.float64)
    j = j - j.mean(dim=1, keepdim=True)
    norms = j.norm(dim=1, keepdim=True)
    if bool((norms == 0).any()):
        return math.nan
    unit = j / norms
    values = torch.linalg.eigvalsh(unit @ unit.T)
    return float(-(torch.log(values + k) + 1.0 / (values + k)).sum())


def jacob_cov(model: nn.Module, x: Tensor) -> float:
    """The Jacobian-covariance score of Mellor et al. 2020 (arXiv 2006.04647v1) for one minibatch:
    :func:`jacob_cov_score` of :func:`input_jacobians`."""
    return jacob_cov_score(input_jacobians(model, x))


PROXIES = ("synflow", "grad_norm", "naswot", "jacob_cov")


def all_proxies(model: nn.Module, x: Tensor, y: Tensor) -> dict[str, float]:
    """Every proxy of this module for one network and one minibatch ``(x, y)``."""
    return {"synflow": synflow(model, tuple(x.shape[1:])), "grad_norm": grad_norm(model, x, y),
            "naswot": naswot(model, x), "jacob_cov": jacob_cov(model, x)}
