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
  eq2_bound_ms   Eq. 2 with everything but phi free: (T_I on the I- and RGFS frames, T_crop on
                 the RGC-corrected ones) / frames, from the measured phi and crop times and
                 RGFS fraction; `bound_ratio` = t_avg_ms / eq2_bound_ms (1.0: no overhead);
  split_ms       the time split per frame (decode_wait, phi, warp, correct, output) and the
                 reader thread's decode + extraction time.
Speed-ups are ratios to the per-frame config measured in the same run. The configs are timed
round-robin (taplab_tf.timing). The rows are plain dicts; the paper's figures, the Markdown
tables, the plots and the JSON are taplab_tf.reporting's (the apps call it).
"""
from __future__ import annotations

import os
import time
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from taplab_tf import config as config_lib
from taplab_tf import timing
from taplab_tf.pipeline import engine as engine_lib

SWEEPS = ("gop", "region", "alpha", "rgfs", "propagation", "pareto")
# The motion-field refinements the propagation sweep (Table 3) adds beside the paper's FFW.
MV_REFINEMENTS = ("fill", "model", "model+median", "fill+model+median+confidence")
# The Pareto sweep's FFW variants: the paper's gather, and the best refined warp of the
# synthetic Table 3 (README, "Propagation closer to per-frame").
FFW_VARIANTS = {"paper": dict(warp_interpolation="nearest", mv_refinement="none"),
                "refined": dict(warp_interpolation="bilinear", mv_refinement="fill",
                                mv_block_size=8)}
PARETO_GOPS = (3, 6, 9, 12)
PARETO_FLOWS = ("flow_dis", "flow_farneback")

CONFIGS = {
    "perframe": "none",
    "ffw": "ffw",
    "ffw_rgc": "ffw,rgc",
    "ffw_rgfs": "ffw,rgfs",
    "ffw_rgc_rgfs": "ffw,rgc,rgfs",
    # FFW (and all three) with the logits themselves warped and blended every frame, as before
    # FFW's chain was held as an index map into the keyframe's logits (engine
    # indexed_ffw=False): same labels, the cost of a propagated frame side by side.
    "ffw_materialized": "ffw",
    "ffw_rgc_rgfs_materialized": "ffw,rgc,rgfs",
}
# Engine settings of a config beyond its modules.
CONFIG_ENGINE_KWARGS = {"ffw_materialized": {"indexed_ffw": False},
                        "ffw_rgc_rgfs_materialized": {"indexed_ffw": False}}


def config_engine_kwargs(name: str, engine_kwargs: Optional[Dict] = None) -> Dict:
    """The engine keyword arguments of the named config over the run's own."""
    return {**(engine_kwargs or {}), **CONFIG_ENGINE_KWARGS.get(name, {})}

def make_video(path: str, height: int, width: int, num_frames: int, gop: int, seed: int = 0,
               difficulty: float = 1.0, qscale: Optional[float] = None, mv4: bool = False):
    """A synthetic street clip encoded to MPEG-4 Part 2 with GOP g (mv4: 4MV allowed); returns
    (path, labels)."""
    from taplab_tf.data import synthetic
    labels = []
    synthetic.encode_clip(path, height, width, num_frames, seed, difficulty, gop=gop,
                          qscale=qscale, mv4=mv4, on_frame=lambda fr: labels.append(fr.label))
    return path, np.stack(labels)


def make_video_apart(*args, **kwargs):
    """make_video in a separate (spawned) process, for a process that will time afterwards.
    Rendering and encoding a large clip leaves this process's allocator in a state that slows
    the small steps between phi calls for minutes after (measured at 1024x2048: FFW 30 FPS with
    a 10 ms output step after rendering here, 48 FPS with 4.7 ms in a process that did not)."""
    import concurrent.futures
    import multiprocessing
    with concurrent.futures.ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(make_video, *args, **kwargs).result()


