// Standalone check of the cells kernel (taplab_tf/ops/cc/kernels/upsample_argmax.h, TF-free)
// against a per-pixel reference written from TF's ResizeBilinear arithmetic (compute_lerp, then
// argmax with ties to the first channel): random cases of noise, smooth, integer (ties),
// near-tie and special (NaN, Inf, huge, subnormal) logits, odd sizes, up- and downsampling,
// int32 and uint8 labels, 1-3 threads on disjoint row ranges; each case also through an indexed
// source (a random gather of the logits, from their ArgmaxStatsRows) against the reference on the
// gathered map, again with key labels (the labels of the logits themselves, to copy from), and
// with a share of the pixels read from two more sources of other sizes (the indexed full path by
// tiles, or cell by cell where a row group has few such cells).
// Exit status 1 on any difference.
// Built and run by tests/test_ops_upsample_argmax.py (with and without the AVX2 paths, under
// AddressSanitizer and UBSan):  g++ -std=c++17 -O1 -ffp-contract=off -I <kernels> this.cc
#include "upsample_argmax.h"
#include <cstdio>
#include <random>
#include <thread>
using namespace taplab::upsample_argmax;

// TF ResizeBilinear compute_lerp per pixel, then argmax (strict >).
template <typename OutT>
void Reference(const float* in, int64_t N, int64_t h, int64_t w, int64_t C, int64_t H, int64_t W, OutT* out) {
  auto ys = InterpolationWeights(H, h), xs = InterpolationWeights(W, w);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x) {
        const float* tl = in + ((n * h + ys[y].lower) * w + xs[x].lower) * C;
        const float* tr = in + ((n * h + ys[y].lower) * w + xs[x].upper) * C;
        const float* bl = in + ((n * h + ys[y].upper) * w + xs[x].lower) * C;
        const float* br = in + ((n * h + ys[y].upper) * w + xs[x].upper) * C;
        float best = 0; int32_t arg = 0;
        for (int64_t c = 0; c < C; ++c) {
          const float top = tl[c] + (tr[c] - tl[c]) * xs[x].lerp;
          const float bottom = bl[c] + (br[c] - bl[c]) * xs[x].lerp;
          const float v = top + (bottom - top) * ys[y].lerp;
          if (c == 0 || v > best) { best = v; arg = c; }
        }
        out[(n * H + y) * W + x] = (OutT)arg;
      }
}

