"""The GRPO suite: §5 claim rules, task mixes, the resumable multi-part run, its report and CLI."""

from __future__ import annotations

import json
import shutil

import pytest

from costsgd.experiments.grpo import mixes, report, section5, study, suite
from costsgd.experiments.grpo.task import WalkTask
from tests.helpers import rendered_markdown

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _cmp(saving, lo, hi, plateau=0.0):
    return {"drawn": {"saving": saving, "ci": (lo, hi)}, "plateau_vs_against": {"pp": plateau}}


def _claim(rule, floor=0.0):
    return section5.Claim("x", "", "", "grpo", "p*", "no sampling", rule, floor)


@pytest.mark.parametrize(
    ("rule", "cmp", "expected", "verdict", "marginal"),
    [
        ("study", _cmp(0.5, 0.4, 0.6, 0.5), 0.4, "reproduced", False),
        ("study", _cmp(0.5, 0.4, 0.6, -1.7), 0.4, "inconclusive", True),  # plateau loss
        ("study", _cmp(0.05, -0.1, 0.2), 0.4, "not reproduced", False),
        ("study", _cmp(0.5, 0.4, 0.6), 0.1, "inconclusive", False),  # no mechanism
        ("saves", _cmp(0.1, 0.05, 0.15), 0.0, "reproduced", False),
        ("saves", _cmp(0.1, 0.05, 0.15, -2.0), 0.0, "not reproduced", False),
        ("saves", _cmp(0.0, -0.1, 0.04), 0.0, "not reproduced", True),  # below the 5% floor
        ("saves", _cmp(0.05, -0.1, 0.2), 0.0, "inconclusive", False),
        ("no gain", _cmp(0.0, -0.1, 0.05), 0.0, "reproduced", False),
        ("no gain", _cmp(0.2, 0.1, 0.3), 0.0, "not reproduced", False),
        ("no gain", _cmp(0.05, -0.1, 0.2), 0.0, "inconclusive", False),
        ("adds", _cmp(0.1, 0.01, 0.2), 0.0, "reproduced", True),
        ("adds", _cmp(-0.1, -0.2, 0.0), 0.0, "not reproduced", False),
        ("adds", _cmp(0.03, -0.05, 0.12), 0.0, "inconclusive", False),
        ("worse than baseline", _cmp(-0.3, -0.5, -0.1), 0.0, "reproduced", False),
        ("worse than baseline", _cmp(0.3, 0.1, 0.5), 0.0, "not reproduced", False),
        ("worse than", _cmp(0.0, -0.2, 0.2), 0.0, "inconclusive", False),
    ],
)
def test_claim_rules(rule, cmp, expected, verdict, marginal):
    floor = 0.05 if cmp["drawn"]["ci"][1] == 0.04 else 0.0
    v = section5.apply_rule(_claim(rule, floor), cmp, expected)
    assert (v["verdict"], v["marginal"]) == (verdict, marginal), v["reason"]


def test_a_claim_without_a_baseline_gain_is_inconclusive_not_nan():
    v = section5.apply_rule(
        _claim("saves"),
        {"drawn": {"saving": None, "ci": None}, "plateau_vs_against": {"pp": 0.0}},
        0.3,
    )
    assert v["verdict"] == "inconclusive" and "gain" in v["reason"]


def test_every_claim_is_answered_by_a_part_of_the_paper_suite():
    parts = {p.name: p for p in suite.paper_suite().parts}
    assert len(section5.CLAIMS) == len({c.key for c in section5.CLAIMS})
    for c in section5.CLAIMS:
        assert c.rule in section5.RULES
        methods = parts[c.part].config.methods
        assert c.method in methods and c.against in methods, c.key
    settings = {p.name: p.config.setting for p in parts.values()}
    assert settings["grpo"] == "GRPO" and settings["zvf"] == "GRPO+ZVF"
    assert settings["cispo"] == "CISPO"


