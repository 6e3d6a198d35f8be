"""Tasks beyond classification: the PINN convection problem and byte-level language modelling,
checked against hand-computed losses, the analytic solution and an exact Hessian."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from phasezoo.data import create_dataset
from phasezoo.evaluation import evaluate
from phasezoo.landscape.hessian import hessian_summary
from phasezoo.models import create_model
from phasezoo.task_kinds import error_percent
from phasezoo.tasks import Task


class Solution(nn.Module):
    """u = sin(x − c·t): the exact solution when c = β, a wrong one otherwise."""

    def __init__(self, c: float) -> None:
        super().__init__()
        self.c = nn.Parameter(torch.tensor(float(c)))

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        return torch.sin(p[:, :1] - self.c * p[:, 1:])


def test_convection_points_and_targets():
    s = create_dataset("convection", options={"beta": 3.0, "n_residual": 50, "n_initial": 16,
                                             "n_boundary": 8, "grid_x": 8, "grid_t": 5})
    kind = s.y_train[:, 0]
    assert s.x_train.shape == (74, 2) and kind.tolist() == [0] * 50 + [1] * 16 + [2] * 8
    assert torch.all(s.x_train[kind == 1, 1] == 0) and torch.all(s.x_train[kind == 2, 0] == 0)
    assert torch.allclose(s.y_train[:, 1], torch.sin(s.x_train[:, 0] - 3 * s.x_train[:, 1]), atol=1e-6)
    assert s.x_test.shape == (40, 2) and int((s.y_test[:, 0] == 1).sum()) == 8
    assert s.task.kind == "pinn-convection" and s.num_classes == 1


@pytest.mark.parametrize("beta", [1.0, 30.0])
def test_exact_solution_has_zero_pinn_loss_and_error(beta):
    s = create_dataset("convection", options={"beta": beta})
    loss, rel = evaluate(Solution(beta), s.x_test, s.y_test, 1000, s.task)
    assert loss < 1e-9 and rel < 1e-6


def test_pinn_loss_by_hand():
    beta = 2.0
    s = create_dataset("convection", options={"beta": beta})
    x, kind = s.x_train.double().numpy(), s.y_train[:, 0].numpy()
    # u = sin(x) ignores t: residual u_t + β u_x = β cos x; initial term exact; boundary periodic
    expected = np.mean((beta * np.cos(x[kind == 0, 0])) ** 2)
    model = Solution(0.0)
    assert float(s.task.loss(model, s.x_train, s.y_train).detach()) == pytest.approx(expected, rel=1e-5)
    u_star = np.sin(x[:, 0] - beta * x[:, 1])
    rel = np.linalg.norm(np.sin(x[:, 0]) - u_star) / np.linalg.norm(u_star)
    assert evaluate(model, s.x_train, s.y_train, 300, s.task) == pytest.approx(
        (expected, rel), rel=1e-5)
    # u ≡ 0: residual and boundary vanish, initial term = mean sin² over a full period = ½
    zero = nn.Linear(2, 1)
    nn.init.zeros_(zero.weight), nn.init.zeros_(zero.bias)
    assert evaluate(zero, s.x_test, s.y_test, 1000, s.task) == pytest.approx((0.5, 1.0), rel=1e-6)
    assert error_percent("pinn-convection", 0.25) == 25.0
    assert error_percent("classification", 0.75) == 25.0


def test_pinn_hessian_matches_the_exact_one():
    s = create_dataset("convection", options={"beta": 5.0, "n_residual": 60, "n_initial": 10,
                                             "n_boundary": 10})
    torch.manual_seed(0)
    model = create_model("pinn-mlp", width=4, depth=1, input_shape=(2,), num_classes=1).double()
    x, y = s.x_train.double(), s.y_train.double()
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    flat0 = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def loss_of(flat):
        params, i = {}, 0
        for n, sh in zip(names, shapes, strict=True):
            params[n] = flat[i:i + sh.numel()].reshape(sh)
            i += sh.numel()
        return s.task.loss(lambda p: torch.func.functional_call(model, params, (p,)), x, y)

    eig = torch.linalg.eigvalsh(torch.autograd.functional.hessian(loss_of, flat0))
    out = hessian_summary(model, s.task, [(x, y)], tol=1e-10, trace_tol=1e-4, max_iter=200)
    top = float(eig[eig.abs().argmax()])
    assert out.top_eigenvalue == pytest.approx(top, rel=1e-6)
    assert out.trace == pytest.approx(float(eig.sum()), abs=3 * out.trace_stderr + 1e-8)


def test_text_corpus_sequences_and_split(tmp_path):
    corpus = tmp_path / "corpus.txt"
    text = "the quick brown fox jumps over the lazy dog. " * 40
    corpus.write_text(text)
    s = create_dataset("text", tmp_path, options={"source": corpus.name, "seq_len": 16,
                                                  "test_fraction": 0.25})
    raw = torch.tensor(list(text.encode()))
    n_seq = len(raw) // 17
    assert s.x_train.shape == (n_seq - round(0.25 * n_seq), 16) and s.num_classes == 256
    assert torch.equal(s.x_train[0], raw[:16]) and torch.equal(s.y_train[0], raw[1:17])
    assert torch.equal(s.y_test[-1], raw[n_seq * 17 - 16:n_seq * 17])  # the end of the stream
    assert s.task.kind == "language-modeling" and s.info["tokenizer"].startswith("bytes")
    with pytest.raises(ValueError, match=r"\['sequence_length'\] not options of dataset 'text'"):
        create_dataset("text", tmp_path, options={"sequence_length": 8})
    with pytest.raises(FileNotFoundError, match="not 'openwebtext'"):
        create_dataset("text", tmp_path, options={"source": "missing.txt"})


def test_pydoc_corpus_ships_offline():
    s = create_dataset("text", options={"source": "pydoc", "seq_len": 64, "max_bytes": 100_000})
    assert s.info["bytes"] == 100_000 and len(s.x_train) + len(s.x_test) == 100_000 // 65


def test_gpt_is_causal_and_lm_loss_is_per_token_cross_entropy():
    torch.manual_seed(0)
    model = create_model("gpt", width=32, depth=2, input_shape=(12,), num_classes=256).eval()
    idx = torch.randint(0, 256, (3, 12))
    logits = model(idx).detach()
    changed = idx.clone()
    changed[:, 7] = (changed[:, 7] + 1) % 256
    after = model(changed)
    assert logits.shape == (3, 12, 256)
    assert torch.allclose(logits[:, :7], after[:, :7], atol=1e-6)
    assert not torch.allclose(logits[:, 7:], after[:, 7:])
    y = torch.randint(0, 256, (3, 12))
    task = Task("language-modeling")
    manual = -torch.log_softmax(logits, -1).gather(-1, y[..., None]).mean().detach()
    assert float(task.loss(model, idx, y).detach()) == pytest.approx(float(manual), rel=1e-6)
    loss, acc = evaluate(model, idx, y, 2, task)
    assert loss == pytest.approx(float(manual), rel=1e-6)
    assert acc == pytest.approx(float((logits.argmax(-1) == y).float().mean()))
    assert math.isclose(float(F.cross_entropy(logits[0], y[0])),
                        float(task.criterion(logits[:1], y[:1])), rel_tol=1e-6)


def test_model_options_are_checked():
    with pytest.raises(ValueError, match=r"\['layers'\] not options of model 'gpt'.*'depth'"):
        create_model("gpt", width=8, input_shape=(4,), num_classes=256, layers=2)


def test_every_pinn_term_by_hand_on_a_non_periodic_model():
    """u = a·x + b·t + c: residual b + βa, initial (a·x + c − sin x), boundary u(0,t) − u(2π,t) =
    −2πa — a model that is not 2π-periodic, so the boundary term is not zero."""
    beta, (a, b, c) = 3.0, (0.3, -0.2, 0.1)
    s = create_dataset("convection", options={"beta": beta})
    model = nn.Linear(2, 1).double()
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[a, b]]))
        model.bias.fill_(c)
    x = s.x_train.double().numpy()
    kind = s.y_train[:, 0].numpy()
    initial = np.mean((a * x[kind == 1, 0] + c - np.sin(x[kind == 1, 0])) ** 2)
    expected = (b + beta * a) ** 2 + initial + (2 * np.pi * a) ** 2
    loss = s.task.loss(model, s.x_train.double(), s.y_train.double())
    # targets u* are stored in float32: agreement to ~1e-7 (the boundary term alone is 3.55)
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-6)
    # A batch without some kinds: each absent kind's term is left out, not NaN (0 / 0).
    kinds = s.y_train[:, 0]
    for present, terms in (((0, 2), (b + beta * a) ** 2 + (2 * np.pi * a) ** 2),
                           ((0,), (b + beta * a) ** 2), ((2,), (2 * np.pi * a) ** 2)):
        rows = torch.isin(kinds, torch.tensor(present, dtype=kinds.dtype))
        part = s.task.loss(model, s.x_train[rows].double(), s.y_train[rows].double())
        assert float(part.detach()) == pytest.approx(terms, rel=1e-6), present


class _NaNOutput(nn.Module):
    """A diverged model: every output is NaN (argmax of a NaN row is index 0)."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = shape
        self.p = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((len(x), *self.shape), math.nan) + self.p * x.float().sum()


@pytest.mark.parametrize("kind, shape, y", [
    ("classification", (10,), torch.zeros(20, dtype=torch.long)),  # argmax 0 would score 1.0
    ("language-modeling", (5, 256), torch.zeros(20, 5, dtype=torch.long))])
def test_a_model_with_nan_outputs_has_no_score(kind, shape, y):
    x = torch.zeros(20, 5)
    loss, score = evaluate(_NaNOutput(shape), x, y, 7, Task(kind))
    assert math.isnan(loss) and math.isnan(score)


def test_a_pinn_with_nan_outputs_has_no_error():
    s = create_dataset("convection", options={"n_residual": 20, "n_initial": 8, "n_boundary": 4,
                                             "grid_x": 4, "grid_t": 3})
    loss, rel = evaluate(_NaNOutput((1,)), s.x_test, s.y_test, 5, s.task)
    assert math.isnan(loss) and math.isnan(rel)
