"""`gdx simulate` and `gdx agencies`: clear one-line errors for bad input; truth and report dumps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streams.cli import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["simulate", "--rate", "0"], "rate 0.0 events/s is not positive"),
        (["simulate", "--rate", "-3"], "is not positive"),
        (["simulate", "--agency", "dopa,rd"], "unknown agency rd"),
        (["simulate", "--scale", "500"], "scale 500 persons is out of range"),
        (["simulate", "--scale", "2000000"], "out of range"),
        (["simulate", "--duration", "0"], "duration 0.0 s is not positive"),
        (["simulate", "--fault-duplicate", "1.5"], "fault rate duplicate=1.5 is not a probability"),
        (["agencies", "truth", "--agency", "rd"], "unknown agency 'rd'"),
    ],
)
def test_bad_input_gets_one_clear_line(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main([*argv, "--store-dir", str(tmp_path)] if argv[0] == "simulate" else argv)
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert err.startswith("gdx: ") and message in err and "\n" not in err


def test_missing_stores_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["agencies", "truth", "--agency", "dol", "--store-dir", str(tmp_path)]) == 1
    assert "no store for dol" in capsys.readouterr().err
    assert main(["simulate", "--publish-only", "--store-dir", str(tmp_path)]) == 1
    assert "no store for dopa" in capsys.readouterr().err


def test_simulate_then_dump_truth_and_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "report.json"
    code = main(
        [
            "simulate",
            "--no-publish",
            "--scale",
            "1000",
            "--count",
            "40",
            "--rate",
            "10000",
            "--fault-malformed",
            "0.2",
            "--store-dir",
            str(tmp_path),
            "--report",
            str(report),
        ]
    )
    assert code == 0
    final = json.loads(report.read_text())
    assert sum(final["life_events"].values()) == 40
    malformed = sum(a["faults"].get("malformed", 0) for a in final["agencies"])
    assert malformed > 0
    capsys.readouterr()
    assert main(["agencies", "truth", "--agency", "dopa", "--dataset", "person", "--store-dir", str(tmp_path)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    dopa = next(a for a in final["agencies"] if a["agency"] == "dopa")
    assert lines and all(item["dataset"] == "person" for item in lines)
    assert len(lines) >= 1_000
    assert len({item["key"] for item in lines}) == len(lines)
    assert main(["agencies", "report", "--store-dir", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out)[0] == dopa
    code = main(["simulate", "--no-publish", "--scale", "2000", "--count", "0", "--store-dir", str(tmp_path)])
    assert code == 1 and "hold another population" in capsys.readouterr().err


def test_a_long_run_never_runs_out_of_adults(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Deaths take adults and births bring children who do not grow up during a run: without adults
    entering the registry, the smallest population had no life event left after about 10,000."""
    report = tmp_path / "report.json"
    code = main(
        [
            "simulate",
            "--no-publish",
            "--scale",
            "1000",
            "--count",
            "15000",
            "--rate",
            "1000000",
            "--store-dir",
            str(tmp_path),
            "--report",
            str(report),
        ]
    )
    assert code == 0, capsys.readouterr().err
    events = json.loads(report.read_text())["life_events"]
    assert sum(events.values()) == 15_000 and events["dopa.add-name"] > 0 and events["dopa.death"] > 0
