import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from marsvision.losses.distributed import gather_with_grad
from marsvision.losses.nt_xent import NTXentLoss, nt_xent_loss


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny tensors gain nothing from more threads, and waiting OpenMP threads are slow on a busy machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _reference_loss(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> float:
    """Float64 loop re-derivation straight from the equation (no matrix tricks, no cross_entropy)."""
    rows = torch.cat([z1, z2]).double().tolist()
    norms = [math.sqrt(sum(c * c for c in v)) for v in rows]
    z = [[c / norm for c in v] for v, norm in zip(rows, norms, strict=True)]
    n = z1.shape[0]
    total = 0.0
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        sims = [sum(a * b for a, b in zip(z[i], z[k], strict=True)) / temperature for k in range(2 * n)]
        denominator = sum(math.exp(s) for k, s in enumerate(sims) if k != i)
        total += -math.log(math.exp(sims[j]) / denominator)
    return total / (2 * n)


def test_identical_views_orthogonal_pairs_analytic() -> None:
    # Each anchor: positive similarity 1, the 2N-2 other embeddings orthogonal (similarity 0), so
    # ℓ = -log(e^{1/τ} / (e^{1/τ} + 2N - 2)) = log(1 + (2N - 2) e^{-1/τ}) for every anchor.
    n, tau = 4, 0.5
    z = torch.eye(n, 6)
    expected = math.log(1 + (2 * n - 2) * math.exp(-1 / tau))
    assert nt_xent_loss(z, z.clone(), temperature=tau).item() == pytest.approx(expected, rel=1e-6)


def test_hand_computed_case() -> None:
    # Anchors a=(1,0), b=(0,1) (view 1) and c=(1,0), d=(-1,0) (view 2), τ = 1:
    # ℓ(a,c) = ℓ(c,a) = log(1 + e + 1/e) - 1, ℓ(b,d) = log 3, ℓ(d,b) = log(1 + 2/e).
    z1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    z2 = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    e = math.e
    expected = (2 * (math.log(1 + e + 1 / e) - 1) + math.log(3) + math.log(1 + 2 / e)) / 4
    assert nt_xent_loss(z1, z2, temperature=1.0).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("tau", [0.07, 0.1, 0.5])
def test_matches_float64_loop_reference(tau: float) -> None:
    gen = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(6, 5, generator=gen), torch.randn(6, 5, generator=gen)
    assert nt_xent_loss(z1, z2, tau).item() == pytest.approx(_reference_loss(z1, z2, tau), rel=1e-5)


def test_matches_lightly() -> None:
    from lightly.loss import NTXentLoss as LightlyNTXentLoss

    gen = torch.Generator().manual_seed(1)
    z1, z2 = torch.randn(8, 16, generator=gen), torch.randn(8, 16, generator=gen)
    ours = NTXentLoss(temperature=0.2)(z1, z2)
    theirs = LightlyNTXentLoss(temperature=0.2)(z1, z2)
    torch.testing.assert_close(ours, theirs)


def test_scale_invariant_and_symmetric() -> None:
    gen = torch.Generator().manual_seed(2)
    z1, z2 = torch.randn(5, 4, generator=gen), torch.randn(5, 4, generator=gen)
    base = nt_xent_loss(z1, z2)
    torch.testing.assert_close(nt_xent_loss(3 * z1, 0.5 * z2), base)
    torch.testing.assert_close(nt_xent_loss(z2, z1), base)


def test_gather_without_process_group_is_identity() -> None:
    x = torch.randn(3, 2)
    assert gather_with_grad(x) is x
    z1, z2 = torch.randn(4, 3), torch.randn(4, 3)
    torch.testing.assert_close(nt_xent_loss(z1, z2, gather_distributed=True), nt_xent_loss(z1, z2))


@pytest.mark.parametrize("tau", [0.0, -0.1])
def test_bad_temperature_raises(tau: float) -> None:
    with pytest.raises(ValueError, match="temperature"):
        NTXentLoss(temperature=tau)
    with pytest.raises(ValueError, match="temperature"):
        nt_xent_loss(torch.randn(2, 3), torch.randn(2, 3), temperature=tau)


def test_bad_shapes_raise() -> None:
    with pytest.raises(ValueError, match="same shape"):
        nt_xent_loss(torch.randn(2, 3), torch.randn(3, 3))
    with pytest.raises(ValueError, match="same shape"):
        nt_xent_loss(torch.randn(2, 3, 1), torch.randn(2, 3, 1))


WORLD, LOCAL_BATCH, IN_DIM, OUT_DIM, TAU = 2, 4, 6, 5, 0.3


def _data() -> tuple[torch.Tensor, torch.Tensor, nn.Linear]:
    gen = torch.Generator().manual_seed(3)
    x1 = torch.randn(WORLD * LOCAL_BATCH, IN_DIM, generator=gen)
    x2 = torch.randn(WORLD * LOCAL_BATCH, IN_DIM, generator=gen)
    torch.manual_seed(4)
    return x1, x2, nn.Linear(IN_DIM, OUT_DIM)


def _ddp_worker(rank: int, store: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=WORLD)
    try:
        x1, x2, model = _data()
        ddp = DistributedDataParallel(model)
        rows = slice(rank * LOCAL_BATCH, (rank + 1) * LOCAL_BATCH)
        x1, x2 = x1[rows].clone().requires_grad_(), x2[rows].clone().requires_grad_()
        loss = nt_xent_loss(ddp(x1), ddp(x2), TAU, gather_distributed=True)
        loss.backward()  # DDP averages the parameter gradients over the ranks
        torch.save(
            {
                "loss": loss.detach(),
                "weight_grad": model.weight.grad,
                "bias_grad": model.bias.grad,
                "x1_grad": x1.grad,
                "x2_grad": x2.grad,
            },
            Path(out_dir) / f"rank{rank}.pt",
        )
        dist.barrier()  # no rank tears gloo down while the other still talks to it (an abort at exit otherwise)
    finally:
        dist.destroy_process_group()


def test_two_processes_match_one_process(tmp_path: Path) -> None:
    """2 ranks × batch 4 with gathered negatives = 1 process × batch 8: same loss, same gradients."""
    x1, x2, model = _data()
    x1.requires_grad_()
    x2.requires_grad_()
    loss = nt_xent_loss(model(x1), model(x2), TAU)
    loss.backward()

    mp.spawn(_ddp_worker, args=(str(tmp_path / "store"), str(tmp_path)), nprocs=WORLD, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]

    # The loss DDP optimises is the mean of the ranks' losses (it averages their gradients).
    torch.testing.assert_close(torch.stack([r["loss"] for r in ranks]).mean(), loss.detach())
    for r in ranks:  # parameter gradients after DDP's averaging: identical on every rank, equal to 1 process
        torch.testing.assert_close(r["weight_grad"], model.weight.grad)
        torch.testing.assert_close(r["bias_grad"], model.bias.grad)
    # Input gradients are not averaged by DDP: rank r holds Σ_s ∂L_s/∂x_r = world · ∂L/∂x_r.
    for name, full in (("x1_grad", x1.grad), ("x2_grad", x2.grad)):
        assert full is not None
        gathered = torch.cat([r[name] for r in ranks]) / WORLD
        torch.testing.assert_close(gathered, full)