def time_config(model, cfg: config_lib.TapLabConfig, video: str, *, warmup: bool = True,
                engine_kwargs: Optional[Dict] = None) -> Dict:
    """Times one config end to end over `video` (after a warm-up pass that traces the steps)."""
    engine = engine_lib.TapLabEngine(model, cfg, **(engine_kwargs or {}))
    if warmup:  # trace every step (phi on frame and crop, warp, output) before timing
        for r in engine.segment_video(video):
            if r.pict_type == "P" and r.gop_position >= 2:
                break
    t0 = time.perf_counter()
    results = []
    for r in engine.segment_video(video):
        # A consumer (the overlay writer, a scorer) takes each frame's labels and lets them go;
        # holding every label map of the clip would time the allocator's fresh pages instead.
        r.labels = None
        results.append(r)
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
    # Eq. 2's bound: only phi's own time (full frames and RGC crops) counted.
    phi_s = sum(r.timings.get("phi", 0.0) + r.timings.get("phi_crop", 0.0) for r in results)
    bound_ms = 1000 * phi_s / n if n else float("nan")
    return {
        "modules": cfg.modules_name, "frames": n, "gop": g,
        "fps": n / wall, "fps_model": n / model_s if model_s else float("nan"),
        "t_i_ms": 1000 * t_i, "t_p_ms": 1000 * t_p, "t_avg_ms": 1000 * wall / n,
        "eq2_ms": 1000 * (t_i / g + (1 - 1 / g) * t_p) if p_t else 1000 * t_i,
        "eq2_bound_ms": bound_ms,
        "bound_ratio": 1000 * wall / n / bound_ms if bound_ms > 0 else float("nan"),
        "split_ms": summary["time_split_ms"], "reader_ms": summary["reader_ms"],
        "rgfs_fraction": summary["rgfs_fraction"], "rgc_corrections": summary["rgc_corrections"],
        "phi_graph": engine.phi_graph,
    }


def speed_table(model, model_name: str, video: str, base: config_lib.TapLabConfig,
                configs: Sequence[str] = tuple(CONFIGS),
                progress: Optional[Callable[[str], None]] = print,
                engine_kwargs: Optional[Dict] = None, repeats: int = 1) -> List[Dict]:
    """time_config for each named config; speed-ups relative to 'perframe' of the same run.

    With repeats > 1 the configs are timed in turn, round after round (taplab_tf.timing.rounds,
    so that a slow spell of a shared machine hits every config alike), and each config keeps its
    median round by FPS; `fps_rounds` lists every round's FPS. (taplab_tf.reporting adds the
    paper's figures.)"""
    if isinstance(repeats, bool) or int(repeats) != repeats or repeats < 1:
        raise ValueError(f"repeats: must be a positive integer, got {repeats!r}")
    repeats = int(repeats)
    for name in configs:
        if name not in CONFIGS:
            raise ValueError(f"configs: unknown {name!r}; choose from {list(CONFIGS)}")
    done = dict.fromkeys(configs, 0)

    def variant(name):
        cfg = base.replace(modules=CONFIGS[name])

        def call():
            done[name] += 1
            if progress:
                progress(f"  timing {model_name} {name}"
                         + (f" (round {done[name]}/{repeats})" if repeats > 1 else "") + " ...")
            return time_config(model, cfg, video,
                               engine_kwargs=config_engine_kwargs(name, engine_kwargs))
        return call

    def report(_, name, row):
        if progress:
            progress(f"    {row['fps']:.2f} fps end to end, {row['fps_model']:.2f} model only; "
                     f"T_I {row['t_i_ms']:.0f} ms, T_P {row['t_p_ms']:.0f} ms")

    runs = timing.rounds({name: variant(name) for name in configs}, repeats, on_call=report)
    rows = []
    for name in configs:
        row = dict(timing.lower_median(runs[name], key=lambda r: r["fps"]))
        row["fps_rounds"] = [r["fps"] for r in runs[name]]
        row["config"] = name
        rows.append(row)
    ref = next((r for r in rows if r["config"] == "perframe"), None)
    for r in rows:
        r["speedup"] = r["fps"] / ref["fps"] if ref else None
        r["speedup_model"] = r["fps_model"] / ref["fps_model"] if ref else None
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
        engine = engine_lib.TapLabEngine(model, cfg, **config_engine_kwargs(name, engine_kwargs))
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


def run_sweep(sweep: str, model, video: str, cfg: config_lib.TapLabConfig, out_dir: str, *,
              clips=None, acc_model=None, dataset: str = "synthetic", seed: int = 0,
              progress: Optional[Callable[[str], None]] = print,
              engine_kwargs: Optional[Dict] = None) -> List[Dict]:
    """One sweep of the paper: 'gop' (Table 6, Fig. 8), 'region' (Table 4), 'alpha' (Fig. 11),
    'rgfs' (keyframe fraction vs mIoU vs FPS), 'propagation' (Table 3). Speed with `model` on
    `video` (engines built with `engine_kwargs`, as speed_table's); accuracy with `acc_model` on
    `clips` where given (alpha needs them). The GOP sweep writes its re-encoded videos into
    out_dir. Returns the rows (taplab_tf.reporting.plot_sweep_figures draws the figures)."""
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
            encode_video(frames, path, gop=g, mv4=cfg.encoder_mv4)
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
    elif sweep == "pareto":  # mIoU against FPS of every config (Fig. 1 with all of them)
        rows = pareto_rows(model, video, cfg, out, clips=clips, acc_model=acc_model,
                           acc_result=acc_result if clips else None, progress=progress,
                           engine_kwargs=kw)
    elif sweep == "propagation":  # Table 3
        # The paper's FFW, then FFW on a repaired motion field (pipeline.motion_field).
        variants = [(p, "none") for p in ("itp", "flow_farneback", "flow_dis", "mv")] + [
            ("mv", r) for r in MV_REFINEMENTS]
        for prop, refinement in variants:
            c = cfg.replace(modules="ffw", propagation=prop, mv_refinement=refinement)
            t = time_config(model, c, video, engine_kwargs=kw)
            name = prop if refinement == "none" else f"mv+{refinement}"
            row = {"propagation": name, "fps": t["fps"],
                   "t_flow_ms": t["split_ms"].get("flow", 0.0),
                   "t_refine_ms": t["split_ms"].get("mv_refinement", 0.0),
                   "t_warp_ms": t["split_ms"].get("warp", 0.0), "t_total_ms": t["t_avg_ms"]}
            if clips:
                row["miou"] = acc(TapLabEngine(acc_model, c), c.gop)
            if progress:
                progress(f"  {row}")
            rows.append(row)
    return rows