def test_paper_suite_runs_every_mix_in_both_settings_with_the_four_methods():
    s = suite.paper_suite()
    assert next(iter(mixes.MIXES)) == "default" and mixes.MIXES["default"] == study.DEFAULT_WALK
    assert len(mixes.MIXES) >= 4
    for name in mixes.MIXES:
        found = [p for p in s.parts if p.mix == name and p.config.setting in ("GRPO", "GRPO+ZVF")]
        assert sorted(p.config.setting for p in found) == ["GRPO", "GRPO+ZVF"], name
        for p in found:
            assert set(suite.MIX_METHODS) <= set(p.config.methods)
            assert len(p.config.seeds) >= 4
            assert p.config.task == mixes.MIXES[name]
        task = mixes.MIXES[name]
        # a mix differs from the default only in its difficulty mix
        same = ("modulus", "min_steps", "max_response_len")
        assert all(getattr(task, f) == getattr(study.DEFAULT_WALK, f) for f in same)
    targets = sorted(mixes.TARGET_ZERO_ADVANTAGE.values())
    assert (
        targets[0] <= 0.3
        and targets[-1] >= 0.75
        and set(mixes.TARGET_ZERO_ADVANTAGE) == set(mixes.MIXES)
    )
    # the default mix's parts are the default study's configuration, but for the regime runs
    grpo = s.part("grpo").config
    default = study.default_config()
    assert grpo.task == default.task and grpo.grpo == default.grpo and grpo.seeds == default.seeds
    assert grpo.grpo.token_budget == mixes.GRPO_TOKEN_BUDGET
    for p in s.parts:
        want = mixes.zvf_token_budget(p.mix) if p.config.setting == "GRPO+ZVF" else 700_000
        assert p.config.grpo.token_budget == want, p.name
    assert s.part("zvf").config.grpo.token_budget == 140_000
    # the headline runs first: the default mix's four mix methods in GRPO and GRPO+ZVF
    tiers = {(p.name, m): suite._tier(s, p.name, m) for p in s.parts for m in p.config.methods}
    assert {k for k, t in tiers.items() if t == 0} == {
        (part, m) for part in ("grpo", "zvf") for m in suite.MIX_METHODS
    }
    assert all(t == 2 for (part, _), t in tiers.items() if part == "cispo")
    with pytest.raises(ValueError, match="at least 4 seeds"):
        suite.paper_suite(seeds=(0, 1, 2))
    other = suite.paper_suite(seeds=(10, 11, 12, 13, 14, 15))
    assert other.part("mix-low-grpo").config.seeds == (10, 11, 12, 13)


def _runs_of(path):
    return study.load_results(path, checkpoint=True)["runs"]


@pytest.fixture(scope="module")
def smoke_folder(tmp_path_factory):
    """The smoke suite, run once through the CLI (a test that changes its files copies it)."""
    from costsgd.cli import main

    out = tmp_path_factory.mktemp("suite")
    assert main(["grpo-study", "--suite", "smoke", "--out", str(out), "--no-progress"]) == 0
    return out


def test_smoke_suite_end_to_end_resumes_and_refuses_another_configuration(
    smoke_folder, tmp_path, capsys, monkeypatch
):
    from costsgd.cli import main

    shutil.copytree(smoke_folder, tmp_path, dirs_exist_ok=True)
    argv = ["grpo-study", "--suite", "smoke", "--out", str(tmp_path), "--no-progress"]
    config = suite.smoke_suite()
    names = ["sweep", *(p.name for p in config.parts)]
    for n in names:
        res = study.load_results(tmp_path / f"{n}.json", checkpoint=True)
        assert res["complete"]
        if n != "sweep":
            assert res["lr"] == study.load_results(tmp_path / "sweep.json", checkpoint=True)["lr"]
            assert len(res["runs"]) == len(config.part(n).config.main_jobs())
            assert (tmp_path / f"{n}.md").exists()
    text = (tmp_path / "suite.md").read_text()
    assert "nan" not in text.lower()
    for c in section5.CLAIMS:
        assert f"| {report.markdown_literal(c.key)} |" in text
    for m in ("default", "no-cap"):
        assert f"| {m} | GRPO |" in text and f"| {m} | GRPO+ZVF |" in text
    summary = json.loads((tmp_path / "suite_summary.json").read_text())
    assert summary["complete"] and {c["verdict"] for c in summary["claims"]} <= {
        "reproduced",
        "not reproduced",
        "inconclusive",
    }
    assert (tmp_path / "suite_mixes.png").stat().st_size > 10_000
    # interrupted: drop the last three runs of one part; a rerun runs exactly those
    part = tmp_path / "zvf.json"
    full = study.load_results(part)
    study.save_results(dict(full, runs=full["runs"][:-3], complete=False), part)
    ran = []
    real = study._run_job
    monkeypatch.setattr(
        study, "_run_job", lambda c, lr, job, **k: ran.append(job) or real(c, lr, job, **k)
    )
    assert main(argv) == 0
    assert sorted(ran) == sorted(study.job_key(r) for r in full["runs"][-3:])
    assert len(_runs_of(part)) == len(full["runs"])
    # a saved part run with another configuration is refused before anything runs
    other = dict(full, config={**full["config"], "eval_prompts": 7})
    study.save_results(other, part)
    before = {n: _runs_of(tmp_path / f"{n}.json") for n in names}
    ran.clear()
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "zvf.json" in err and "differs in: eval_prompts" in err
    assert ran == [] and before == {n: _runs_of(tmp_path / f"{n}.json") for n in names}


