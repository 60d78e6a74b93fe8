"""Procedural synthetic street video with exact labels and ground-truth motion (the default data).

No dataset can be downloaded in this project, so the tests, the examples and the smoke
benchmarks run on clips drawn here. A clip is rendered by a pinhole camera driving down a
straight street of a procedurally generated 3-D world:

  * the ground (road with lane markings and a crosswalk, sidewalks, terrain) is the plane Y=0,
    rendered per pixel by inverse perspective (every pixel's ray meets the plane at a world
    point whose material and texture are functions of that point);
  * the sky is a textured sphere at infinity (it moves with the camera's yaw only);
  * everything else is a textured planar quad in the world: building facades and their side
    walls, walls, fences, hedges, trees, poles, traffic lights and signs, the faces of cars,
    trucks, buses and trams (boxes), and persons and riders whose legs and arms are separate
    quads swinging about hip and shoulder (non-rigid motion). Quads are warped into the frame
    with their exact homography (cv2.warpPerspective) and composited with a per-pixel z-buffer.

Labels are rendered with the very same homographies (nearest neighbour) as the colours, so every
pixel's label is the class of the surface whose colour it shows. `flow` is exact for every
surface, limbs included: for a pixel p of frame t that shows surface point X, flow = p - p' where
p' is the projection of X at frame t-1 (X moved back with its object). It is defined for pixels
whose point was behind the camera or off-screen at t-1 too (p' is then outside the frame).

Classes: all 19 Cityscapes train classes are claimed (CLAIMED_CLASSES); every clip places one
of each kind in view of its first frames (a car with a tram behind it ahead, an oncoming bus and
motorcycle, a parked delivery truck, a cyclist, a pedestrian, traffic lights and signs, a park
with a wall, a fence, terrain and trees), so each claimed class appears within the first
CLASSES_WITHIN_FRAMES frames at 128x256 and larger (the tests check seeds 0-2; seeds 0-39 were
checked with a script). Later in long clips only what the random traffic brings appears.

Motion (Cityscapes is filmed at 17 Hz): the camera drives forward at 4-8 m/s with a slow yaw
oscillation (1-2.5 degrees, lateral pan) and a lateral drift; cars, trucks, buses and trams drive
in their lanes (the oncoming ones, 5-10 m/s, come out of the distance and leave at the left
edge), pedestrians walk on the sidewalks and across the crosswalk, cyclists and motorcyclists
ride along the right edge, and parked cars, poles, trees stand still. `difficulty` (>= 0,
default 1, calibrated so that MPEG-4 statistics at 1024x2048 fall in the ranges measured on
real Cityscapes footage) scales every speed, the yaw amplitude and the density of moving
objects; 0 gives a still camera and a frozen world. A clip is a deterministic function of
(height, width, num_frames, seed, difficulty); a longer clip only adds street at the far end, so
the first k frames of a clip are the k-frame clip of the same seed, size and difficulty. Another
difficulty is another street (densities change the layout).

Parts (one idea per module): base (constants, Frame, Clip, argument checks), textures,
camera, objects (static quads, vehicles, walkers and riders), scene (the street of one clip),
render (drawing a scene; iter_clip, generate_clip), video (encode_clip: a clip encoded to
MPEG-4 Part 2), cityscapes_tree, contact_sheet, motion (flow statistics, block matching),
calibration (codec statistics against Cityscapes targets).

API (docs/INTERFACES.md):
  generate_clip(height, width, num_frames, seed, difficulty=1.0) -> Clip(frames, labels, flow)
  iter_clip(height, width, num_frames, seed, difficulty=1.0) -> iterator of Frame(index, image,
      label, flow) rendered one at a time (textures of objects left behind are freed, so clips
      of any length at 1024x2048 run in bounded memory)
  write_cityscapes_tree(output_dir, split, num_clips, clip_length, height, width, seed,
      difficulty=1.0, city='synthtown', annotated_frame=19, progress=None) -> dict
  encode_clip(path, height, width, num_frames, seed=0, difficulty=1.0, gop=12, qscale=None)
      -> the clip encoded to MPEG-4 Part 2 as TapLab reads it (the one synthetic clip encoder)
  clip_seed(seed, split, i), annotated_index(clip_length) -> what the tree writer uses
  contact_sheet(clip | frames, labels=None, path=None, max_frames=6) -> RGB uint8 grid
  contact_sheet_from_tree(frame_paths, path=None) -> the same from written files
  motion_statistics(flow) -> ground-truth |flow| statistics per frame
  block_matching(prev, cur, block=16, search=16) -> motion measured on the frames alone
  calibrate(height, width, num_frames, seed, difficulty, gop=12, qscale=6) -> statistics of the
      MPEG-4 encoded clip (third_party.compressed_video); CITYSCAPES_TARGETS, scaled_targets()

Statistics at the default difficulty are recorded in docs/synthetic.md.
"""
from taplab_tf.data.synthetic.base import (
    BICYCLE, BUILDING, BUS, CAMERA_HEIGHT, CAR, CLAIMED_CLASSES, CLASSES_WITHIN_FRAMES, FAR, FENCE,
    FLOW_MEAN_RANGE_AT_2048, FOCAL_PER_WIDTH, FPS, HORIZON_PER_HEIGHT, LANE_W, MOTORCYCLE, NEAR,
    NUM_CLASSES, OPTICAL_BLUR_AT_2048, OPTICAL_BLUR_MIN, PERSON, POLE, RIDER, ROAD, SIDEWALK, SKY,
    TERRAIN, TRAFFIC_LIGHT, TRAFFIC_SIGN, TRAIN, TRANSPARENT, TRUCK, VEGETATION, VIEW_DISTANCE, WALL,
    Clip, Frame)
