"""Reporting of the benchmarks: the paper's reference figures, Markdown tables, plots, JSON.

The measuring library (taplab_tf.pipeline.benchmark, taplab_tf.pipeline.rgfs_benchmark,
taplab_tf.models.profile) returns plain rows and imports nothing from here; the apps
(experiments.benchmark, benchmark_rgfs, benchmark_realtime, model_info) turn the rows into the
README's tables, the figures and the JSON they write. It lives in the package rather than in
experiments/ so that its tests need no app; nothing on the segmentation path imports it, and
matplotlib loads only when a plot is drawn.

    rows = add_paper_columns(benchmark.speed_table(model, "bl2", video, cfg), "bl2")
    print(markdown_speed(rows, "BL2 speed, 1024x2048"))
    write_json({"speed": rows, "machine": machine_info()}, "results/benchmark/benchmark.json")

The machine's description comes from taplab_tf.provenance (its one home).
"""
from __future__ import annotations

import dataclasses
import os
from typing import Dict, List, Optional, Sequence

import numpy as np

from taplab_tf import io_utils

# The paper's Table 5 / Table 2 (Cityscapes val, 1024x2048, one GTX 1080 Ti): (mIoU %, FPS) per
# module set (taplab_tf.pipeline.benchmark.CONFIGS). Only figures quoted in the project's issues
# are listed; None where not quoted here. 'perframe' is phi alone: Table 2's BL1/BL2/BL3 rows.
PAPER_TABLE5 = {
    "bl1": {"perframe": (67.3, 33.2), "ffw": (None, 169.5), "ffw_rgc": (None, None),
            "ffw_rgfs": (None, None), "ffw_rgc_rgfs": (None, None)},
    "bl2": {"perframe": (73.6, 29.3), "ffw": (64.4, 160.4), "ffw_rgc": (68.2, 131.4),
            "ffw_rgfs": (69.4, 114.0), "ffw_rgc_rgfs": (70.6, 99.8)},
    "bl3": {"perframe": (77.3, 7.2), "ffw": (None, 67.2), "ffw_rgc": (None, None),
            "ffw_rgfs": (None, None), "ffw_rgc_rgfs": (None, None)},
}


def paper_figures(model_name: str, config: str = "perframe"):
    """(mIoU %, FPS) of the paper for a model and module set; (None, None) where not quoted."""
    return PAPER_TABLE5.get(model_name, {}).get(config, (None, None))


def add_paper_columns(rows: List[Dict], model_name: str) -> List[Dict]:
    """Adds the paper's figures to speed rows (taplab_tf.pipeline.benchmark.speed_table), in
    place: paper_miou, paper_fps and paper_speedup (paper FPS over the paper's per-frame FPS).
    Returns the rows."""
    paper_ref = paper_figures(model_name)[1]
    for r in rows:
        r["paper_miou"], r["paper_fps"] = paper_figures(model_name, r["config"])
        r["paper_speedup"] = (r["paper_fps"] / paper_ref
                              if r["paper_fps"] and paper_ref else None)
    return rows


def machine_info() -> Dict:
    """taplab_tf.provenance.machine_info() and the backend of taplab_tf.ops the timings ran on."""
    from taplab_tf import ops, provenance
    info = provenance.machine_info()
    info["ops_backend"] = ops.backend()
    return info


def variant_note(cfg) -> str:
    """', original-code variants: ...' for a table title where a variant is on, else ''."""
    on = [k for k in ("rgc_accumulate", "rgfs_accumulate") if getattr(cfg, k)]
    return f", original-code variants: {', '.join(on)}" if on else ""


# -- Markdown ------------------------------------------------------------------------------------

def _fmt(v, pct=False, digits=1):
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "—"
    return f"{100 * v:.{digits}f}" if pct else f"{v:.{digits}f}"