def test_suite_report_states_missing_parts_as_gaps(smoke_folder):
    config = suite.smoke_suite()
    parts = suite.load_suite(smoke_folder, config)
    partial = {k: v for k, v in parts.items() if k not in ("cispo", "mix-no-cap-zvf")}
    s = suite.summarize_suite(config, partial)
    text = suite.format_suite_report(s)
    assert not s["complete"] and "Partial suite" in text and "nan" not in text.lower()
    rows = {c["key"]: c for c in s["claims"]}
    assert rows["cispo p*"]["verdict"] == "not run" and "cispo" in rows["cispo p*"]["reason"]
    assert "| no-cap | GRPO+ZVF | n/a (mix-no-cap-zvf.json has no finished baseline run)" in text


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--task", "sort"], "--task: not allowed with --suite"),
        (["--methods", "p*"], "--methods: not allowed with --suite"),
        (["--seeds", "0", "1"], "at least 4 seeds"),
        (["--workers", "0"], "--workers"),
    ],
)
def test_suite_options_are_validated_before_any_run(tmp_path, capsys, extra, message):
    from costsgd.cli import main

    argv = ["grpo-study", "--suite", "paper", "--out", str(tmp_path), "--no-progress", *extra]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_mix_tasks_are_valid_walks():
    for task in (*mixes.MIXES.values(), mixes.SMOKE_MIX):
        assert isinstance(task, WalkTask) and task.validate() is task


def test_headline_suite_reruns_the_headline_rows_on_other_seeds():
    h = suite.headline_suite()
    paper = suite.paper_suite()
    assert [p.name for p in h.parts] == ["grpo", "zvf"]
    for p in h.parts:
        assert p.config.methods == suite.MIX_METHODS
        assert not set(p.config.seeds) & set(paper.part(p.name).config.seeds)
        assert p.config.grpo == paper.part(p.name).config.grpo
    assert not set(h.sweep.sweep_seeds) & set(paper.sweep.sweep_seeds)
    planned = {p.name: p.config.methods for p in h.parts}
    rows = section5.evaluate({}, planned=planned)
    assert {r["key"] for r in rows} == {
        "grpo p*",
        "grpo p*_smooth",
        "zvf p*_smooth",
        "zvf p*",
        "p* vs 1[A≠0]",
        "zvf p* vs uniform",
    }
    assert {r["verdict"] for r in rows} == {"not run"}


def _rendered_tables(text: str):
    """The root of ``text`` as rendered, and each table's (header cells, [cells of each row])."""
    root = rendered_markdown(text)
    return root, [
        (t.findall("./thead/tr/th"), [r.findall("td") for r in t.findall("./tbody/tr")])
        for t in root.iter("table")
    ]


def test_claims_table_renders_every_statement_literally():
    rows = section5.evaluate({})  # every claim, each "not run": its statement and reason shown
    root, tables = _rendered_tables(section5.format_table(rows))
    ((header, cells),) = tables
    assert len(cells) == len(section5.CLAIMS)
    assert all(len(r) == len(header) for r in cells), "a statement's | split a table row"
    shown = ["".join(r[1].itertext()) for r in cells]
    assert shown == [f"{c.statement} ({c.where})" for c in section5.CLAIMS]
    assert [e for e in root.iter("em") if "p*" in "".join(e.itertext())] == []
