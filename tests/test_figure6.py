"""Figure 6 (Appendix C): the two effects the paper describes, on a reduced set-up."""

import numpy as np
import pytest

from costsgd.cli import main
from costsgd.experiments import figure2, figure6

SMALL = figure6.PAPER._replace(
    n=600, d=10, steps=4000, trials=64, checkpoints=20, gamma_fractions=(0.0, 0.5, 0.9, 0.99)
)


@pytest.fixture(scope="module")
def results():
    return figure6.run(SMALL)


def test_subsets_shrink_and_get_cheaper(results):
    assert np.all(np.diff(results["size"]) < 0)
    assert results["size"][0] == SMALL.n
    assert np.all(np.diff(results["expected_cost"]) < 0)
    assert np.all(np.diff(results["cost_product_ratio"]) < 0)
    # greedy subsets are nested: a larger budget keeps a prefix of the same cost order
    sel = results["selected"]
    assert np.all(sel[1:] <= sel[:-1])
    # the bias budget of Theorem C.1 holds: D β_π <= Γ
    assert np.all(results["diameter"] * results["bias"] <= results["gamma"] * (1 + 1e-9) + 1e-12)


def test_small_budget_similar_error_at_lower_cost(results):
    err = results["error"].mean(axis=1)[:, -1]
    cost = results["cost"].mean(axis=1)[:, -1]
    assert err[1] <= 1.5 * err[0]
    assert cost[1] <= 0.6 * cost[0]
    _, rows = figure6.summary(results)
    assert rows[0].cost_ratio == 1.0
    assert rows[1].cost_ratio < 0.75  # reaches the target at well under full p*'s cost
    assert rows[1].final_error < rows[1].full_error_at_cost  # better than full p* at equal cost


def test_bias_floor_as_the_subset_shrinks(results):
    err = results["error"].mean(axis=1)
    floor = results["floor"]
    assert floor[0] < 1e-20 and np.all(np.diff(floor) > 0)
    assert err[-1, -1] > 10 * err[0, -1]  # the smallest subset stalls far above full p*
    assert err[-1, -1] >= 0.5 * floor[-1]
    _, rows = figure6.summary(results)
    assert np.isnan(rows[-1].cost)  # never reaches the target


def test_subset_limit_is_where_projected_gd_converges():
    rng = np.random.default_rng(0)
    for m, d, radius in ((3, 6, 10.0), (3, 6, 0.05), (20, 4, 0.1), (20, 4, 100.0)):
        A, b = rng.standard_normal((m, d)), rng.standard_normal(m)
        x = np.zeros(d)
        step = 1.0 / np.linalg.norm(A, 2) ** 2
        for _ in range(20_000):
            x = x - step * A.T @ (A @ x - b)
            x *= min(1.0, radius / max(np.linalg.norm(x), 1e-300))
        np.testing.assert_allclose(figure6.subset_limit(A, b, radius), x, atol=1e-6)


def test_results_file_roundtrip_png_and_plot_dispatch(results, tmp_path, capsys):
    npz = figure6.save_results(results, tmp_path / "f6.npz")
    back = figure6.load_results(npz)
    np.testing.assert_array_equal(back["error"], results["error"])
    assert back["config"] == {**SMALL._asdict()}
    assert back["versions"]["engine_backend"] in ("native", "xla")  # which step ran (issue 23)
    png = figure6.plot_results(back, tmp_path / "f6.png")
    assert png.stat().st_size > 10_000
    assert main(["plot", str(npz), "--out", str(tmp_path / "again.png")]) == 0
    assert (tmp_path / "again.png").stat().st_size > 10_000
    assert "Γ/Γmax" in capsys.readouterr().out
    with pytest.raises(ValueError, match="not figure6"):
        small2 = figure2.PAPER._replace(n=300, d=5, steps=200, trials=2, checkpoints=3)
        figure6.load_results(figure2.save_results(figure2.run(small2), tmp_path / "f2.npz"))
    # `plot` still redraws Figure 2 files
    assert main(["plot", str(tmp_path / "f2.npz"), "--out", str(tmp_path / "f2.png")]) == 0


def test_command_line(tmp_path, capsys):
    code = main(
        [
            "figure6",
            "--n",
            "300",
            "--d",
            "5",
            "--steps",
            "300",
            "--trials",
            "4",
            "--gammas",
            "0,0.5",
            "--solver",
            "exact",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    assert (tmp_path / "figure6.npz").is_file() and (tmp_path / "figure6.png").is_file()
    assert "cost@target" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"gamma_fractions": (0.0, 1.0)}, "gamma_fractions"),
        ({"gamma_fractions": (0.5, 0.5)}, "duplicates"),
        ({"gamma_fractions": ()}, "non-empty"),
        ({"solver": "lp"}, "solver"),
        ({"trials": 0}, "trials"),
        ({"step_scale": -1.0}, "step_scale"),
        ({"seed": -1}, "seed"),
        ({"problem_seed": 1.5}, "problem_seed"),
        ({"L": float("nan")}, "L must"),
    ],
)
def test_bad_config(change, match):
    with pytest.raises(ValueError, match=match):
        figure6.run(SMALL._replace(**change))