def pareto_configs(cfg: config_lib.TapLabConfig, gops: Sequence[int] = PARETO_GOPS):
    """(GOP, row fields, config) of the Pareto sweep: per-frame phi once; at each GOP every module
    set with each FFW_VARIANTS warp, and FFW with each flow baseline of Table 3."""
    out = [(cfg.gop, {"config": "perframe", "variant": "-", "modules": "none"},
            cfg.replace(modules="none"))]
    for g in gops:
        for variant, options in FFW_VARIANTS.items():
            for name, modules in CONFIGS.items():
                if name != "perframe" and name not in CONFIG_ENGINE_KWARGS:
                    out.append((g, {"config": name, "variant": variant, "modules": modules},
                                cfg.replace(gop=g, modules=modules, propagation="mv",
                                            **options)))
        for flow in PARETO_FLOWS:
            out.append((g, {"config": "ffw", "variant": flow, "modules": "ffw"},
                        cfg.replace(gop=g, modules="ffw", propagation=flow)))
    return out


def pareto_rows(model, video, cfg, out_dir, *, clips=None, acc_model=None, acc_result=None,
                progress=print, engine_kwargs=None, gops: Sequence[int] = PARETO_GOPS):
    """Speed (the timed clip re-encoded at each GOP, `model`) and, with clips, accuracy
    (`acc_model`; acc_result(engine, gop) -> evaluate_clips' result) of pareto_configs.
    Each row: gop, config, variant, fps, t_avg_ms, rgfs_fraction [, miou, miou_all_frames],
    and pareto=True on the rows no other row beats in both FPS and mIoU (all frames where
    every frame is labelled)."""
    from third_party.compressed_video import encode_video, open_compressed
    from taplab_tf.pipeline.engine import TapLabEngine
    with open_compressed(video, residual=None) as v:
        frames = [f.image for f in v]
    videos = {}
    rows = []
    for g, fields, c in pareto_configs(cfg, gops):
        key = (g, c.encoder_mv4)  # the refined warp reads 4MV streams
        if key not in videos:
            videos[key] = os.path.join(out_dir, f"sweep_pareto_gop{g}"
                                                f"{'_mv4' if c.encoder_mv4 else ''}.avi")
            encode_video(frames, videos[key], gop=g, mv4=c.encoder_mv4)
        t = time_config(model, c, videos[key], engine_kwargs=engine_kwargs)
        row = {"gop": g, **fields, "fps": t["fps"], "t_avg_ms": t["t_avg_ms"],
               "rgfs_fraction": t["rgfs_fraction"]}
        if clips:
            r = acc_result(TapLabEngine(acc_model, c), g)
            row.update(miou=r["miou"], miou_all_frames=r["miou_all_frames"])
        if progress:
            progress(f"  GOP {g} {fields['config']} ({fields['variant']}): {row['fps']:.2f} fps"
                     + (f", mIoU {100 * row['miou']:.1f}" if clips else ""))
        rows.append(row)
    mark_pareto(rows)
    return rows


def pareto_miou_key(rows: Sequence[Dict]) -> str:
    """The mIoU the Pareto front is drawn on: over all frames where every row has it, else the
    annotated frames'."""
    return ("miou_all_frames" if rows and all(r.get("miou_all_frames") is not None for r in rows)
            else "miou")


def mark_pareto(rows: List[Dict]) -> None:
    """Sets row['pareto'] where no other row has FPS and mIoU (pareto_miou_key) both >= and one
    of them > (no mIoU: FPS alone, so only the fastest row)."""
    key = pareto_miou_key(rows)
    score = [(r["fps"], r.get(key) if r.get(key) is not None else 0.0) for r in rows]
    for r, (f, m) in zip(rows, score):
        r["pareto"] = not any(f2 >= f and m2 >= m and (f2 > f or m2 > m) for f2, m2 in score)
