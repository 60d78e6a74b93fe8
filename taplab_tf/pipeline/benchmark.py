"""Speed and accuracy of TapLab's module sets, measured side by side in one run (Table 5, 6, 3;
Fig. 1, 8, 11 of the paper).

Speed is end to end: the clock runs from compressed bytes to label maps, decoding and motion
vector / residual extraction included (the original code extracted motion offline and its FPS
left that out). Each config reports:
  fps            end to end: frames / wall-clock seconds of a warmed-up pass over whole GOPs;
  fps_model      model only: frames / seconds spent in phi, warp, correction and output
                 (decode and extraction excluded, as the paper's FPS);
  t_i_ms, t_p_ms mean time of I-frames and P-frames on the inference thread;
  eq2_ms         T_I / g + (1 - 1/g) T_P (Eq. 2) from the per-frame times, next to the
                 measured wall-clock mean `t_avg_ms` (the video should hold whole GOPs);
  split_ms       the time split per frame (decode_wait, phi, warp, correct, output) and the
                 reader thread's decode + extraction time.
Speed-ups are ratios to the per-frame config measured in the same run.
"""
from __future__ import annotations

import dataclasses
import os
import time
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from taplab_tf import config as config_lib
from taplab_tf import io_utils
from taplab_tf.pipeline import engine as engine_lib

SWEEPS = ("gop", "region", "alpha", "rgfs", "propagation")

CONFIGS = {
    "perframe": "none",
    "ffw": "ffw",
    "ffw_rgc": "ffw,rgc",
    "ffw_rgfs": "ffw,rgfs",
    "ffw_rgc_rgfs": "ffw,rgc,rgfs",
}

# The paper's Table 5 / Table 2 (Cityscapes val, 1024x2048, one GTX 1080 Ti): (mIoU %, FPS).
# Only figures quoted in the project's issues are listed; None where not quoted here.
PAPER_TABLE5 = {
    "bl1": {"perframe": (67.3, 33.2), "ffw": (None, 169.5), "ffw_rgc": (None, None),
            "ffw_rgfs": (None, None), "ffw_rgc_rgfs": (None, None)},
    "bl2": {"perframe": (73.6, 29.3), "ffw": (64.4, 160.4), "ffw_rgc": (68.2, 131.4),
            "ffw_rgfs": (69.4, 114.0), "ffw_rgc_rgfs": (70.6, 99.8)},
    "bl3": {"perframe": (77.3, 7.2), "ffw": (None, 67.2), "ffw_rgc": (None, None),
            "ffw_rgfs": (None, None), "ffw_rgc_rgfs": (None, None)},
}


def variant_note(cfg: config_lib.TapLabConfig) -> str:
    """', original-code variants: ...' for a table title where a variant is on, else ''."""
    on = [k for k in ("rgc_accumulate", "rgfs_accumulate") if getattr(cfg, k)]
    return f", original-code variants: {', '.join(on)}" if on else ""


def machine_info() -> Dict:
    from taplab_tf import ops, provenance
    info = provenance.machine_info()
    info["ops_backend"] = ops.backend()
    return info


def make_video(path: str, height: int, width: int, num_frames: int, gop: int, seed: int = 0,
               difficulty: float = 1.0, qscale: Optional[float] = None):
    """A synthetic street clip encoded to MPEG-4 Part 2 with GOP g; returns (path, labels)."""
    from taplab_tf.data import synthetic
    labels = []
    synthetic.encode_clip(path, height, width, num_frames, seed, difficulty, gop=gop,
                          qscale=qscale, on_frame=lambda fr: labels.append(fr.label))
    return path, np.stack(labels)