def markdown_speed(rows: List[Dict], title: str) -> str:
    """The speed table of speed rows with their paper columns (add_paper_columns)."""
    lines = [f"**{title}**", "",
             "| config | FPS end to end | speed-up | FPS model only | speed-up | T_I ms | T_P ms "
             "| Eq. 2 ms / measured | phi-only bound ms (measured / bound) | paper FPS "
             "| paper speed-up |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(
            f"| {r['config']} | {_fmt(r['fps'], digits=2)} | {_fmt(r['speedup'], digits=2)}x | "
            f"{_fmt(r['fps_model'], digits=2)} | {_fmt(r['speedup_model'], digits=2)}x | "
            f"{_fmt(r['t_i_ms'], digits=0)} | {_fmt(r['t_p_ms'], digits=0)} | "
            f"{_fmt(r['eq2_ms'], digits=0)} / {_fmt(r['t_avg_ms'], digits=0)} | "
            f"{_fmt(r.get('eq2_bound_ms'), digits=0)} ({_fmt(r.get('bound_ratio'), digits=3)}) | "
            f"{_fmt(r['paper_fps'])} | "
            f"{_fmt(r['paper_speedup'], digits=2) + 'x' if r['paper_speedup'] else '—'} |")
    return "\n".join(lines)


def markdown_accuracy(rows: List[Dict], model_name: str, title: str) -> str:
    """The accuracy table of taplab_tf.pipeline.benchmark.accuracy_table's rows."""
    lines = [f"**{title}**", "",
             "| config | mIoU (annotated) | mIoU (all frames) | RGFS keyframes | paper mIoU |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for r in rows:
        paper = paper_figures(model_name, r["config"])[0]
        lines.append(f"| {r['config']} | {_fmt(r['miou'], pct=True)} | "
                     f"{_fmt(r['miou_all_frames'], pct=True)} | "
                     f"{_fmt(r['rgfs_fraction'], pct=True)}% | {_fmt(paper)} |")
    return "\n".join(lines)


def markdown_rgfs(report: Dict, title: str) -> str:
    """The README table of taplab_tf.pipeline.rgfs_benchmark.compare's report: per qscale, each
    run's keyframe fraction and mIoU."""
    f = report["fraction"]
    extra = list(report.get("extra_thresholds", {}))

    def cell(x):
        return f"{100 * x['fraction']:.1f}% / {100 * x['miou']:.1f}"
    base = f"{report['base_qscale']:g}"
    lines = [f"**{title}**", "",
             "| qscale | median P-frame sum \\|Res\\| (1024x2048) | online (causal) | online per "
             f"clip | fixed thr calibrated at qscale {base} | thr recalibrated at this qscale "
             "(oracle) | online - oracle mIoU | "
             + "".join(f"fixed thr {name} | " for name in extra) + "no RGFS mIoU |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | " + "---: | " * len(extra)
             + "---: |"]
    for row in report["rows"]:
        r = row["runs"]
        on = r["online"]
        per_clip = ", ".join(f"{100 * v:.1f}" for v in on["clip_fractions"])
        lines.append(
            f"| {row['qscale']:g} | {row['p_score_percentiles']['50']:.3g} | {cell(on)} | "
            f"{per_clip} | {cell(r['fixed'])} | {cell(r['recalibrated'])} | "
            f"{100 * (on['miou'] - r['recalibrated']['miou']):+.2f} | "
            + "".join(f"{cell(r[f'thr={name}'])} | " for name in extra)
            + f"{100 * r['ffw']['miou']:.1f} |")
    c = report["checks"]
    lines += ["", f"Cells: keyframes (% of P-frames) / mIoU (%, all frames). Target "
                  f"{100 * f:.0f}%. Online fraction on every clip and qscale within "
                  f"{100 * report['tolerance']:.0f} points: "
                  f"{'yes' if c['online_fraction_on_target'] else 'NO'} "
                  f"({100 * c['online_clip_fractions_range'][0]:.1f}-"
                  f"{100 * c['online_clip_fractions_range'][1]:.1f}%). Online mIoU minus the "
                  f"offline-calibrated threshold's at qscale {base}: "
                  f"{100 * c['online_miou_gap_at_base_qscale']:+.2f} points. Fixed threshold "
                  f"calibrated at qscale {base} ({report['thr_rgfs_calibrated_at_base']:.4g}): "
                  f"{100 * c['fixed_fraction_range'][0]:.1f}-"
                  f"{100 * c['fixed_fraction_range'][1]:.1f}% across qscales"
                  + "".join(f"; {name}: {100 * lo:.1f}-{100 * hi:.1f}%" for name, (lo, hi)
                            in c["extra_threshold_fraction_ranges"].items()) + "."]
    return "\n".join(lines)


# -- plots ---------------------------------------------------------------------------------------

def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _savefig(fig, path):
    """A plot written whole or not at all (the format follows path's extension)."""
    with io_utils.atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=110, format=os.path.splitext(path)[1][1:] or None)


