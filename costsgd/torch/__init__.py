r"""The torch adapter: Algorithm 2's policy-update phase for any PyTorch loop.

This sub-package is the only part of :mod:`costsgd` that imports torch;
``import costsgd`` never loads it.

Core (Algorithm 2, Appendix B.2 and G.2–G.3 of the paper):

* :func:`cost_aware_probs` — :math:`p_u \propto |A_u|/\sqrt{c_u}`, smoothed;
* :func:`sample_minibatches` — :math:`\lceil N/B\rceil` mini-batches drawn with replacement;
* :func:`importance_weights` — :math:`1/(Np_u)`, re-centred to mean 1.
"""

from costsgd.torch._core import cost_aware_probs, importance_weights, sample_minibatches

__all__ = ["cost_aware_probs", "importance_weights", "sample_minibatches"]
