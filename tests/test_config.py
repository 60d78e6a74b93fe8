"""TapLabConfig: the paper's defaults, validation messages, scaling to other frame sizes."""
import pytest

from taplab_tf import config as C


def test_defaults_are_the_papers():
    cfg = C.TapLabConfig()
    assert cfg.model == "bl2" and cfg.gop == 12
    assert cfg.modules == ("ffw", "rgc", "rgfs")
    assert cfg.region_shape == (512, 512) and cfg.region_stride == 256
    assert cfg.thr_rgc == 30 and cfg.thr_rgfs == 3.6e7
    assert 0.0 <= cfg.alpha <= 1.0
    assert not cfg.rgc_accumulate and not cfg.rgfs_accumulate  # Eq. 3 and 4 as written


@pytest.mark.parametrize("kwargs, names", [
    (dict(gop=0), "gop"),
    (dict(gop=2.5), "gop"),
    (dict(region_stride=0), "region_stride"),
    (dict(region_shape=(0, 512)), "region_shape"),
    (dict(region_shape=(512,)), "region_shape"),
    (dict(alpha=1.5), "alpha"),
    (dict(alpha=-0.1), "alpha"),
    (dict(thr_rgc=-1), "thr_rgc"),
    (dict(thr_rgfs=-1), "thr_rgfs"),
    (dict(model="bl9"), "model"),
    (dict(modules="ffw,flow"), "modules"),
    (dict(modules="rgc"), "modules"),
])
def test_validation_names_the_setting(kwargs, names):
    with pytest.raises(C.ConfigError, match=names):
        C.TapLabConfig(**kwargs)


@pytest.mark.parametrize("text, expected", [
    ("none", ()), ("", ()), ("ffw", ("ffw",)), ("rgfs,ffw", ("ffw", "rgfs")),
    ("ffw+rgc+rgfs", ("ffw", "rgc", "rgfs")), (["FFW", "rgc"], ("ffw", "rgc")),
])
def test_parse_modules_canonical_order(text, expected):
    assert C.parse_modules(text) == expected


def test_modules_name():
    assert C.TapLabConfig(modules="none").modules_name == "none"
    assert C.TapLabConfig(modules="ffw,rgfs").modules_name == "ffw_rgfs"


def test_region_must_fit_frame():
    cfg = C.TapLabConfig()
    cfg.check_frame(1024, 2048)
    with pytest.raises(C.ConfigError, match="region_shape"):
        cfg.check_frame(256, 512)
    C.TapLabConfig(modules="ffw").check_frame(256, 512)  # no RGC, no region needed


def test_scaled_to_keeps_block_grid_and_fits():
    cfg = C.TapLabConfig().scaled_to(512, 1024)
    assert cfg.region_shape == (256, 256) and cfg.region_stride == 128
    for h, w in [(128, 256), (360, 480), (100, 130)]:
        s = C.TapLabConfig().scaled_to(h, w)
        assert s.region_shape[0] <= h and s.region_shape[1] <= w
        assert s.region_shape[0] % 16 == 0 and s.region_stride % 16 == 0
        s.check_frame(h, w)


def test_thr_rgfs_scales_with_area():
    cfg = C.TapLabConfig()
    assert cfg.scaled_thr_rgfs(1024, 2048) == pytest.approx(3.6e7)
    assert cfg.scaled_thr_rgfs(512, 1024) == pytest.approx(3.6e7 / 4)


def test_region_grid_covers_frame():
    grid = C.region_grid(1024, 2048, (512, 512), 256)
    assert len(grid) == 3 * 7 and grid[0] == (0, 0) and grid[-1] == (512, 1536)
    grid = C.region_grid(100, 130, (64, 64), 48)
    ys = sorted({y for y, _ in grid})
    xs = sorted({x for _, x in grid})
    assert ys == [0, 36] and xs == [0, 48, 66]
    with pytest.raises(C.ConfigError):
        C.region_grid(100, 100, (128, 64), 32)


def test_to_dict_round_trips():
    cfg = C.TapLabConfig(gop=6, modules="ffw,rgc", alpha=0.5)
    assert C.TapLabConfig(**cfg.to_dict()) == cfg


def test_region_grid_align_snaps_the_flush_start():
    grid = C.region_grid(70, 134, (48, 48), 24, align=4)
    assert sorted({y for y, _ in grid}) == [0, 20] and sorted({x for _, x in grid}) == [0, 24, 48, 72, 84]
    assert all(y % 4 == 0 and x % 4 == 0 for y, x in grid)
