"""resnetx.zero_cost: each proxy against a value worked out by hand or by an independent computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from resnetx import build_model
from resnetx import zero_cost as zc


def _linear_chain() -> nn.Sequential:
    first, second = nn.Linear(2, 2, bias=False), nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        first.weight.copy_(torch.tensor([[1.0, -2.0], [3.0, 4.0]]))
        second.weight.copy_(torch.tensor([[-1.0, 2.0]]))
    return nn.Sequential(first, nn.ReLU(), second)


def test_synflow_of_a_two_layer_linear_chain_worked_by_hand():
    # |W1| = [[1, 2], [3, 4]], |W2| = [1, 2], input ones: h = [3, 7], R = 1*3 + 2*7 = 17.
    # Layer 2: sum |W2| * dR/dW2 = sum |W2| * h = 17; layer 1: sum_ij |W1_ij| |W2_i| = 1+2+6+8 = 17.
    net = _linear_chain()
    assert zc.synflow(net, (2,)) == pytest.approx(34.0)
    # the caller's network keeps its signs and dtype
    assert net[0].weight[0, 1].item() == -2.0 and net[0].weight.dtype == torch.float32


def test_synflow_counts_conv_and_linear_weights_not_biases():
    net = _linear_chain()
    net[2] = nn.Linear(2, 1, bias=True)
    with torch.no_grad():
        net[2].weight.copy_(torch.tensor([[-1.0, 2.0]]))
        net[2].bias.fill_(-5.0)  # |b| = 5 adds to R (= 22) but is not itself scored
    # layer 2 scores sum |W2| h = 17, layer 1 still 17: the bias does not reach the weights' gradients
    assert zc.synflow(net, (2,)) == pytest.approx(34.0)


def test_grad_norm_of_one_zero_linear_layer_worked_by_hand():
    # W = 0: logits 0, softmax [.5, .5]; label 0: dL/dz = [-.5, .5]; x = [3, 4]:
    # dL/dW = [[-1.5, -2], [1.5, 2]], Frobenius norm sqrt(2 * (2.25 + 4)) = sqrt(12.5).
    net = nn.Linear(2, 2, bias=False)
    nn.init.zeros_(net.weight)
    x, y = torch.tensor([[3.0, 4.0]]), torch.tensor([0])
    assert zc.grad_norm(net, x, y) == pytest.approx(math.sqrt(12.5))
    assert net.weight.grad is None  # the caller's module is not touched


def test_grad_norm_of_a_resnetx_matches_a_manual_autograd_sum():
    torch.manual_seed(0)
    net = build_model({"num_nodes": [1, 1, 1], "unit": "basic", "stem": "cifar", "base": 4, "stem_width": 4,
                       "bottle_scale": 1.0, "in_channels": 1, "num_classes": 10})
    x, y = torch.randn(8, 1, 8, 8), torch.arange(8) % 10
    layers = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    grads = torch.autograd.grad(F.cross_entropy(net.train()(x), y), [m.weight for m in layers])
    expected = sum(float(g.norm()) for g in grads)
    assert len(layers) >= 5
    assert zc.grad_norm(net, x, y) == pytest.approx(expected, rel=1e-6)


def test_hamming_kernel_and_naswot_on_hand_made_codes():
    codes = torch.tensor([[1, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 1]])
    # hamming distances: (1,2) 2, (1,3) 3, (2,3) 3; K = N_A - d with N_A = 4
    expected = torch.tensor([[4.0, 2.0, 1.0], [2.0, 4.0, 1.0], [1.0, 1.0, 4.0]], dtype=torch.float64)
    assert torch.equal(zc.hamming_kernel(codes), expected)
    # det = 4*(16-1) - 2*(8-1) + 1*(2-4) = 44; the ReLU sees the codes' signs directly
    net = nn.Sequential(nn.Identity(), nn.ReLU())
    x = codes.float() * 2 - 1  # +1 where the code is 1, -1 where it is 0
    assert zc.naswot(net, x) == pytest.approx(math.log(44.0))


class _TwiceRelu(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(-self.relu(x) + 0.5)  # second call: 1 where x <= 0.5


def test_relu_codes_take_one_block_per_call_of_a_shared_relu():
    x = torch.tensor([[1.0, -1.0], [0.2, 2.0]])
    codes = zc.relu_codes(_TwiceRelu(), x)
    assert codes.tolist() == [[True, False, False, True], [True, True, True, False]]
    with pytest.raises(ValueError, match=r"no nn\.ReLU"):
        zc.relu_codes(nn.Identity(), x)


def test_jacob_cov_score_of_two_hand_made_jacobians():
    # rows [1, 0, -1] and [0, 1, -1]: centred, cosine 1/2; correlation eigenvalues 1.5 and 0.5
    jac = torch.tensor([[1.0, 0.0, -1.0], [0.0, 1.0, -1.0]])
    k = zc.JACOB_COV_K
    expected = -sum(math.log(v + k) + 1 / (v + k) for v in (1.5, 0.5))
    assert zc.jacob_cov_score(jac) == pytest.approx(expected, rel=1e-9)
    assert math.isnan(zc.jacob_cov_score(torch.tensor([[1.0, 1.0, 1.0], [0.0, 1.0, 2.0]])))


class _Squares(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x ** 2).sum(dim=1, keepdim=True)  # Jacobian of each sample: 2 x


def test_jacob_cov_takes_each_inputs_jacobian_and_numpys_correlation():
    x = torch.randn(5, 7, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert torch.allclose(zc.input_jacobians(_Squares(), x), 2 * x)
    values = np.linalg.eigvalsh(np.corrcoef(2 * x.numpy()))
    expected = -float(np.sum(np.log(values + 1e-5) + 1 / (values + 1e-5)))
    assert zc.jacob_cov(_Squares(), x) == pytest.approx(expected, rel=1e-9)


def test_all_proxies_on_a_resnetx_are_finite_and_leave_it_unchanged():
    torch.manual_seed(0)
    net = build_model({"num_nodes": [1, 1, 1], "fold": 2, "start_id": 2, "end_id": 3, "unit": "preact_bottleneck",
                       "stem": "cifar", "base": 4, "stem_width": 4, "bottle_scale": 2.0, "in_channels": 1,
                       "num_classes": 10})
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x, y = torch.randn(16, 1, 8, 8), torch.arange(16) % 10
    scores = zc.all_proxies(net, x, y)
    assert set(scores) == set(zc.PROXIES)
    assert all(math.isfinite(v) for v in scores.values())
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_a_record_row_rebuilds_the_recorded_network():
    import importlib.util
    from pathlib import Path

    from resnetx import count_params
    from sweep.tracking.record import read_record

    bench = Path(__file__).resolve().parents[1] / "bench"
    spec = importlib.util.spec_from_file_location("zero_cost_bench", bench / "zero_cost.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    final = read_record(bench / "records" / "fmnist-bench-2.csv").final()
    for _, row in final.iloc[::70].iterrows():  # every unit type of the record in 6 rows
        fields = script.model_config(row)
        assert isinstance(fields["num_nodes"], list)
        assert count_params(build_model(fields)) == int(row["params"])
