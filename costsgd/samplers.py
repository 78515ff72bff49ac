r"""Sampling distributions over the components of a finite sum.

Each sampler is a pure function ``(G, c) -> p`` of the per-component gradient
norm bounds :math:`G_i` and costs :math:`c_i`. They are backend-generic: numpy,
JAX and torch arrays go in and the same kind of array comes out, on the same
device (through the array API standard). Inputs are validated first (see
:mod:`costsgd._validate`); JAX arrays under ``jit`` skip the value checks.

Zero entries are legal: a component with :math:`G_i = 0` gets :math:`p_i = 0`
under :func:`variance` and :func:`optimal`. A zero cost :math:`c_i = 0` with
:math:`G_i > 0` makes :func:`optimal` raise: the infimum of
:math:`J(p) = S(p)C(p)` is then approached by putting all mass on free
components, but never attained (see :func:`optimal`).
"""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np

from costsgd._numerics import optimal_weights
from costsgd._validate import (
    as_array,
    as_generator,
    check_alpha,
    check_costs,
    check_gradient_norms,
    check_probabilities,
    check_same_shape,
    host,
    is_traced,
    namespace,
)

__all__ = ["length_only", "noisy_proxy", "nonzero", "optimal", "smooth", "uniform", "variance"]


def _inputs(G: Any, c: Any):
    xp = namespace(G=G, c=c)  # arrays of one library; a list or tuple adopts theirs
    G = check_gradient_norms(G)
    c = check_costs(c)
    check_same_shape(G=G, c=c)
    if namespace(c=c) is not xp:
        c = _adopt(c, G, "c", xp)
    elif namespace(G=G) is not xp:
        G = _adopt(G, c, "G", xp)
    return G, c, xp


def _adopt(x: Any, like: Any, name: str, xp):
    """``x`` (a list or tuple, as numpy) in the library, dtype and device of ``like``."""
    values = host(x)
    top = float(xp.finfo(like.dtype).max)
    if values.size and float(values.max()) > top:
        raise ValueError(
            f"{name} holds {float(values.max())!r}, beyond the largest {like.dtype} "
            f"({top:.3g}) of the other argument: pass both in a wider dtype"
        )
    return xp.asarray(values, dtype=like.dtype, device=array_api_compat.device(like))


def _normalise(w, xp):
    """``w / sum(w)`` for non-negative weights already scaled to max 1 (no overflow)."""
    total = xp.sum(w)
    if not is_traced(total) and not (float(total) > 0 and float(total) < float("inf")):
        raise ValueError(f"the sampling weights sum to {float(total)!r}: no distribution")
    return w / total


def uniform(G: Any, c: Any):
    r"""Uniform sampling, :math:`p_i = 1/n` (the baseline of §4.3).

    Args:
      G: gradient-norm bounds :math:`G_i \ge 0`, shape ``(n,)``.
      c: costs :math:`c_i \ge 0`, shape ``(n,)``.

    Returns:
      ``p`` of shape ``(n,)``, same backend and dtype as ``G``.

    Examples:
      >>> import costsgd as cs
      >>> cs.uniform([1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 1.0, 1.0])
      array([0.25, 0.25, 0.25, 0.25])
    """
    G, _, xp = _inputs(G, c)
    return xp.ones_like(G) / G.shape[0]


def variance(G: Any, c: Any):
    r"""Variance-minimising sampling, :math:`p_i = G_i / \sum_j G_j` (Eq. 9).

    Minimises the second moment :math:`S(p)` while ignoring costs (Appendix D.1).

    Examples:
      >>> import costsgd as cs
      >>> cs.variance([1.0, 3.0], [5.0, 1.0])
      array([0.25, 0.75])
    """
    G, _, xp = _inputs(G, c)
    return _normalise(G / xp.max(G), xp)