def time_config(model, cfg: config_lib.TapLabConfig, video: str, *, warmup: bool = True,
                engine_kwargs: Optional[Dict] = None) -> Dict:
    """Times one config end to end over `video` (after a warm-up pass that traces the steps)."""
    engine = engine_lib.TapLabEngine(model, cfg, **(engine_kwargs or {}))
    if warmup:  # trace every step (phi on frame and crop, warp, output) before timing
        for r in engine.segment_video(video):
            if r.pict_type == "P" and r.gop_position >= 2:
                break
    t0 = time.perf_counter()
    results = list(engine.segment_video(video))
    wall = time.perf_counter() - t0
    n = len(results)
    busy = [sum(r.timings.values()) for r in results]
    model_s = sum(sum(v for k, v in r.timings.items() if k != "decode_wait") for r in results)
    i_t = [b for b, r in zip(busy, results) if r.pict_type == "I"]
    p_t = [b for b, r in zip(busy, results) if r.pict_type == "P"]
    g = cfg.gop
    t_i = float(np.mean(i_t)) if i_t else float("nan")
    t_p = float(np.mean(p_t)) if p_t else float("nan")
    summary = engine_lib.summarize(results)
    return {
        "modules": cfg.modules_name, "frames": n, "gop": g,
        "fps": n / wall, "fps_model": n / model_s if model_s else float("nan"),
        "t_i_ms": 1000 * t_i, "t_p_ms": 1000 * t_p, "t_avg_ms": 1000 * wall / n,
        "eq2_ms": 1000 * (t_i / g + (1 - 1 / g) * t_p) if p_t else 1000 * t_i,
        "split_ms": summary["time_split_ms"], "reader_ms": summary["reader_ms"],
        "rgfs_fraction": summary["rgfs_fraction"], "rgc_corrections": summary["rgc_corrections"],
        "phi_graph": engine.phi_graph,
    }


