"""analyze on a bias.csv: the table from the committed run, and a non-numeric cell refused by file, line
and column (a results directory is data)."""

import shutil
from pathlib import Path

from bench.cli.main import main

COMMITTED = Path(__file__).resolve().parents[1] / "results" / "cpu" / "estimator-bias-epyc-20261204"


def test_the_committed_bias_run_renders_its_table(tmp_path):
    assert main(["analyze", str(COMMITTED), "--out", str(tmp_path)]) == 0
    report = (tmp_path / "report.md").read_text()
    assert "Estimators against weight sampling" in report and "| lenet5 | report | 0.1 | vmap_lrt |" in report


def test_a_non_numeric_cell_is_one_line_naming_file_line_and_column(tmp_path, capsys):
    lines = (COMMITTED / "bias.csv").read_text().splitlines()
    header = lines[0].split(",")
    row = lines[3].split(",")
    row[header.index("excess")] = "huge"
    lines[3] = ",".join(row)
    shutil.copytree(COMMITTED, tmp_path / "run")
    (tmp_path / "run" / "bias.csv").write_text("\n".join(lines) + "\n")
    assert main(["analyze", str(tmp_path / "run"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bias.csv line 4" in err and "column excess" in err
