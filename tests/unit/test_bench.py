"""The bench's own rules: what is called unstable, that a slowed baseline is, that the machine
facts are read back, that heap work is counted, and that README shows what was measured."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from bench import compare, machine, readme, report, soak
from bench.core_figures import _heap_work
from bench.figures import Row
from bench.harness import ROOT
from bench.stats import SPREAD_LIMIT, Measured, cpu_hog, rounds, verdict


def test_spread_is_the_range_over_the_median() -> None:
    m = Measured((90.0, 100.0, 110.0))
    assert (m.median, m.low, m.high) == (100.0, 90.0, 110.0)
    assert m.spread == pytest.approx(0.2)
    assert m.stable  # exactly at the limit
    assert not Measured((90.0, 100.0, 111.0)).stable
    assert Measured.once(5.0).spread == 0.0


def test_unstable_is_neither_met_nor_missed() -> None:
    steady, moving = Measured((10.0, 10.5, 10.2)), Measured((10.0, 14.0, 10.2))
    assert verdict(True, steady, steady) == "met"
    assert verdict(False, steady, steady) == "missed"
    assert verdict(None, steady, None) == "not judged"
    assert verdict(True, steady, moving) == "unstable"
    assert verdict(False, moving, steady) == "unstable"


def _pinned_work_rate() -> float:
    """Iterations per second of a fixed busy loop in a process pinned to core 0."""
    code = (
        "import os, time; os.sched_setaffinity(0, {0}); t = time.perf_counter()\n"
        "for _ in range(10_000_000): pass\n"
        "print(time.perf_counter() - t)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return 10_000_000 / float(out.stdout)


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="pins to core 0 beside the test process")
def test_a_baseline_slowed_by_a_hog_comes_out_unstable_not_met() -> None:
    """The acceptance's deliberate slowdown: a CPU hog on the baseline's core for its second
    sample halves that sample; the row is then unstable even though the medians say met."""
    base, ours = rounds(
        "hogged figure", _pinned_work_rate, _pinned_work_rate, repeats=3, hog="hogged"
    )
    others = [base.samples[0], base.samples[2]]
    assert base.samples[1] < 0.75 * max(others), base.samples  # the hog really slowed it
    assert base.spread > SPREAD_LIMIT
    row = Row("hogged figure", ours, "/s", base, "/s", "x", met=True)
    assert row.verdict == "unstable"


def test_a_busy_process_is_named_in_the_machine_facts() -> None:
    with cpu_hog(0):
        busy = machine.busy_processes(0.5, threshold=50.0)
    assert any(name.startswith("python") for name in busy), busy


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs a second core to pin to")
def test_the_cores_a_process_ran_on_are_read_back() -> None:
    watch = machine.CoreWatch()
    watch.start()
    child = subprocess.Popen(
        [sys.executable, "-c", "import time\nt = time.time()\nwhile time.time() - t < 0.6: pass"],
        preexec_fn=lambda: os.sched_setaffinity(0, {1}),
    )
    watch.track("pinned child", child.pid)
    child.wait()
    time.sleep(0.1)
    seen = watch.stop()
    assert seen["pinned child"] == {"ran_on": [1], "allowed": ["1"]}


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs a second core to pin to")
def test_a_thread_untracked_is_not_charged_with_where_it_runs_after() -> None:
    """The bench pins its main thread for the core figures, then lets it go: only the pinned
    stretch is reported (it once read "0, 1")."""
    watch = machine.CoreWatch()
    watch.start()
    before = os.sched_getaffinity(0)
    me = os.getpid(), threading.get_native_id()
    try:
        os.sched_setaffinity(0, {1})
        watch.track("pinned stretch", *me)
        _spin(0.4)
        watch.untrack(*me)
        os.sched_setaffinity(0, {0})
        _spin(0.4)
    finally:
        os.sched_setaffinity(0, before)
    assert watch.stop()["pinned stretch"]["ran_on"] == [1]


def test_machine_facts_name_the_cpu_and_the_load() -> None:
    facts = machine.facts()
    assert facts["cpu"] and facts["cpu"] != "unknown"
    assert len(facts["load_average"]) == 3
    assert facts["cores"] == os.cpu_count()


def test_heap_work_is_counted_and_grows_as_log_n() -> None:
    small, _ = _heap_work(2_000, seed=1)
    large, _ = _heap_work(20_000, seed=1)
    log_ratio = math.log(20_000) / math.log(2_000)
    assert small > math.log2(2_000)  # every pop sifts: at least log2 n comparisons
    assert 1.0 < large / small <= log_ratio * 1.1


def _report(rows: list[Row]) -> dict[str, object]:
    """A report as ``report.write`` makes it, from real rows, without running a bench."""
    ran_on = {"voxgate": {"ran_on": [0], "allowed": ["0"]}}
    machine_facts = {**machine.facts(), "ran_on": ran_on}
    machine_facts.update(load_before=[0.1, 0.2, 0.3], load_after=[0.4, 0.5, 0.6])
    machine_facts.update(busy_before=[], busy_after=["beam.smp (1) 3%"])
    return {
        "when": "2026-11-26T21:00:00+00:00",
        "machine": machine_facts,
        "scale": 1.0,
        "repeats": 3,
        "spread_limit": SPREAD_LIMIT,
        "figures": [report.as_dict(r) for r in rows],
    }


ROWS = [
    Row(
        "steady",
        Measured((100.0, 104.0, 98.0)),
        "/s",
        Measured((200.0, 201.0, 199.0)),
        "/s",
        ">= 40%",
        True,
        "a note",
    ),
    Row(
        "moving",
        Measured((100.0, 150.0, 98.0)),
        "ms",
        Measured((1.0, 1.0, 1.0)),
        "ms",
        "<= 5 ms",
        True,
    ),
]


def test_readme_shows_latest_json_byte_for_byte() -> None:
    """README's section is the table of latest.json exactly; with no full run recorded, it
    says so and shows no figure."""
    assert readme.generated(readme.README.read_text()) == readme.expected()
    if report.LATEST.exists():
        latest = json.loads(report.LATEST.read_text())
        assert latest["scale"] == 1 and latest["repeats"] >= 3  # an official run


def test_verdicts_in_a_report_follow_the_rule() -> None:
    """No hand-made verdicts: a row whose samples spread past the limit says unstable."""
    reports = [_report(ROWS)]
    if report.LATEST.exists():
        reports.append(json.loads(report.LATEST.read_text()))
    for one in reports:
        for figure in one["figures"]:  # type: ignore[attr-defined]
            spreads = [m["spread"] for m in (figure["value"], figure["baseline"]) if m]
            if any(s > SPREAD_LIMIT for s in spreads):
                assert figure["verdict"] == "unstable", figure["figure"]
            else:
                assert figure["verdict"] in ("met", "missed", "not judged"), figure["figure"]
    assert [f["verdict"] for f in reports[0]["figures"]] == ["met", "unstable"]  # type: ignore[index]


def test_readme_update_rewrites_only_its_section(tmp_path: Path) -> None:
    fake_latest = tmp_path / "latest.json"
    fake_latest.write_text(json.dumps(_report(ROWS)))
    page = tmp_path / "README.md"
    page.write_text(f"# top\n\n{readme.BEGIN}\nSTALE-CONTENT\n{readme.END}\n\n## after\n")
    readme.update(page, fake_latest)
    text = page.read_text()
    assert "STALE-CONTENT" not in text and "| steady | 100 /s (98.0-104) |" in text
    assert "| moving | 100 ms (98.0-150) |" in text and "**unstable**" in text
    assert "beam.smp (1) 3%" in text and "voxgate on 0" in text
    assert text.startswith("# top\n\n") and text.endswith(f"{readme.END}\n\n## after\n")
    assert readme.generated(text) == report.table(_report(ROWS))
    readme.update(page, tmp_path / "none.json")
    assert readme.generated(page.read_text()) == readme.PLACEHOLDER


def test_two_runs_agree_when_each_median_is_inside_the_others_range() -> None:
    a = {"median": 100.0, "samples": [95.0, 100.0, 104.0]}
    assert compare.agree(a, {"median": 102.0, "samples": [98.0, 102.0, 110.0]})
    assert not compare.agree(a, {"median": 106.0, "samples": [99.0, 106.0, 110.0]})


def test_two_runs_agree_within_a_one_percent_or_printed_step_slack() -> None:
    # Idle session memory, runs 1 and 2 of 2026-11-26: 17.1 KB (17.1-17.2) and 17.1 KB
    # (17.0-17.3), baselines 15.0 and 14.9 KB: apart in the third decimal only.
    assert compare.agree(
        {"median": 17.14, "samples": [17.213, 17.116, 17.14]},
        {"median": 17.052, "samples": [17.052, 17.012, 17.262]},
    )
    assert compare.agree(
        {"median": 14.951, "samples": [14.946, 14.974, 14.951]},
        {"median": 14.945, "samples": [14.947, 14.94, 14.945]},
    )
    assert compare.slack(2_000.0) == 20.0 and compare.slack(0.36) == 0.005
    # A move past the slack still disagrees, however tight both runs were.
    assert not compare.agree(
        {"median": 17.14, "samples": [17.13, 17.14, 17.15]},
        {"median": 17.5, "samples": [17.49, 17.5, 17.51]},
    )


def _logins(rates: tuple[float, ...], bare: tuple[float, ...]) -> Row:
    return Row("logins/s", Measured(rates), "/s", Measured(bare), "/s", ">= 60%", False)


def test_runs_are_judged_on_their_ratios_to_the_same_run_baseline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's two runs an hour apart: 2,351 and 2,500 logins/s disagree as rates, while
    the ratio to the bare server held at 0.52 and 0.50: they agree. A ratio that fell to 0.40
    disagrees however the rates moved."""
    first = _logins((2_340.0, 2_351.0, 2_360.0), (4_500.0, 4_521.0, 4_540.0))  # 0.52
    second = _logins((2_490.0, 2_500.0, 2_510.0), (4_980.0, 5_000.0, 5_020.0))  # 0.50
    fallen = _logins((2_000.0, 2_010.0, 2_020.0), (5_000.0, 5_025.0, 5_050.0))  # 0.40
    assert not compare.agree(_m(first.value), _m(second.value))  # as rates: no
    runs = {}
    for name, row in (("first", first), ("second", second), ("fallen", fallen)):
        runs[name] = tmp_path / f"{name}.json"
        runs[name].write_text(json.dumps(_report([row])))
    assert compare.main(runs["first"], runs["second"]) == 0
    assert "| ratio | yes |" in capsys.readouterr().out
    assert compare.main(runs["first"], runs["fallen"]) == 1
    assert "| ratio | **no** |" in capsys.readouterr().out