def optimal(G: Any, c: Any):
    r"""The cost-aware optimal distribution of Theorem 4.1 (Eq. 5).

    .. math:: p^*_i = \frac{G_i/\sqrt{c_i}}{\sum_j G_j/\sqrt{c_j}}

    It minimises :math:`J(p) = S(p)\,C(p)` over the simplex, hence the expected
    cost to reach a target error in the convex (Eq. 3) and strongly convex
    (Eq. 4) cases. Components with :math:`G_i = 0` get :math:`p_i = 0`.

    Raises:
      ValueError: if some :math:`c_i = 0` while :math:`G_i > 0`. Then
        :math:`\inf_p J(p) = \frac{1}{n^2}(\sum_i G_i\sqrt{c_i})^2` (still given by
        :func:`costsgd.optimal_cost_product`) is approached by sending the mass of
        the free components to 1, but no distribution attains it. Give such
        components a small positive cost floor if a distribution is needed.

    Examples:
      >>> import costsgd as cs
      >>> cs.optimal([1.0, 1.0], [1.0, 4.0])  # twice as likely: a quarter of the cost
      array([0.66666667, 0.33333333])
    """
    G, c, xp = _inputs(G, c)
    if not (is_traced(G) or is_traced(c)):
        free = (c == 0) & (G > 0)
        if bool(xp.any(free)):
            idx = np.flatnonzero(host(free))
            raise ValueError(
                f"c is zero where G > 0 (indices {idx[:5].tolist()}): the optimum of "
                "J(p) = S(p)C(p) is not attained when a component with gradient signal "
                "costs nothing (Theorem 4.1 needs c_i > 0 there); add a positive cost floor"
            )
    return _normalise(optimal_weights(G, c, xp), xp)


def nonzero(G: Any, c: Any):
    r"""Zero-signal removal, :math:`p_i \propto \mathbf 1[G_i > 0]`: uniform over the components with signal.

    In GRPO with :math:`G_u = |A_u|` this is zero-advantage removal: every rollout
    that carries a policy-gradient signal is equally likely, whatever its cost.
    It is the control that separates what :func:`optimal` gains from its cost
    factor :math:`1/\sqrt{c_i}` from what it gains by never drawing
    :math:`G_i = 0` (§5 of the paper; importance weights :math:`1/(np_i)` keep
    the estimator unbiased, as for any sampler here).

    Raises:
      ValueError: if every :math:`G_i` is zero (no distribution; the torch
        adapter then draws uniformly, see :class:`costsgd.torch.SamplingOptions`).

    Examples:
      >>> import costsgd as cs
      >>> cs.nonzero([2.0, 0.0, 0.5, 0.0], [1.0, 1.0, 9.0, 4.0])
      array([0.5, 0. , 0.5, 0. ])
    """
    G, _, xp = _inputs(G, c)
    return _normalise(xp.astype(G > 0, G.dtype), xp)


def length_only(G: Any, c: Any):
    r"""The length-only proxy :math:`p_i \propto 1/\sqrt{c_i}` (§5.5, Appendix G.6).

    This is :func:`optimal` with every :math:`G_i` replaced by 1 (the paper's
    :math:`p^*_{\mathrm{LEN}}`). ``G`` may be ``None``; when given it is only
    validated and used to check shapes.

    Raises:
      ValueError: if some :math:`c_i = 0` (the distribution is then undefined).

    Examples:
      >>> import costsgd as cs
      >>> cs.length_only(None, [1.0, 4.0])
      array([0.66666667, 0.33333333])
    """
    c = check_costs(c)
    xp = namespace(c=c)
    if G is not None:
        G = check_gradient_norms(G)
        check_same_shape(G=G, c=c)
    if not is_traced(c) and bool(xp.any(c == 0)):
        raise ValueError("c has zero entries: p ∝ 1/sqrt(c) is undefined there")
    return _normalise(xp.sqrt(xp.min(c) / c), xp)