def plot_miou_vs_fps(speed_rows, acc_rows, model_name, path):
    """Fig. 1-like: mIoU vs speed-up for our configs and the paper's. Ours use the mIoU over all
    frames where every frame is labelled (synthetic data: far more pixels than the annotated
    frames alone), else the annotated frames'; the axis label says which. speed_rows carry their
    paper columns (add_paper_columns)."""
    plt = _pyplot()
    all_frames = all(r.get("miou_all_frames") is not None for r in acc_rows)
    key = "miou_all_frames" if all_frames else "miou"
    acc = {r["config"]: r[key] for r in acc_rows}
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for r in speed_rows:
        if r["config"] in acc and acc[r["config"]] is not None:
            ax.scatter(r["speedup"], 100 * acc[r["config"]], color="tab:blue")
            ax.annotate(r["config"], (r["speedup"], 100 * acc[r["config"]]), fontsize=8,
                        xytext=(4, -10), textcoords="offset points")
        if r["paper_speedup"] and r["paper_miou"]:
            ax.scatter(r["paper_speedup"], r["paper_miou"], color="tab:red", marker="x")
            ax.annotate(r["config"], (r["paper_speedup"], r["paper_miou"]), fontsize=8,
                        color="tab:red", xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel("speed-up over per-frame phi")
    ax.set_ylabel("mIoU (%), ours " + ("over all frames" if all_frames else "annotated frames"))
    ax.set_title(f"{model_name}: ours (blue, synthetic, CPU) vs paper (red x, Cityscapes, 1080 Ti)",
                 fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _savefig(fig, path)
    plt.close(fig)


def plot_per_distance(acc_rows, path):
    """mIoU against the distance from the last I-frame, one line per config."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for r in acc_rows:
        ys = [None if v is None else 100 * v for v in r["per_distance_miou"]]
        ax.plot(range(len(ys)), [np.nan if y is None else y for y in ys], marker="o",
                label=r["config"])
    ax.set_xlabel("distance from the last I-frame (frames)")
    ax.set_ylabel("mIoU (%)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _savefig(fig, path)
    plt.close(fig)


def plot_sweep(rows, x_key, y_keys, path, xlabel, title):
    """One line per (key, label) of y_keys against rows' x_key."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, label in y_keys:
        ax.plot([r[x_key] for r in rows], [r.get(key) for r in rows], marker="o", label=label)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _savefig(fig, path)
    plt.close(fig)


# sweep -> its figures: (file name, x key, [(y key, label)], x label, title). A figure is drawn
# when every row has its y keys (the mIoU ones need the sweep's accuracy clips).
SWEEP_FIGURES = {
    "gop": [("sweep_gop_speed.png", "gop", [("speedup_ffw", "ffw speed-up"),
                                            ("speedup_ffw_rgc_rgfs", "ffw+rgc+rgfs speed-up")],
             "GOP", "GOP sweep (Fig. 8)"),
            ("sweep_gop_miou.png", "gop", [("miou_ffw", "ffw mIoU"),
                                           ("miou_ffw_rgc_rgfs", "ffw+rgc+rgfs mIoU")],
             "GOP", "GOP sweep (Table 6)")],
    "alpha": [("sweep_alpha.png", "alpha", [("miou", "ffw+rgc mIoU")], "alpha",
               "alpha sweep (Fig. 11)")],
}


def plot_pareto(rows: Sequence[Dict], path: str, title: str = "") -> str:
    """mIoU against FPS of every row of the Pareto sweep (benchmark.pareto_rows): one colour per
    module set, one marker per warp variant (paper FFW, refined, flow baselines), the GOP written
    beside each point, and the Pareto front as a line."""
    from taplab_tf.pipeline.benchmark import pareto_miou_key  # the front's own choice
    plt = _pyplot()
    key = pareto_miou_key(rows)
    colours = {"perframe": "black", "ffw": "tab:blue", "ffw_rgc": "tab:orange",
               "ffw_rgfs": "tab:green", "ffw_rgc_rgfs": "tab:red"}
    markers = {"-": "*", "paper": "o", "refined": "s", "flow_dis": "^", "flow_farneback": "v"}
    fig, ax = plt.subplots(figsize=(8, 5.5))
    seen = set()
    for r in rows:
        if r.get(key) is None:
            continue
        label = f"{r['config']} ({r['variant']})"
        ax.scatter(r["fps"], 100 * r[key], color=colours.get(r["config"], "gray"),
                   marker=markers.get(r["variant"], "x"), s=36,
                   label=None if label in seen else label,
                   facecolors="none" if r["variant"] == "paper" else None)
        seen.add(label)
        if r["config"] != "perframe":
            ax.annotate(str(r["gop"]), (r["fps"], 100 * r[key]), fontsize=6,
                        xytext=(3, 2), textcoords="offset points")
    front = sorted((r for r in rows if r.get("pareto") and r.get(key) is not None),
                   key=lambda r: r["fps"])
    if front:
        ax.plot([r["fps"] for r in front], [100 * r[key] for r in front], color="gray",
                linewidth=1, zorder=0, label="Pareto front")
    ax.set_xlabel("FPS end to end (numbers: GOP)")
    ax.set_ylabel("mIoU (%), " + ("all frames" if key == "miou_all_frames"
                                  else "annotated frames"))
    ax.set_title(title or "every config: mIoU against FPS", fontsize=9)
    ax.legend(fontsize=6, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _savefig(fig, path)
    plt.close(fig)
    return path


def markdown_pareto(rows: Sequence[Dict], title: str) -> str:
    """The Pareto sweep's rows as a table, fastest first; the front's rows in bold."""
    lines = [f"**{title}**", "",
             "| config | warp | GOP | FPS | mIoU annotated | mIoU all frames | RGFS % | front |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in sorted(rows, key=lambda r: -r["fps"]):
        b = "**" if r.get("pareto") else ""
        lines.append(f"| {r['config']} | {r['variant']} | {r['gop']} | {b}{_fmt(r['fps'], digits=2)}"
                     f"{b} | {_fmt(r.get('miou'), pct=True)} | {_fmt(r.get('miou_all_frames'), pct=True)}"
                     f" | {_fmt(r['rgfs_fraction'], pct=True, digits=0)} | "
                     f"{'yes' if r.get('pareto') else ''} |")
    return "\n".join(lines)


def plot_sweep_figures(sweep: str, rows: Sequence[Dict], out_dir: str) -> List[str]:
    """The paper's figures of one sweep's rows (taplab_tf.pipeline.benchmark.run_sweep) into
    out_dir: GOP (Fig. 8, and Table 6's mIoU with accuracy), alpha (Fig. 11), pareto (every
    config's mIoU against FPS, with accuracy); the other sweeps are tables only. Returns the
    paths written."""
    if sweep == "pareto":
        if not rows or all(r.get("miou") is None for r in rows):
            return []
        return [plot_pareto(rows, os.path.join(out_dir, "sweep_pareto.png"))]
    written = []
    for name, x_key, y_keys, xlabel, title in SWEEP_FIGURES.get(sweep, []):
        if not rows or any(key not in r for r in rows for key, _ in y_keys):
            continue
        path = os.path.join(out_dir, name)
        plot_sweep(rows, x_key, y_keys, path, xlabel, title)
        written.append(path)
    return written


# -- JSON ----------------------------------------------------------------------------------------

def _jsonable(o):
    if isinstance(o, (np.floating, np.integer, np.bool_)):
        return o.item()
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        return dataclasses.asdict(o)
    return str(o)


def write_json(obj, path: str, indent: Optional[int] = 2) -> str:
    """obj as JSON (NumPy scalars as numbers, dataclasses as dicts, anything else as its str),
    written whole or not at all. Returns path."""
    return io_utils.write_json(path, obj, indent=indent, default=_jsonable)
