r"""Cost-Aware SGD (Algorithm 1 of the paper) as a jitted JAX engine.

Each step draws :math:`i_t \sim p`, pays :math:`c_{i_t}` and takes a projected
step along the importance-weighted gradient:

.. math::
   \tilde g_t = \frac{\nabla f_{i_t}(x_t)}{n\,p_{i_t}},\qquad
   x_{t+1} = \Pi_{\mathcal X}\big(x_t - \eta_t\,\tilde g_t\big),\qquad
   \mathcal K_t = \sum_{s \le t} c_{i_s}.

:func:`sgd_algorithm` gives Algorithm 1 as an init/step pair to run in one's
own loop; :func:`cost_aware_sgd` runs many trials of many strategies in one
compiled call, with the same step (:func:`sgd_step` on the problem type's
:class:`costsgd.problems.GradientStep`). The modules of this package are
private and layered, each importing only the ones below it:

========================  ==========================================================
``_kernel``               :func:`sgd_step`, :class:`SGDState`, :class:`Checkpoints`
``_schedules``            step sizes, schedules, checkpoints
``_checks``               host-side checks of the inputs
``_native``               the native backend: builds, checks and loads compiled loops
``_arrays``               a run's arrays and the step on one drawn component
``_options``              :class:`EngineOptions`
``_algorithm``            :func:`sgd_algorithm`: init/step
``_trial``                the scan over one trial's steps and checkpoints
``_batch``                ``vmap`` over trials and strategies, devices, the one jit
``_driver``               :func:`cost_aware_sgd`: backend, results, provenance
========================  ==========================================================

The names below are re-exported by :mod:`costsgd`, except the native backend's
status (:func:`native_status`), which ``costsgd info`` prints.
"""

from costsgd.engine._algorithm import SGDAlgorithm, SGDInfo, sgd_algorithm
from costsgd.engine._driver import SGDResult, cost_aware_sgd
from costsgd.engine._kernel import Checkpoints, SGDState, sgd_step
from costsgd.engine._native import NATIVE_ENV, NativeStatus, cache_folder
from costsgd.engine._native import status as native_status
from costsgd.engine._options import BACKENDS, EngineOptions
from costsgd.engine._schedules import inverse_time_schedule, log_checkpoints, theory_step_size

__all__ = [
    "BACKENDS",
    "NATIVE_ENV",
    "Checkpoints",
    "EngineOptions",
    "NativeStatus",
    "SGDAlgorithm",
    "SGDInfo",
    "SGDResult",
    "SGDState",
    "cache_folder",
    "cost_aware_sgd",
    "inverse_time_schedule",
    "log_checkpoints",
    "native_status",
    "sgd_algorithm",
    "sgd_step",
    "theory_step_size",
]