int fails = 0;
template <typename OutT>
void Check(const char* what, const std::vector<float>& in, int64_t N, int64_t h, int64_t w, int64_t C, int64_t H, int64_t W, int threads) {
  std::vector<OutT> a(N * H * W), b(N * H * W, 77);
  Reference(in.data(), N, h, w, C, H, W, a.data());
  CellUpsampler<OutT> up(N, h, w, C, H, W);
  int64_t rows = up.rows();
  std::vector<std::thread> ts;
  for (int i = 0; i < threads; ++i) ts.emplace_back([&, i] { up.Rows(in.data(), b.data(), rows * i / threads, rows * (i + 1) / threads); });
  for (auto& t : ts) t.join();
  int64_t bad = 0;
  for (size_t i = 0; i < a.size(); ++i) bad += a[i] != b[i];
  if (bad) { fails++; printf("FAIL %s N%ld h%ld w%ld C%ld -> %ldx%ld: %ld differ\n", what, N, h, w, C, H, W, bad); }
  // GroupStart(r): the first row >= r that starts a group of rows with the same two source rows
  // (the kernels' band boundaries); bands split there give the same labels.
  {
    const std::vector<Interpolation> ys = InterpolationWeights(H, h);
    auto starts = [&](int64_t r) {
      return r == rows || r % H == 0 || ys[r % H].lower != ys[r % H - 1].lower ||
             ys[r % H].upper != ys[r % H - 1].upper;
    };
    for (int64_t r = 0; r <= rows; ++r) {
      const int64_t g = up.GroupStart(r);
      bool ok = g >= r && g <= rows && starts(g);
      for (int64_t k = r; ok && k < g; ++k) ok = !starts(k);
      if (!ok) { fails++; printf("FAIL GroupStart(%ld) = %ld: H%ld h%ld N%ld\n", r, g, H, h, N); break; }
    }
    std::fill(b.begin(), b.end(), 77);
    ts.clear();
    for (int i = 0; i < threads + 1; ++i) ts.emplace_back([&, i] {
      up.Rows(in.data(), b.data(), up.GroupStart(rows * i / (threads + 1)), up.GroupStart(rows * (i + 1) / (threads + 1)));
    });
    for (auto& t : ts) t.join();
    int64_t differ = 0;
    for (size_t i = 0; i < a.size(); ++i) differ += a[i] != b[i];
    if (differ) { fails++; printf("FAIL group bands %s N%ld h%ld w%ld C%ld -> %ldx%ld: %ld differ\n", what, N, h, w, C, H, W, differ); }
  }
  // Indexed source: the map gathered by a random index (in blocks, like FFW's warps, or per
  // pixel), from `in`'s ArgmaxStatsRows, against the reference on the gathered map.
  std::mt19937 rng(static_cast<unsigned>(N * 1000003 + h * 1009 + w * 31 + C));
  std::vector<int32_t> index(N * h * w);
  // 0: rows jittered per pixel; 1: any pixel; 2: FFW's nearest warp, one shift per 4x4 block
  // (clamped at the border), so that most cells keep four adjacent pixels (the key labels' copy)
  const int mode = rng() % 3;
  std::vector<int64_t> shift_y((h + 3) / 4 * ((w + 3) / 4)), shift_x(shift_y.size());
  for (size_t b = 0; b < shift_y.size(); ++b) {
    shift_y[b] = (int64_t)(rng() % 7) - 3;
    shift_x[b] = rng() % 3 ? shift_x[b > 0 ? b - 1 : 0] : (int64_t)(rng() % 7) - 3;  // runs
  }
  for (int64_t k = 0; k < N * h * w; ++k) {
    const int64_t y = k / w % h, x = k % w;
    if (mode == 0) {
      index[k] = static_cast<int32_t>(std::min<int64_t>(h - 1, std::max<int64_t>(0, y + (int64_t)(rng() % 3) - 1)) * w
                                      + std::min<int64_t>(w - 1, x / 4 * 4 + (x % 4)));
    } else if (mode == 1) {
      index[k] = static_cast<int32_t>(rng() % (h * w));
    } else {
      const size_t b = (size_t)(y / 4 * ((w + 3) / 4) + x / 4);
      index[k] = static_cast<int32_t>(std::min<int64_t>(h - 1, std::max<int64_t>(0, y - shift_y[b])) * w +
                                      std::min<int64_t>(w - 1, std::max<int64_t>(0, x - shift_x[b])));
    }
  }
  std::vector<float> gathered(in.size());
  for (int64_t k = 0; k < N * h * w; ++k) {
    const int64_t n = k / (h * w);
    std::copy(in.begin() + (n * h * w + index[k]) * C, in.begin() + (n * h * w + index[k] + 1) * C, gathered.begin() + k * C);
  }
  Reference(gathered.data(), N, h, w, C, H, W, a.data());
  const int64_t w_pad = up.padded_width();
  std::vector<float> scratch(C * w_pad), margin(N * h * w), mag(N * h * w);
  std::vector<int32_t> arg(N * h * w);
  ArgmaxStatsRows(in.data(), N * h, w, C, w_pad, scratch.data(), arg.data(), margin.data(), mag.data());
  Source src;
  src.index = index.data();
  src.pool[0] = PoolSource{in.data(), arg.data(), margin.data(), mag.data(), h * w};
  // Runs the kernel on src (threads on disjoint row ranges) and compares with the reference a.
  auto run_and_compare = [&](const char* mode) {
    std::fill(b.begin(), b.end(), 77);
    ts.clear();
    for (int i = 0; i < threads; ++i) ts.emplace_back([&, i] { up.Rows(src, b.data(), rows * i / threads, rows * (i + 1) / threads); });
    for (auto& t : ts) t.join();
    int64_t differ = 0;
    for (size_t i = 0; i < a.size(); ++i) differ += a[i] != b[i];
    if (differ) { fails++; printf("FAIL %s %s N%ld h%ld w%ld C%ld -> %ldx%ld: %ld differ\n", mode, what, N, h, w, C, H, W, differ); }
  };
  run_and_compare("indexed");
  // The same with key labels (the labels of `in` itself, cropped): copied where the index keeps a
  // cell's four source pixels adjacent and the scale is an exact power of two.
  std::vector<OutT> key(N * H * W);
  Reference(in.data(), N, h, w, C, H, W, key.data());
  const int64_t kh = std::max<int64_t>(1, H - (int64_t)(rng() % 10)), kw = std::max<int64_t>(1, W - (int64_t)(rng() % 10));
  std::vector<OutT> cropped(N * kh * kw);
  for (int64_t n = 0; n < N; ++n) for (int64_t y = 0; y < kh; ++y) for (int64_t x = 0; x < kw; ++x)
    cropped[(n * kh + y) * kw + x] = key[(n * H + y) * W + x];
  src.key_labels = cropped.data(); src.key_h = kh; src.key_w = kw;
  run_and_compare("key labels");
  // The previous frame of a chain of warps: this frame's map is the previous map (the index
  // above) warped by one offset per 4x4 block, clamped at the border (FFW's nearest warp), and
  // the previous labels (cropped) are copied where the four values came over together.
  {
    const int64_t bs = 1 + rng() % 4, gh = (h + bs - 1) / bs, gw = (w + bs - 1) / bs;
    std::vector<int32_t> block_y(h), block_x(w), shift(N * gh * gw * 2);
    for (int64_t i = 0; i < h; ++i) block_y[i] = (int32_t)(i / bs);
    for (int64_t j = 0; j < w; ++j) block_x[j] = (int32_t)(j / bs);
    for (auto& v : shift) v = rng() % 3 ? (int32_t)(rng() % 5) - 2 : 0;
    std::vector<int32_t> cur(N * h * w);
    for (int64_t k = 0; k < N * h * w; ++k) {
      const int64_t n = k / (h * w), y = k / w % h, x = k % w;
      const int32_t* sh = shift.data() + ((n * gh + block_y[y]) * gw + block_x[x]) * 2;
      const int64_t py = std::min<int64_t>(h - 1, std::max<int64_t>(0, y + sh[0]));
      const int64_t px = std::min<int64_t>(w - 1, std::max<int64_t>(0, x + sh[1]));
      cur[k] = index[n * h * w + py * w + px];
    }
    std::vector<OutT> prev_labels(N * H * W);
    Reference(gathered.data(), N, h, w, C, H, W, prev_labels.data());  // labels of `index`
    const int64_t ph = std::max<int64_t>(1, H - (int64_t)(rng() % 10)), pw = std::max<int64_t>(1, W - (int64_t)(rng() % 10));
    std::vector<OutT> prev_cropped(N * ph * pw);
    for (int64_t n = 0; n < N; ++n) for (int64_t y = 0; y < ph; ++y) for (int64_t x = 0; x < pw; ++x)
      prev_cropped[(n * ph + y) * pw + x] = prev_labels[(n * H + y) * W + x];
    std::vector<float> cur_gathered(in.size());
    for (int64_t k = 0; k < N * h * w; ++k) {
      const int64_t n = k / (h * w);
      std::copy(in.begin() + (n * h * w + cur[k]) * C, in.begin() + (n * h * w + cur[k] + 1) * C, cur_gathered.begin() + k * C);
    }
    std::vector<int32_t> prev_index = index;
    Source psrc = src;
    psrc.index = cur.data();
    if (rng() % 2) psrc.key_labels = nullptr;
    psrc.prev.index = prev_index.data();
    psrc.prev.labels = prev_cropped.data(); psrc.prev.labels_h = ph; psrc.prev.labels_w = pw;
    psrc.prev.block_y = block_y.data(); psrc.prev.block_x = block_x.data(); psrc.prev.shift = shift.data();
    psrc.prev.grid_h = gh; psrc.prev.grid_w = gw;
    Reference(cur_gathered.data(), N, h, w, C, H, W, a.data());
    const Source saved = src;
    src = psrc;
    run_and_compare("previous frame");
    src = saved;
    Reference(gathered.data(), N, h, w, C, H, W, a.data());
  }
  // Two more sources (other sizes, e.g. RGC crops): a share of the pixels read from them.
  const int64_t eh[2] = {1 + (int64_t)(rng() % 7), 1 + (int64_t)(rng() % 5)}, ew[2] = {1 + (int64_t)(rng() % 9), 2};
  std::vector<float> extra[2];
  std::vector<int32_t> earg[2];
  std::vector<float> emargin[2], emag[2];
  for (int e = 0; e < 2; ++e) {
    extra[e].resize(N * eh[e] * ew[e] * C);
    for (float& v : extra[e]) v = (rng() % 200) / 20.f - 5.f;
    earg[e].resize(N * eh[e] * ew[e]); emargin[e].resize(N * eh[e] * ew[e]); emag[e].resize(N * eh[e] * ew[e]);
    std::vector<float> es(C * (ew[e] + 16));
    ArgmaxStatsRows(extra[e].data(), N * eh[e], ew[e], C, (ew[e] + 7) / 8 * 8 + 8, es.data(), earg[e].data(), emargin[e].data(), emag[e].data());
    src.pool[1 + e] = PoolSource{extra[e].data(), earg[e].data(), emargin[e].data(), emag[e].data(), eh[e] * ew[e]};
  }
  for (int64_t k = 0; k < N * h * w; ++k) {
    const int64_t n = k / (h * w);
    if (rng() % 4 == 0) {  // from an extra source
      const int e = rng() % 2;
      const int64_t q = rng() % (eh[e] * ew[e]);
      index[k] = (int32_t)((1 + e) << kSourceShift | q);
      std::copy(extra[e].begin() + (n * eh[e] * ew[e] + q) * C, extra[e].begin() + (n * eh[e] * ew[e] + q + 1) * C, gathered.begin() + k * C);
    }
  }
  Reference(gathered.data(), N, h, w, C, H, W, a.data());
  run_and_compare("three sources");
}

