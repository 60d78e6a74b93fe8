"""The motion analysis (pipeline.motion_analysis, experiments.analyze_motion) on a tiny
generated clip: its per-kind errors against the generator's true flow, per 16x16 macroblock
and per 8x8 block of a 4MV encode."""
import json
import math

import pytest

from taplab_tf.pipeline import motion_analysis as A
from taplab_tf.pipeline import motion_field as mf


@pytest.mark.parametrize("block", [16, 8])
def test_analyze_clip_reports_every_kind_on_its_grid(block):
    r = A.analyze_clip(128, 256, 6, seed=0, gop=12, refinements=("none", "fill"),
                       block_size=block)
    assert r["stats"]["block_size"] == block and r["stats"]["p_frames"] == 5
    assert set(r["refinements"]) == {"none", "fill"} and "dis" in r
    for summary in (r["refinements"]["none"], r["dis"]):
        shares = [summary[k]["share"] for k in mf.KINDS if k in summary]
        assert sum(shares) == pytest.approx(1.0)
    # the stream's vectors follow the true motion on textured blocks (a generator pan)
    textured = r["refinements"]["none"]["textured"]
    assert math.isfinite(textured["mean_px"]) and textured["median_px"] < 2.0
    assert r["ms_per_frame"]["fill"] > 0


def test_analyze_clip_refuses_other_grids():
    with pytest.raises(ValueError, match="block_size must be 16 or 8"):
        A.analyze_clip(64, 128, 3, block_size=4)


def test_analyze_motion_app_writes_its_json(tmp_path):
    from tests.test_apps import run
    out = tmp_path / "m.json"
    p = run("experiments.analyze_motion", "--height=64", "--width=128", "--num_frames=4",
            "--refinements=none,fill", "--mv_block_size=8", f"--output_json={out}")
    assert p.returncode == 0, p.stderr[-2000:]
    assert "8x8 blocks" in p.stdout
    assert json.load(open(out))["clips"][0]["stats"]["block_size"] == 8
