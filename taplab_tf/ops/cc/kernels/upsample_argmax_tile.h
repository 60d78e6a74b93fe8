// Included twice by upsample_argmax.h (no include guard): once in namespace generic with
// TAPLAB_MAX8(a, b) = a > b ? a : b, once in namespace avx2 under #pragma GCC target("avx2") with
// TAPLAB_MAX8 = _mm256_max_ps (GCC's vector extensions turn the ternary into a 3-uop blend, not a
// max; vmaxps(a, b) is exactly a > b ? a : b, NaN included). One vmaxps instead of a blend per
// channel and pixel saves ~20% of the full path.

// Running argmax over channels of top + (bottom - top) * y_lerp for K output rows of one tile.
template <int K, typename OutT>
TAPLAB_INLINE void ArgmaxBlock(const float* top, const float* bottom, int64_t C,
                               const float* y_lerps, OutT* out, int64_t stride, int64_t n) {
  V8F yl[K], best[K];
  V8I arg[K];
  {
    const V8F t = Load8(top), d = Load8(bottom) - t;
    for (int k = 0; k < K; ++k) {
      yl[k] = Splat(y_lerps[k]);
      best[k] = t + d * yl[k];
      arg[k] = Splat(0);
    }
  }
  const V8I one = Splat(1);
  V8I cv = Splat(0);
  for (int64_t c = 1; c < C; ++c) {
    const V8F t = Load8(top + c * 8), d = Load8(bottom + c * 8) - t;
    cv += one;
    for (int k = 0; k < K; ++k) {
      const V8F v = t + d * yl[k];
      // Strict >, so ties keep the first channel; c exceeds every earlier channel, so
      // max(arg, c where v wins else 0) is the new argmax (two cheap integer ops, no blend),
      // and TAPLAB_MAX8(v, best) = v > best ? v : best (a NaN v loses).
      const V8I g = (v > best[k]) & cv;
      best[k] = TAPLAB_MAX8(v, best[k]);
      arg[k] = arg[k] > g ? arg[k] : g;
    }
  }
  for (int k = 0; k < K; ++k) StoreLabels(arg[k], n, out + k * stride);
}

template <typename OutT>
void ArgmaxTile(const float* top, const float* bottom, int64_t C, const float* y_lerps,
                int64_t rows, OutT* out, int64_t stride, int64_t n) {
  int64_t k = 0;
  for (; k + 4 <= rows; k += 4) ArgmaxBlock<4>(top, bottom, C, y_lerps + k, out + k * stride, stride, n);
  if (k + 2 <= rows) {
    ArgmaxBlock<2>(top, bottom, C, y_lerps + k, out + k * stride, stride, n);
    k += 2;
  }
  if (k < rows) ArgmaxBlock<1>(top, bottom, C, y_lerps + k, out + k * stride, stride, n);
}

// One interior cell (CellUpsampler::Rows, the per-cell path): the labels of its
// `lanes` output pixels (row-major, the cell's width a row) from its four source vectors (tl, tr:
// the top source row's lower and upper columns, bl, br: the bottom row's), each pixel with its x
// and y lerps (xl, yl: lanes rounded up to 8). The same operations as InterpolateTile and
// ArgmaxBlock (top = tl + (tr - tl) * x_lerp, ..., strict > over channels): the same labels.
// x_repeats: the x lerps repeat every 8 lanes (the cell's width divides 8); then 16 lanes (4 x 4
// pixels) share the x interpolation.
template <int V>
TAPLAB_INLINE void ArgmaxCellLanes(const float* tl, const float* tr, const float* bl,
                                   const float* br, int64_t C, const V8F& x, const V8F* y,
                                   int32_t* labels) {
  V8F best[V];
  V8I arg[V];
  auto rows = [&](int64_t c, V8F* top, V8F* d) {
    const V8F l0 = Splat(tl[c]), l1 = Splat(bl[c]);
    *top = l0 + (Splat(tr[c]) - l0) * x;
    const V8F bottom = l1 + (Splat(br[c]) - l1) * x;
    *d = bottom - *top;
  };
  V8F top, d;
  rows(0, &top, &d);
  for (int v = 0; v < V; ++v) {
    best[v] = top + d * y[v];
    arg[v] = Splat(0);
  }
  const V8I one = Splat(1);
  V8I cv = Splat(0);
  for (int64_t c = 1; c < C; ++c) {
    rows(c, &top, &d);
    cv += one;
    for (int v = 0; v < V; ++v) {
      const V8F val = top + d * y[v];
      const V8I g = (val > best[v]) & cv;  // as ArgmaxBlock
      best[v] = TAPLAB_MAX8(val, best[v]);
      arg[v] = arg[v] > g ? arg[v] : g;
    }
  }
  for (int v = 0; v < V; ++v) Store8(labels + 8 * v, arg[v]);
}

inline void ArgmaxCell(const float* tl, const float* tr, const float* bl, const float* br,
                       int64_t C, const float* xl, const float* yl, int64_t lanes,
                       bool x_repeats, int32_t* labels) {
  if (x_repeats && lanes == 16) {
    const V8F y[2] = {Load8(yl), Load8(yl + 8)};
    ArgmaxCellLanes<2>(tl, tr, bl, br, C, Load8(xl), y, labels);
    return;
  }
  for (int64_t v = 0; v < lanes; v += 8) {
    const V8F y[1] = {Load8(yl + v)};
    ArgmaxCellLanes<1>(tl, tr, bl, br, C, Load8(xl + v), y, labels + v);
  }
}