def smooth(p: Any, alpha: Any):
    r"""Mix a distribution with uniform: :math:`(1-\alpha)p + \alpha/n` (§5.3).

    The paper's :math:`p^*_{\mathrm{smooth}}(\alpha)`. With :math:`\alpha > 0`
    every component has probability at least :math:`\alpha/n`, which bounds the
    importance weights :math:`1/(np_i)` by :math:`1/\alpha`.

    Args:
      p: a distribution, shape ``(n,)``.
      alpha: mixing weight in ``[0, 1]``; a traced JAX scalar is accepted under
        ``jit``/``vmap`` (its range is then not checked).

    Examples:
      >>> import costsgd as cs
      >>> cs.smooth([1.0, 0.0], 0.5)
      array([0.75, 0.25])
    """
    p = check_probabilities(p)
    if not is_traced(alpha):
        alpha = check_alpha(alpha)
    return (1.0 - alpha) * p + alpha / p.shape[0]


def noisy_proxy(
    G: Any,
    c: Any,
    sigma2: float,
    *,
    noise: Any = None,
    rng: Any = None,
    negative: str = "clip",
):
    r"""The noisy-proxy ablation of §5.5: :func:`optimal` of :math:`G + \varepsilon`.

    Zero-mean noise of variance :math:`\sigma^2` is added to the proxy before
    the distribution is formed, :math:`G'_i = G_i + \sigma\xi_i` with
    :math:`\xi_i \sim \mathcal N(0, 1)`, and :math:`p'_i \propto G'_i/\sqrt{c_i}`.

    A noisy proxy can be negative while a probability cannot, so
    ``negative`` says what happens to :math:`G'_i < 0`:

    * ``"clip"`` (default): :math:`\max(G'_i, 0)`, the component is never drawn;
    * ``"abs"``: :math:`|G'_i|`, a reflected proxy that keeps every component.

    If every clipped proxy is zero, ``ValueError`` is raised (no distribution).

    Args:
      G: as in :func:`optimal`.
      c: as in :func:`optimal`.
      sigma2: noise variance :math:`\sigma^2 \ge 0`.
      noise: optional standard-normal draws :math:`\xi`, shape ``(n,)``, of the
        same backend as ``G`` (use it under JAX ``jit`` or for reproducibility).
      rng: seed or ``numpy.random.Generator`` used when ``noise`` is ``None``
        (drawn on the host, then moved to ``G``'s backend and device).
      negative: ``"clip"`` or ``"abs"``.

    Examples:
      >>> import costsgd as cs
      >>> p = cs.noisy_proxy([1.0, 2.0, 3.0], [1.0, 1.0, 1.0], 0.0, rng=0)
      >>> bool(abs(p - cs.optimal([1.0, 2.0, 3.0], [1.0, 1.0, 1.0])).max() < 1e-15)
      True
    """
    G, c, xp = _inputs(G, c)
    try:
        sigma2 = float(sigma2)
    except (TypeError, ValueError) as err:
        raise ValueError(f"sigma2 must be a number >= 0, got {sigma2!r}") from err
    if not (np.isfinite(sigma2) and sigma2 >= 0):
        raise ValueError(f"sigma2 must be finite and >= 0, got {sigma2!r}")
    if negative not in ("clip", "abs"):
        raise ValueError(f"negative must be 'clip' or 'abs', got {negative!r}")
    if noise is None:
        draws = as_generator(rng).standard_normal(G.shape[0])
        noise = xp.asarray(draws, dtype=G.dtype, device=array_api_compat.device(G))
    else:
        noise = as_array(noise, "noise")
        check_same_shape(G=G, noise=noise)
        if not is_traced(noise) and not bool(xp.all(xp.isfinite(noise))):
            raise ValueError("noise must be finite")
    proxy = G + (sigma2**0.5) * noise
    proxy = xp.abs(proxy) if negative == "abs" else xp.where(proxy > 0, proxy, xp.zeros_like(proxy))
    if not is_traced(proxy) and not bool(xp.any(proxy > 0)):
        raise ValueError("every noisy proxy is <= 0 after clipping: no distribution is defined")
    return optimal(proxy, c)