def speed_table(model, model_name: str, video: str, base: config_lib.TapLabConfig,
                configs: Sequence[str] = tuple(CONFIGS),
                progress: Optional[Callable[[str], None]] = print,
                engine_kwargs: Optional[Dict] = None, repeats: int = 1) -> List[Dict]:
    """time_config for each named config; speed-ups relative to 'perframe' of the same run.

    With repeats > 1 the configs are timed in turn, round after round (so that a slow spell of
    a shared machine hits every config alike), and each config keeps its median round by FPS;
    `fps_rounds` lists every round's FPS."""
    if int(repeats) != repeats or repeats < 1:
        raise ValueError(f"repeats: must be a positive integer, got {repeats!r}")
    for name in configs:
        if name not in CONFIGS:
            raise ValueError(f"configs: unknown {name!r}; choose from {list(CONFIGS)}")
    runs: Dict[str, List[Dict]] = {name: [] for name in configs}
    for rep in range(int(repeats)):
        for name in configs:
            cfg = base.replace(modules=CONFIGS[name])
            if progress:
                progress(f"  timing {model_name} {name}"
                         + (f" (round {rep + 1}/{repeats})" if repeats > 1 else "") + " ...")
            row = time_config(model, cfg, video, engine_kwargs=engine_kwargs)
            runs[name].append(row)
            if progress:
                progress(f"    {row['fps']:.2f} fps end to end, {row['fps_model']:.2f} model only; "
                         f"T_I {row['t_i_ms']:.0f} ms, T_P {row['t_p_ms']:.0f} ms")
    rows = []
    for name in configs:
        by_fps = sorted(runs[name], key=lambda r: r["fps"])
        row = dict(by_fps[(len(by_fps) - 1) // 2])  # the median round (lower one of two)
        row["fps_rounds"] = [r["fps"] for r in runs[name]]
        row["config"] = name
        row["paper_miou"], row["paper_fps"] = PAPER_TABLE5.get(model_name, {}).get(
            name, (None, None))
        rows.append(row)
    ref = next((r for r in rows if r["config"] == "perframe"), None)
    paper_ref = PAPER_TABLE5.get(model_name, {}).get("perframe", (None, None))[1]
    for r in rows:
        r["speedup"] = r["fps"] / ref["fps"] if ref else None
        r["speedup_model"] = r["fps_model"] / ref["fps_model"] if ref else None
        r["paper_speedup"] = (r["paper_fps"] / paper_ref
                              if r["paper_fps"] and paper_ref else None)
    return rows


def accuracy_table(model, clips, dataset: str, base: config_lib.TapLabConfig,
                   configs: Sequence[str] = tuple(CONFIGS), seed: int = 0,
                   progress: Optional[Callable[[str], None]] = print,
                   engine_kwargs: Optional[Dict] = None) -> List[Dict]:
    """Video mIoU of each config on labelled clips (taplab_tf.pipeline.evaluate protocol)."""
    from taplab_tf.pipeline import evaluate
    rows = []
    for name in configs:
        cfg = base.replace(modules=CONFIGS[name])
        engine = engine_lib.TapLabEngine(model, cfg, **(engine_kwargs or {}))
        if progress:
            progress(f"  evaluating {name} on {len(clips)} clips ...")
        res = evaluate.evaluate_clips(engine, clips, dataset, cfg.gop, seed=seed, progress=None)
        rows.append({"config": name, "miou": res["miou"], "miou_all_frames":
                     res["miou_all_frames"], "per_distance_miou": res["per_distance_miou"],
                     "rgfs_fraction": res["rgfs_fraction"], "fps": res["fps"]})
        if progress:
            all_f = res["miou_all_frames"]
            progress(f"    mIoU {100 * res['miou']:.1f} (annotated)"
                     + (f", {100 * all_f:.1f} (all frames)" if all_f is not None else ""))
    return rows


def _fmt(v, pct=False, digits=1):
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "—"
    return f"{100 * v:.{digits}f}" if pct else f"{v:.{digits}f}"


def markdown_speed(rows: List[Dict], title: str) -> str:
    lines = [f"**{title}**", "",
             "| config | FPS end to end | speed-up | FPS model only | speed-up | T_I ms | T_P ms "
             "| Eq. 2 ms / measured | paper FPS | paper speed-up |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(
            f"| {r['config']} | {_fmt(r['fps'], digits=2)} | {_fmt(r['speedup'], digits=2)}x | "
            f"{_fmt(r['fps_model'], digits=2)} | {_fmt(r['speedup_model'], digits=2)}x | "
            f"{_fmt(r['t_i_ms'], digits=0)} | {_fmt(r['t_p_ms'], digits=0)} | "
            f"{_fmt(r['eq2_ms'], digits=0)} / {_fmt(r['t_avg_ms'], digits=0)} | "
            f"{_fmt(r['paper_fps'])} | "
            f"{_fmt(r['paper_speedup'], digits=2) + 'x' if r['paper_speedup'] else '—'} |")
    return "\n".join(lines)


def markdown_accuracy(rows: List[Dict], model_name: str, title: str) -> str:
    lines = [f"**{title}**", "",
             "| config | mIoU (annotated) | mIoU (all frames) | RGFS keyframes | paper mIoU |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for r in rows:
        paper = PAPER_TABLE5.get(model_name, {}).get(r["config"], (None, None))[0]
        lines.append(f"| {r['config']} | {_fmt(r['miou'], pct=True)} | "
                     f"{_fmt(r['miou_all_frames'], pct=True)} | "
                     f"{_fmt(r['rgfs_fraction'], pct=True)}% | {_fmt(paper)} |")
    return "\n".join(lines)


def plot_miou_vs_fps(speed_rows, acc_rows, model_name, path):
    """Fig. 1-like: mIoU vs speed-up for our configs and the paper's. Ours use the mIoU over all
    frames where every frame is labelled (synthetic data: far more pixels than the annotated
    frames alone), else the annotated frames'; the axis label says which."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
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
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
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
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
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


def write_json(obj, path):
    def default(o):
        if isinstance(o, (np.floating, np.integer)):
            return o.item()
        if dataclasses.is_dataclass(o):
            return dataclasses.asdict(o)
        return str(o)
    io_utils.write_json(path, obj, indent=2, default=default)


def _savefig(fig, path):
    """A plot written whole or not at all (the format follows path's extension)."""
    with io_utils.atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=110, format=os.path.splitext(path)[1][1:] or None)


def run_sweep(sweep: str, model, video: str, cfg: config_lib.TapLabConfig, out_dir: str, *,
              clips=None, acc_model=None, dataset: str = "synthetic", seed: int = 0,
              progress: Optional[Callable[[str], None]] = print,
              engine_kwargs: Optional[Dict] = None) -> List[Dict]:
    """One sweep of the paper: 'gop' (Table 6, Fig. 8), 'region' (Table 4), 'alpha' (Fig. 11),
    'rgfs' (keyframe fraction vs mIoU vs FPS), 'propagation' (Table 3). Speed with `model` on
    `video` (engines built with `engine_kwargs`, as speed_table's); accuracy with `acc_model` on
    `clips` where given (alpha needs them)."""
    kw = dict(engine_kwargs or {})
    if sweep not in SWEEPS:
        raise ValueError(f"sweep: unknown {sweep!r}; choose from {list(SWEEPS)}")
    if sweep == "alpha" and not clips:
        raise ValueError("sweep alpha measures accuracy: it needs labelled clips")
    out = out_dir
    model_name = cfg.model

    from taplab_tf.pipeline import evaluate
    from taplab_tf.pipeline.engine import TapLabEngine

    def acc_result(engine, gop):
        return evaluate.evaluate_clips(engine, clips, dataset, gop, seed=seed, progress=None)

    def acc(engine, gop):
        return acc_result(engine, gop)["miou"]

    rows = []
    if sweep == "gop":  # Table 6 / Fig. 8
        from third_party.compressed_video import encode_video, open_compressed
        with open_compressed(video, residual=None) as v:
            frames = [f.image for f in v]
        for g in (3, 6, 9, 12):
            path = os.path.join(out, f"sweep_gop{g}.avi")
            encode_video(frames, path, gop=g)
            speed = speed_table(model, model_name, path, cfg.replace(gop=g),
                                ["perframe", "ffw", "ffw_rgc_rgfs"], progress=None,
                                engine_kwargs=kw)
            row = {"gop": g, **{f"speedup_{r['config']}": r["speedup"] for r in speed},
                   **{f"fps_{r['config']}": r["fps"] for r in speed}}
            if clips:
                for name in ("ffw", "ffw_rgc_rgfs"):
                    eng = TapLabEngine(acc_model, cfg.replace(gop=g, modules=CONFIGS[name]))
                    row[f"miou_{name}"] = acc(eng, g)
            if progress:
                progress(f"  GOP {g}: {row}")
            rows.append(row)
        plot_sweep(rows, "gop", [("speedup_ffw", "ffw speed-up"),
                                   ("speedup_ffw_rgc_rgfs", "ffw+rgc+rgfs speed-up")],
                     os.path.join(out, "sweep_gop_speed.png"), "GOP", "GOP sweep (Fig. 8)")
        if clips:
            plot_sweep(rows, "gop", [("miou_ffw", "ffw mIoU"),
                                       ("miou_ffw_rgc_rgfs", "ffw+rgc+rgfs mIoU")],
                         os.path.join(out, "sweep_gop_miou.png"), "GOP", "GOP sweep (Table 6)")
    elif sweep == "region":  # Table 4
        for shape, stride in (((256, 256), 128), ((384, 384), 192), ((512, 512), 256),
                              ((512, 512), 128), ((768, 768), 256)):
            c = cfg.replace(modules="ffw,rgc", region_shape=shape, region_stride=stride)
            row = {"region_shape": list(shape), "region_stride": stride,
                   "fps": time_config(model, c, video, engine_kwargs=kw)["fps"]}
            if clips:
                row["miou"] = acc(TapLabEngine(acc_model, c), c.gop)
            if progress:
                progress(f"  {row}")
            rows.append(row)
    elif sweep == "alpha":  # Fig. 11
        for alpha in (0.0, 0.25, 0.5, 0.75, 1.0):
            c = cfg.replace(modules="ffw,rgc", alpha=alpha)
            row = {"alpha": alpha, "miou": acc(TapLabEngine(acc_model, c), c.gop)}
            if progress:
                progress(f"  {row}")
            rows.append(row)
        plot_sweep(rows, "alpha", [("miou", "ffw+rgc mIoU")],
                     os.path.join(out, "sweep_alpha.png"), "alpha", "alpha sweep (Fig. 11)")
    elif sweep == "rgfs":
        for factor in (0.25, 0.5, 1.0, 2.0, 4.0):
            c = cfg.replace(modules="ffw,rgfs", thr_rgfs=cfg.thr_rgfs * factor)
            t = time_config(model, c, video, engine_kwargs=kw)
            # keyframe_fraction: on the timed clip (with fps); the accuracy clips have their own.
            row = {"thr_rgfs": c.thr_rgfs, "keyframe_fraction": t["rgfs_fraction"],
                   "fps": t["fps"]}
            if clips:
                r = acc_result(TapLabEngine(acc_model, c), c.gop)
                row.update(miou=r["miou"], miou_all_frames=r["miou_all_frames"],
                           keyframe_fraction_accuracy_clips=r["rgfs_fraction"])
            if progress:
                progress(f"  {row}")
            rows.append(row)
    elif sweep == "propagation":  # Table 3
        for prop in ("itp", "flow_farneback", "flow_dis", "mv"):
            c = cfg.replace(modules="ffw")
            t = time_config(model, c, video, engine_kwargs={**kw, "propagation": prop})
            row = {"propagation": prop, "fps": t["fps"],
                   "t_flow_ms": t["split_ms"].get("flow", 0.0),
                   "t_warp_ms": t["split_ms"].get("warp", 0.0), "t_total_ms": t["t_avg_ms"]}
            if clips:
                row["miou"] = acc(TapLabEngine(acc_model, c, propagation=prop), c.gop)
            if progress:
                progress(f"  {row}")
            rows.append(row)
    return rows