from taplab_tf.data.synthetic.calibration import CITYSCAPES_TARGETS, calibrate, scaled_targets
from taplab_tf.data.synthetic.cityscapes_tree import (ANNOTATED_FRAME, CITY, annotated_index,
                                                      clip_seed, write_cityscapes_tree)
from taplab_tf.data.synthetic.contact_sheet import contact_sheet, contact_sheet_from_tree
from taplab_tf.data.synthetic.motion import block_matching, motion_statistics
from taplab_tf.data.synthetic.render import generate_clip, iter_clip
from taplab_tf.data.synthetic.textures import Texture
from taplab_tf.data.synthetic.video import encode_clip

__all__ = [
    # clips
    "Frame", "Clip", "iter_clip", "generate_clip", "encode_clip", "Texture",
    # Cityscapes layout, contact sheets, statistics, calibration
    "CITY", "ANNOTATED_FRAME", "clip_seed", "annotated_index", "write_cityscapes_tree",
    "contact_sheet", "contact_sheet_from_tree", "motion_statistics", "block_matching",
    "calibrate", "CITYSCAPES_TARGETS", "scaled_targets",
    # constants
    "FPS", "NUM_CLASSES", "CLAIMED_CLASSES", "CLASSES_WITHIN_FRAMES", "FLOW_MEAN_RANGE_AT_2048",
    "TRANSPARENT", "CAMERA_HEIGHT", "FOCAL_PER_WIDTH", "HORIZON_PER_HEIGHT", "NEAR", "FAR",
    "VIEW_DISTANCE", "LANE_W", "OPTICAL_BLUR_AT_2048", "OPTICAL_BLUR_MIN",
    "ROAD", "SIDEWALK", "BUILDING", "WALL", "FENCE", "POLE", "TRAFFIC_LIGHT", "TRAFFIC_SIGN",
    "VEGETATION", "TERRAIN", "SKY", "PERSON", "RIDER", "CAR", "TRUCK", "BUS", "TRAIN",
    "MOTORCYCLE", "BICYCLE",
]
