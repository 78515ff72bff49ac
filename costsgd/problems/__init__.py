r"""Finite-sum problems with known per-component gradient bounds and costs.

A finite-sum problem (§3 of the paper) is
:math:`f(x) = \frac1n\sum_{i=1}^n f_i(x)` over a feasible ball
:math:`\mathcal X = \{\|x\| \le R\}`, where querying :math:`\nabla f_i` costs
:math:`c_i \ge 0` and :math:`\|\nabla f_i(x)\| \le G_i` on :math:`\mathcal X`.
Every problem exposes the same interface, which is all the SGD engine
(:func:`costsgd.cost_aware_sgd`) reads:

* ``data``: a pytree of arrays whose leading axis has length ``n`` (component
  ``i``'s datum is ``tree_map(lambda a: a[i], data)``);
* ``loss(x, datum)`` and ``grad(x, datum)``: :math:`f_i(x)` and
  :math:`\nabla f_i(x)`, pure and JAX-traceable (module-level functions, so
  jitted code that receives them compiles once);
* ``x_star``, ``f_star``: a minimiser over :math:`\mathcal X` (``None`` when
  only the minimum is known) and :math:`f^* = f(x^*)`; ``radius``: :math:`R`
  (``inf`` for no constraint);
* ``G``, ``c``: the bounds and costs, float64 numpy, shape ``(n,)``;
* ``hessian``: for a quadratic :math:`f` its Hessian :math:`H` (else ``None``);
  then the engine evaluates :math:`f(x) - f^* = \frac12 e^\top H e`,
  :math:`e = x - x^*`, exact when :math:`x^*` is an unconstrained minimiser and
  free of the cancellation of differencing two float32 losses;
* ``gradient_step`` (optional): the problem type's own :class:`GradientStep`,
  the engine's extension point (see :func:`gradient_step`).

:class:`FiniteSum` builds a user-defined problem; :func:`least_squares` builds
the §4.4 instance (:class:`LeastSquares`, with a fast step and a native loop),
:func:`logistic_regression` a regularised logistic regression
(:class:`LogisticRegression`, with its own step).
"""

from costsgd.problems._base import (
    FiniteSum,
    GenericStep,
    GradientStep,
    NativeLoop,
    gradient_step,
    objective,
    project,
    suboptimality,
)
from costsgd.problems._least_squares import (
    LeastSquares,
    least_squares,
    least_squares_grad,
    least_squares_loss,
    least_squares_step,
)
from costsgd.problems._linear import linear_step
from costsgd.problems._logistic import (
    LogisticRegression,
    logistic_grad,
    logistic_loss,
    logistic_regression,
    logistic_step,
)

__all__ = [
    "FiniteSum",
    "GenericStep",
    "GradientStep",
    "LeastSquares",
    "LogisticRegression",
    "NativeLoop",
    "gradient_step",
    "least_squares",
    "least_squares_grad",
    "least_squares_loss",
    "least_squares_step",
    "linear_step",
    "logistic_grad",
    "logistic_loss",
    "logistic_regression",
    "logistic_step",
    "objective",
    "project",
    "suboptimality",
]
