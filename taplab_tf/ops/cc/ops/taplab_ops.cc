// Interfaces of the TapLab ops: registration, attributes and shape functions only.
// Kernels live in ../kernels/. Op names are namespaced "TapLab>...".
#include "tensorflow/core/framework/common_shape_fns.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace tensorflow {
namespace taplab {

using shape_inference::DimensionHandle;
using shape_inference::InferenceContext;
using shape_inference::ShapeHandle;

namespace {

// features [N,h,w,C] (or the incoming gradient, same shape) and motion_vectors [N,Hb,Wb,2]:
// the output has the features' shape with the batch dimension merged with the motion's.
Status WarpShape(InferenceContext* c) {
  ShapeHandle features;
  ShapeHandle motion;
  TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 4, &features));
  TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 4, &motion));
  DimensionHandle batch;
  TF_RETURN_IF_ERROR(c->Merge(c->Dim(features, 0), c->Dim(motion, 0), &batch));
  DimensionHandle two;
  TF_RETURN_IF_ERROR(c->WithValue(c->Dim(motion, 3), 2, &two));
  ShapeHandle out;
  TF_RETURN_IF_ERROR(c->ReplaceDim(features, 0, batch, &out));
  c->set_output(0, out);
  return OkStatus();
}

// logits [N,h,w,C] and size [2] (H, W): output 0, the labels, is [N, H, W].
Status UpsampleShape(InferenceContext* c) {
  ShapeHandle logits;
  TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 4, &logits));
  ShapeHandle size_shape;
  TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 1, &size_shape));
  DimensionHandle two;
  TF_RETURN_IF_ERROR(c->WithValue(c->Dim(size_shape, 0), 2, &two));
  ShapeHandle hw;
  TF_RETURN_IF_ERROR(c->MakeShapeFromShapeTensor(1, &hw));
  ShapeHandle out;
  TF_RETURN_IF_ERROR(c->Concatenate(c->Vector(c->Dim(logits, 0)), hw, &out));
  c->set_output(0, out);
  return OkStatus();
}

}  // namespace

REGISTER_OP("TapLab>MvWarp")
    .Input("features: T")
    .Input("motion_vectors: float")
    .Output("output: T")
    .Attr("T: {half, float, double, int32}")
    .Attr("feature_stride: int >= 1")
    .Attr("block_size: int >= 1 = 16")
    .Attr("interpolation: {'nearest', 'bilinear'} = 'nearest'")
    .Attr("border: {'clamp', 'zeros'} = 'clamp'")
    .SetShapeFn(WarpShape)
    .Doc(R"doc(
Feature-flow warp with block motion vectors (TapLab Eq. 1): F_t[p] = F_{t-1}[p - Mv_t[p]].

Feature pixel (i, j) has centre ((i+0.5)s, (j+0.5)s) in input pixels; its block is that centre
// block_size, clamped to the motion grid; with that block's (dx, dy) it reads features at
(i - dy/s, j - dx/s). nearest: round half up; bilinear: tfa dense_image_warp convention.

features: [N, h, w, C] feature map or logits at stride feature_stride; int32 (an index map,
  e.g. FFW's chain of warps held as positions into a keyframe's logits) with 'nearest' only.
motion_vectors: [N, Hb, Wb, 2] block motion (dx, dy) = dst - src in input pixels.
output: [N, h, w, C].
)doc");

REGISTER_OP("TapLab>MvWarpGrad")
    .Input("grad: T")
    .Input("motion_vectors: float")
    .Output("grad_features: T")
    .Attr("T: {half, float, double}")
    .Attr("feature_stride: int >= 1")
    .Attr("block_size: int >= 1 = 16")
    .Attr("interpolation: {'nearest', 'bilinear'} = 'nearest'")
    .Attr("border: {'clamp', 'zeros'} = 'clamp'")
    .SetShapeFn(WarpShape)
    .Doc(R"doc(
Gradient of TapLab>MvWarp with respect to the features (a scatter-add of grad through the same
sampling pattern). grad and grad_features have the features' shape.
)doc");