def test_a_row_measured_once_is_judged_on_its_goal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One sample has no range: the soak's drain took 0.31 s in one run and 0.50 s in the
    next, both under the 5 s goal (agree); 9.2 s missed it (disagree)."""

    def drain(seconds: float) -> Row:
        return Row("drain", Measured.once(seconds), "s", None, "", "<= 5 s", seconds <= 5)

    runs = {}
    for name, seconds in (("quick", 0.31), ("also", 0.50), ("slow", 9.2)):
        runs[name] = tmp_path / f"{name}.json"
        runs[name].write_text(json.dumps(_report([drain(seconds)])))
    assert compare.main(runs["quick"], runs["also"]) == 0
    assert "| goal | yes |" in capsys.readouterr().out
    assert compare.main(runs["quick"], runs["slow"]) == 1
    assert "| goal | **no** |" in capsys.readouterr().out


def _m(m: Measured) -> dict[str, object]:
    return {"median": m.median, "samples": list(m.samples)}


def test_an_official_run_keeps_the_one_it_replaces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(report, "RESULTS", tmp_path)
    monkeypatch.setattr(report, "LATEST", tmp_path / "latest.json")
    monkeypatch.setattr(report, "PREVIOUS", tmp_path / "previous.json")
    facts = _report([])["machine"]
    report.write(ROWS, facts, 3, official=True)
    first = json.loads((tmp_path / "latest.json").read_text())
    report.write(ROWS[:1], facts, 3, official=True)
    assert json.loads((tmp_path / "previous.json").read_text()) == first
    report.write(ROWS, facts, 3, official=False)  # a trial: no move
    assert json.loads((tmp_path / "previous.json").read_text()) == first
    assert len(json.loads((tmp_path / "latest.json").read_text())["figures"]) == 1


def test_the_last_two_committed_runs_agree_as_the_docs_say_to_check() -> None:
    """The acceptance of two consecutive runs, kept standing: the command docs/architecture.md
    shows, verbatim, on the committed previous.json and latest.json."""
    done = subprocess.run(
        [".venv/bin/python", "-m", "bench.compare"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("| yes |") >= 3  # the memory, heap and session rows at least


def test_compare_refuses_what_is_not_a_report_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text('{"figures": [{"value": null}], "when": 1}')
    for path, said in (
        (tmp_path / "missing.json", "no such file"),
        (tmp_path / "x.json", "not a bench report"),
        (ROOT / "README.md", "not a bench report"),
    ):
        with pytest.raises(compare.NotAReport, match=said):
            compare.load(path)


def _checkpoints(rss: list[int]) -> list[soak.Checkpoint]:
    return [soak.Checkpoint(i * 5.0, i * 1_000.0, kb, 40) for i, kb in enumerate(rss)]


def test_the_soak_calls_a_steady_leak_missed_and_scatter_flat() -> None:
    """A leak grows alike in every segment after the warm-up (a stable slope: missed); noise
    scatters the segments' slopes past their median (flat, printed unstable)."""
    leak = soak.segment_slopes(_checkpoints([100_000 + 50 * i for i in range(30)]), "rss_kb")
    assert leak == pytest.approx((500.0, 500.0, 500.0))  # 50 KB per 1,000 logins
    assert not soak._flat(leak, soak.FLAT_KB)
    assert Row("rss", Measured(leak), "KB", None, "", "flat", False).verdict == "missed"
    jitter = [100_000 + (300 if i % 3 == 0 else -200 if i % 3 == 1 else 0) for i in range(30)]
    noise = soak.segment_slopes(_checkpoints(jitter), "rss_kb")
    assert soak._flat(noise, soak.FLAT_KB)
    fds = soak.segment_slopes(_checkpoints([100_000] * 30), "fds")
    assert fds == (0.0, 0.0, 0.0) and soak._flat(fds, soak.FLAT_FDS)
