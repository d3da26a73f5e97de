"""Tables printed to a pipe or a file keep every cell whole (rich assumes 80 columns
there and would cut ``classification`` to ``classificati…``)."""

from __future__ import annotations

from conftest import cli


def test_tables_to_a_pipe_are_not_cut():
    out = cli("tasks")
    assert out.returncode == 0, out.stderr
    assert "…" not in out.stdout
    for word in ("classification", "instance-segmentation", "ce wce dice lovasz dpce ssim focal",
                 "reg_rcnn (i, u, e, 1)"):
        assert word in out.stdout