int main(int argc, char** argv) {
  std::mt19937 rng(argc > 2 ? atoi(argv[2]) : 1);
  std::normal_distribution<float> nd;
  int cases = 0;
  for (int iter = 0; iter < (argc > 1 ? atoi(argv[1]) : 200); ++iter) {
    int64_t N = 1 + rng() % 2, h = 1 + rng() % 20, w = 1 + rng() % 30;
    int64_t Cs[] = {1, 2, 3, 11, 19, 40};
    int64_t C = Cs[rng() % 6];
    int64_t s = rng() % 2 ? (int64_t{1} << (1 + rng() % 3)) : 1 + rng() % 9;  // often 2, 4, 8
    int64_t H = h * s + (rng() % 3 == 0 ? (int64_t)(rng() % 7) - 3 : 0), W = w * s + (rng() % 3 == 0 ? (int64_t)(rng() % 7) - 3 : 0);
    if (rng() % 8 == 0) { H = 1 + rng() % 40; W = 1 + rng() % 40; }
    H = std::max<int64_t>(H, 1); W = std::max<int64_t>(W, 1);
    int kind = rng() % 5;
    std::vector<float> in(N * h * w * C);
    // kind 0 noise; 1 smooth (blobby class maps); 2 ties (rounded); 3 smooth with a few NaN/inf/huge; 4 near-ties
    std::vector<float> cx(C), cy(C);
    for (int64_t c = 0; c < C; ++c) { cx[c] = rng() % 100 / 100.f * w; cy[c] = rng() % 100 / 100.f * h; }
    for (int64_t n = 0; n < N; ++n) for (int64_t y = 0; y < h; ++y) for (int64_t x = 0; x < w; ++x) for (int64_t c = 0; c < C; ++c) {
      float& v = in[((n * h + y) * w + x) * C + c];
      if (kind == 0) v = nd(rng);
      else if (kind == 2) v = std::round(nd(rng));
      else v = 10.f - 0.3f * std::hypot(x - cx[c], y - cy[c]) + 0.05f * nd(rng);
      if (kind == 4 && c == 1 && C > 1) v = in[((n * h + y) * w + x) * C] + (rng() % 3) * 1e-6f;
      if (kind == 3 && rng() % 50 == 0) { float sp[] = {NAN, INFINITY, -INFINITY, 3e38f, -3e38f, 1e31f, 1e-40f}; v = sp[rng() % 7]; }
    }
    int threads = 1 + rng() % 3;
    const char* names[] = {"noise", "smooth", "ties", "special", "neartie"};
    Check<int32_t>(names[kind], in, N, h, w, C, H, W, threads);
    Check<uint8_t>(names[kind], in, N, h, w, C, H, W, threads);
    cases++;
  }
  printf("%d cases, %d failures\n", cases, fails);
  return fails != 0;
}