REGISTER_OP("TapLab>UpsampleArgmax")
    .Input("logits: float")
    .Input("size: int32")
    .Output("labels: out_type")
    .Attr("out_type: {int32, uint8} = DT_INT32")
    .Attr("method: {'cells', 'rows'} = 'cells'")
    .SetShapeFn(UpsampleShape)
    .Doc(R"doc(
argmax over channels of the bilinear (half-pixel-centre) resize of logits to size, fused: the
upsampled [N, H, W, C] tensor is never materialised. Ties go to the first maximum.

logits: [N, h, w, C] float32.
size: [2] int32 (H, W).
labels: [N, H, W] int32, or uint8 (out_type; needs C <= 256): a quarter of the bytes to write
  where the labels go straight to an image or a video.
method: 'cells' (default): per source cell, with the exact shortcut where the four source pixels
  share their argmax with a safe margin (kernels/upsample_argmax.h); 'rows': the earlier kernel,
  every output pixel interpolated (kept as a cross-check and for the benchmark). Same labels.
)doc");

REGISTER_OP("TapLab>UpsampleArgmaxWithStats")
    .Input("logits: float")
    .Input("size: int32")
    .Output("labels: out_type")
    .Output("arg: int32")
    .Output("margin: float")
    .Output("magnitude: float")
    .Attr("out_type: {int32, uint8} = DT_INT32")
    .SetShapeFn([](InferenceContext* c) {
      TF_RETURN_IF_ERROR(UpsampleShape(c));
      ShapeHandle plane;
      TF_RETURN_IF_ERROR(c->Subshape(c->input(0), 0, 3, &plane));
      for (int i = 1; i < 4; ++i) c->set_output(i, plane);
      return OkStatus();
    })
    .Doc(R"doc(
UpsampleArgmax (method 'cells') and ArgmaxStats of the same logits in one pass over them: the
labels, then per pixel of logits its argmax (-1 where it may never take the shortcut), margin
and largest |logit|, equal to the two ops' outputs.

logits: [N, h, w, C] float32. size: [2] int32 (H, W).
labels: [N, H, W]. arg, margin, magnitude: [N, h, w].
)doc");

REGISTER_OP("TapLab>ArgmaxStats")
    .Input("logits: float")
    .Output("arg: int32")
    .Output("margin: float")
    .Output("magnitude: float")
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle logits;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 4, &logits));
      ShapeHandle plane;
      TF_RETURN_IF_ERROR(c->Subshape(logits, 0, 3, &plane));
      for (int i = 0; i < 3; ++i) c->set_output(i, plane);
      return OkStatus();
    })
    .Doc(R"doc(
Per pixel of logits, what UpsampleArgmax's exact shortcut reads: the argmax over channels (-1
where a pixel may never take the shortcut: NaN, Inf or a huge logit), its margin over the second
largest channel, and the largest |logit|. Computed once for logits that UpsampleArgmaxIndexed
reads many times.

logits: [N, h, w, C] float32.
arg, margin, magnitude: [N, h, w].
)doc");

