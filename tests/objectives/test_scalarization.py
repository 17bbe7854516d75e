import torch

from mdmtn.objectives.scalarization import ChebyshevAL


def test_constraints_and_lagrangian_closed_form():
    k = [0.1, 0.3, 0.6]
    al = ChebyshevAL(k, mu0=0.5, eps=1e-2, generator=torch.Generator().manual_seed(0))
    f = torch.tensor([2.0, 1.0, 3.0])
    t = al.t.item()
    s = 6.0
    h_expected = torch.tensor([k[i] * (f[i] + 1e-2 * s) - t for i in range(3)])
    la, h = al(f)
    torch.testing.assert_close(h, h_expected)
    torch.testing.assert_close(la, t + (h_expected / 3).sum() + 0.25 * (h_expected**2).sum())


def test_gradient_wrt_t_and_losses():
    al = ChebyshevAL([0.2, 0.3, 0.5], mu0=0.1, eps=1e-4, generator=torch.Generator().manual_seed(1))
    f = torch.tensor([1.0, 2.0, 0.5], requires_grad=True)
    la, h = al(f)
    la.backward()
    lam, mu = al.lam, al.mu
    torch.testing.assert_close(al.t.grad, 1 - lam.sum() - mu * h.detach().sum())
    # dL_A/df_j = Σ_i (λ_i + μ H_i) k_i (δ_ij + ε)
    c = (lam + mu * h.detach()) * al.k
    torch.testing.assert_close(f.grad, c + 1e-4 * c.sum())


def test_multiplier_update_and_reset():
    al = ChebyshevAL([0.2, 0.3, 0.5], mu0=0.1)
    al.update_multipliers(torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64), 0.5)
    torch.testing.assert_close(al.lam, torch.tensor([1 / 3 + 0.1, 1 / 3 - 0.2, 1 / 3 + 0.3]))
    torch.testing.assert_close(al.mu, torch.tensor(0.05))
    al.reset_multipliers(0.1)
    torch.testing.assert_close(al.lam, torch.full((3,), 1 / 3))
