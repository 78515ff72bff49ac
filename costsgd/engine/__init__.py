r"""Cost-Aware SGD (Algorithm 1 of the paper) as a jitted JAX engine.

Each step draws :math:`i_t \sim p`, pays :math:`c_{i_t}` and takes a projected
step along the importance-weighted gradient:

.. math::
   \tilde g_t = \frac{\nabla f_{i_t}(x_t)}{n\,p_{i_t}},\qquad
   x_{t+1} = \Pi_{\mathcal X}\big(x_t - \eta_t\,\tilde g_t\big),\qquad
   \mathcal K_t = \sum_{s \le t} c_{i_s}.

:func:`cost_aware_sgd` runs many trials of many strategies in one compiled
call; :func:`sgd_step` is one step on one trial. The modules of this package
are private and layered, each importing only the ones below it:

========================  ==========================================================
``_kernel``               the pure step kernels (:func:`sgd_step`), :class:`SGDState`
``_schedules``            step sizes, schedules, checkpoints
``_native``               the optional compiled step loop (CPU, least squares)
``_trial``                the scan over one trial's steps and checkpoints
``_batch``                ``vmap`` over trials and strategies, devices, the one jit
``_driver``               :func:`cost_aware_sgd`: checks, preparation, results
========================  ==========================================================

The names below are re-exported by :mod:`costsgd`.
"""

from costsgd.engine._driver import SGDResult, cost_aware_sgd
from costsgd.engine._kernel import (
    Checkpoints,
    SGDState,
    importance_weighted_gradient,
    linear_sgd_step,
    project,
    sgd_step,
)
from costsgd.engine._schedules import inverse_time_schedule, log_checkpoints, theory_step_size

__all__ = [
    "Checkpoints",
    "SGDResult",
    "SGDState",
    "cost_aware_sgd",
    "importance_weighted_gradient",
    "inverse_time_schedule",
    "linear_sgd_step",
    "log_checkpoints",
    "project",
    "sgd_step",
    "theory_step_size",
]