REGISTER_OP("TapLab>UpsampleArgmaxIndexed")
    .Input("sources: num_sources * float")
    .Input("args: num_sources * int32")
    .Input("margins: num_sources * float")
    .Input("magnitudes: num_sources * float")
    .Input("index: int32")
    .Input("size: int32")
    .Input("key_labels: out_type")
    .Input("prev_index: int32")
    .Input("prev_labels: out_type")
    .Input("motion: float")
    .Output("labels: out_type")
    .Attr("num_sources: int >= 1")
    .Attr("out_type: {int32, uint8} = DT_INT32")
    .Attr("feature_stride: int >= 0 = 0")
    .Attr("block_size: int >= 0 = 0")
    .SetShapeFn([](InferenceContext* c) {
      int num_sources;
      TF_RETURN_IF_ERROR(c->GetAttr("num_sources", &num_sources));
      ShapeHandle source;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 4, &source));
      ShapeHandle hw;
      TF_RETURN_IF_ERROR(c->MakeShapeFromShapeTensor(4 * num_sources + 1, &hw));
      ShapeHandle out;
      TF_RETURN_IF_ERROR(c->Concatenate(c->Vector(c->Dim(source, 0)), hw, &out));
      c->set_output(0, out);
      return OkStatus();
    })
    .Doc(R"doc(
UpsampleArgmax (method 'cells') of the map whose pixel p of batch item n is
sources[i][n, q] for index[n, p] = i << 20 | q (q a flat position within the item), without
materialising that map: the shortcut reads the gathered ArgmaxStats of the sources, and their
values are gathered only for the cells that take the full path. Same labels as UpsampleArgmax
of the gathered map.

sources: [N, h, w, C] float32 (source 0, the map's shape), then up to 15 more [N, h_i, w_i, C]
  (h_i * w_i <= 2^20).
args, margins, magnitudes: ArgmaxStats of each source.
index: [N, h, w] (or [N, h, w, 1], as TapLab>MvWarp moves it) int32, i << 20 | q with
  i < num_sources and q < h_i * w_i.
size: [2] int32 (H, W).
key_labels: [N, key_h, key_w] (key_h <= H, key_w <= W): the labels of source 0 itself at size
  (H, W), cropped; or an empty tensor. Where the index maps a cell's four source pixels onto four
  adjacent ones of source 0 and the upsampling is by an exact power of two, the cell's labels are
  copied from them (the same arithmetic on the same values) instead of computed.
prev_index, prev_labels, motion: the previous frame of a chain of nearest warps, or three empty
  tensors: its map ([N, h, w] or [N, h, w, 1]), its labels ([N, <= H, <= W], cropped as
  key_labels) and the block motion vectors that warped it into this one (TapLab>MvWarp's
  [N, grid_h, grid_w, 2] (dx, dy) in frame pixels, with its feature_stride and block_size).
  Where the motion of a cell's top-left pixel carries its four values over from the previous map
  unchanged (they are compared) and the upsampling is by an exact power of two, the cell's labels
  are copied from the previous labels.
labels: [N, H, W] int32 or uint8 (out_type).
)doc");

REGISTER_OP("TapLab>MvFill")
    .Input("motion_vectors: float")
    .Input("intra: bool")
    .Input("moving_px: float")
    .Input("majority: double")
    .Output("refined: float")
    .Output("still_intra: bool")
    .Attr("passes: int = 2")
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle motion;
      ShapeHandle intra;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 3, &motion));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 2, &intra));
      c->set_output(0, motion);
      c->set_output(1, intra);
      return OkStatus();
    })
    .Doc(R"doc(
The 'fill' refinement of a block motion field before FFW (taplab_tf.pipeline.motion_field, whose
numpy code is the reference): blocks without a vector, and zero vectors among mostly moving
neighbours, take the component-wise median of their moving 3x3 neighbours, `passes` times.

motion_vectors: [gh, gw, 2] block motion (dx, dy).
intra: [gh, gw] true where a block has no vector.
moving_px: scalar; a vector moves when its length exceeds this.
majority: scalar; a zero vector is filled where its moving neighbours outnumber majority x its
  neighbours with a vector.
refined: [gh, gw, 2]; still_intra: [gh, gw], the blocks still without a vector.
)doc");

REGISTER_OP("TapLab>RegionBlend")
    .Input("logits: float")
    .Input("crop_logits: float")
    .Input("top: int32")
    .Input("left: int32")
    .Input("alpha: float")
    .Output("output: float")
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle logits;
      ShapeHandle crop;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 4, &logits));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 4, &crop));
      c->set_output(0, logits);
      return OkStatus();
    })
    .Doc(R"doc(
RGC's blend (TapLab Eq. 6) on one region: output = logits, except on
[top, top + rh) x [left, left + rw), where it is r + alpha * (crop_logits - r), r the region of
logits (float32, each operation rounded as in TF). Written in one pass; in place where TF can
forward the logits' buffer.

logits: [N, h, w, C]. crop_logits: [N, rh, rw, C], phi on the region's pixels.
top, left: the region's first row and column in logits cells. alpha: the blend weight.
)doc");

REGISTER_OP("TapLab>IndexTakeRegion")
    .Input("index: int32")
    .Input("top: int32")
    .Input("left: int32")
    .Input("region_height: int32")
    .Input("region_width: int32")
    .Input("source: int32")
    .Input("motion: float")
    .Output("output: int32")
    .Attr("feature_stride: int >= 0 = 0")
    .Attr("block_size: int >= 0 = 0")
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(0));
      return OkStatus();
    })
    .Doc(R"doc(
RGC's take-over (TapLab Eq. 6 at alpha = 1) on FFW's index map: output = index, except on
[top, top + region_height) x [left, left + region_width), where the cell (r, c) of the region
holds source << 20 | (r * region_width + c): it reads the crop's logits, source number `source`.
One pass; in place where TF can forward the index's buffer. With motion vectors, index is first
warped by them as TapLab>MvWarp (nearest, clamp) warps it: FFW's warp of a propagated frame's map
(Eq. 1) and the take-over in one pass.

index: int32 [N, h, w] or [N, h, w, 1]. top, left, region_height, region_width: logits cells.
source: in [0, 16).
motion: [N, grid_h, grid_w, 2] block motion (dx, dy) in frame pixels, with feature_stride and
  block_size (MvWarp's), or an empty tensor: no warp.
)doc");

}  // namespace taplab
}  // namespace tensorflow
