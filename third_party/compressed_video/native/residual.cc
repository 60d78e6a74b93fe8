// Fused MPEG-4 half-pel motion compensation + residual + |Res| summaries for one P-frame, and
// per-block threshold counts of the channel-sum map. Built and loaded by
// third_party/compressed_video/native.py (ctypes, C ABI); no dependency beyond the C++17 library.
//
// Arithmetic (bit-exact with motion.MotionCompensator.half_pel): for the block holding (y, x),
// with n = rint(-2 * mv) (per axis), i = n >> 1 (floor), f = n & 1 (half-pel flag):
//   integer          pred = P(y + iy, x + ix)
//   half-pel in x    pred = (P(y+iy, x+ix) + P(y+iy, x+ix+1) + 1) >> 1          (y likewise)
//   half-pel in both pred = (four neighbours + 2) >> 2
// where P clamps each sample coordinate independently into the frame (edge replication).
// Res = cur - pred (int16); chan_sum = |Res_r| + |Res_g| + |Res_b| (uint16); the return value is
// the sum of chan_sum over the frame (= cv2.norm(cur, pred, NORM_L1)).
//
// One pass per image row: the row's prediction is assembled block by block into a small buffer
// (a block whose source window lies inside the frame horizontally is a contiguous copy/average
// the compiler vectorises; border blocks clamp per pixel; rows are clamped once per block row),
// then the residual, |Res| and channel sums of the whole row are computed from it while it is in
// L1. Block rows are shared out dynamically between threads (std::thread).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

// x86-64: the row kernel is also compiled for SSSE3 and AVX2 and picked at load time (the
// channel-sum deinterleave needs byte shuffles that SSE2 lacks); no -march flags, so one build
// runs on any x86-64 (and the library cache may be shared between machines).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(CV_NATIVE_NO_CLONES)
#define CV_CLONES __attribute__((target_clones("avx2", "ssse3", "default")))
#else
#define CV_CLONES
#endif

namespace {

inline int clampi(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

// Half-pel units of -mv, clamped so far-away vectors (all samples at the edge either way) stay
// in int range; NaN maps to 0 (the Python side never passes one).
inline int neg2_of(float v, int limit) {
  float t = -2.0f * v;
  if (!(t == t)) return 0;
  if (t > (float)limit) return limit;
  if (t < (float)-limit) return -limit;
  return (int)std::nearbyint(t);
}

// The bytes [0, n) of one block row of the prediction, source window inside the frame
// horizontally. N > 0: compile-time length (whole 16- or 8-pixel blocks).
template <int N>
inline void predict_inside(const uint8_t* __restrict a, const uint8_t* __restrict b, int fx, int fy,
                           int n_rt, uint8_t* __restrict out) {
  const int n = N > 0 ? N : n_rt;
  if (!fx && !fy) {
    std::memcpy(out, a, n);
  } else if (fx && !fy) {
    for (int i = 0; i < n; ++i) out[i] = (uint8_t)((a[i] + a[i + 3] + 1) >> 1);
  } else if (!fx) {
    for (int i = 0; i < n; ++i) out[i] = (uint8_t)((a[i] + b[i] + 1) >> 1);
  } else {
    for (int i = 0; i < n; ++i)
      out[i] = (uint8_t)((a[i] + a[i + 3] + b[i] + b[i + 3] + 2) >> 2);
  }
}

// Same, any horizontal position: every x sample clamped into [0, W-1].
inline void predict_clamped(const uint8_t* a, const uint8_t* b, int x0, int ix, int fx, int fy,
                            int bw, int W, uint8_t* out) {
  for (int k = 0; k < bw; ++k) {
    const int xa = 3 * clampi(x0 + k + ix, 0, W - 1);
    const int xb = 3 * clampi(x0 + k + ix + 1, 0, W - 1);
    for (int c = 0; c < 3; ++c) {
      int v;
      if (!fx && !fy) v = a[xa + c];
      else if (fx && !fy) v = (a[xa + c] + a[xb + c] + 1) >> 1;
      else if (!fx) v = (a[xa + c] + b[xa + c] + 1) >> 1;
      else v = (a[xa + c] + a[xb + c] + b[xa + c] + b[xb + c] + 2) >> 2;
      out[3 * k + c] = (uint8_t)v;
    }
  }
}

// Residual, |Res| channel sums of one row from its prediction; returns the row's sum of |Res|.
inline uint64_t residual_row(const uint8_t* __restrict cur, const uint8_t* __restrict pred, int W,
                             int16_t* __restrict res, uint16_t* __restrict cs,
                             uint8_t* __restrict absbuf) {
  const int n = 3 * W;
  if (res) {
    for (int i = 0; i < n; ++i) res[i] = (int16_t)((int)cur[i] - (int)pred[i]);
  }
  for (int i = 0; i < n; ++i) {
    const uint8_t p = cur[i], q = pred[i];
    absbuf[i] = (uint8_t)(std::max(p, q) - std::min(p, q));
  }
  uint32_t total = 0;  // 765 * W fits easily
  for (int x = 0; x < W; ++x) {
    const uint16_t s = (uint16_t)(absbuf[3 * x] + absbuf[3 * x + 1] + absbuf[3 * x + 2]);
    cs[x] = s;
    total += s;
  }
  return total;
}

struct Frame {
  const uint8_t* cur;
  const uint8_t* prev;
  int H, W;
  const float* mv;
  int gh, gw, bs;
  int16_t* res;
  uint16_t* cs;
};

CV_CLONES uint64_t residual_block_row(const Frame& f, int bi, std::vector<int>& nx, std::vector<int>& ny,
                            std::vector<uint8_t>& pred, std::vector<uint8_t>& absbuf,
                            std::vector<uint16_t>& csbuf) {
  const int H = f.H, W = f.W, bs = f.bs, gw = f.gw;
  const size_t stride = (size_t)W * 3;
  const int limit = 4 * (H + W) + 16;
  for (int j = 0; j < gw; ++j) {
    const float* v = f.mv + ((size_t)bi * gw + j) * 2;
    nx[j] = neg2_of(v[0], limit);
    ny[j] = neg2_of(v[1], limit);
  }
  uint64_t total = 0;
  const int y0 = bi * bs, y1 = std::min(H, y0 + bs);
  for (int y = y0; y < y1; ++y) {
    uint8_t* prow = pred.data();
    for (int j = 0; j < gw; ++j) {
      const int x0 = j * bs, bw = std::min(bs, W - x0);
      const int ix = nx[j] >> 1, fx = nx[j] & 1, iy = ny[j] >> 1, fy = ny[j] & 1;
      const uint8_t* a = f.prev + (size_t)clampi(y + iy, 0, H - 1) * stride;
      const uint8_t* b = fy ? f.prev + (size_t)clampi(y + iy + 1, 0, H - 1) * stride : a;
      uint8_t* out = prow + (size_t)x0 * 3;
      const int sx = x0 + ix;
      if (sx >= 0 && sx + bw - 1 + fx <= W - 1) {
        const uint8_t* pa = a + (size_t)sx * 3;
        const uint8_t* pb = b + (size_t)sx * 3;
        if (bw == 16) predict_inside<48>(pa, pb, fx, fy, 48, out);
        else if (bw == 8) predict_inside<24>(pa, pb, fx, fy, 24, out);
        else predict_inside<0>(pa, pb, fx, fy, 3 * bw, out);
      } else {
        predict_clamped(a, b, x0, ix, fx, fy, bw, W, out);
      }
    }
    const size_t off = (size_t)y * stride;
    uint16_t* cs = f.cs ? f.cs + (size_t)y * W : csbuf.data();
    total += residual_row(f.cur + off, prow, W, f.res ? f.res + off : nullptr, cs, absbuf.data());
  }
  return total;
}

template <int N>
inline int count_at_least(const uint16_t* __restrict r, uint16_t t, int n_rt) {
  const int n = N > 0 ? N : n_rt;
  int c = 0;
  for (int x = 0; x < n; ++x) c += r[x] >= t;
  return c;
}

int default_threads() {
  const unsigned hc = std::thread::hardware_concurrency();
  return (int)std::max(1u, std::min(4u, hc ? hc : 1u));
}

// Runs fn(task) for task in [0, n) on up to `threads` threads (0: default), tasks handed out
// dynamically (a thread slowed by other load on the machine takes fewer). fn(task, slot).
template <class Fn>
void parallel_for(int n, int threads, int min_tasks_per_thread, Fn fn) {
  if (threads <= 0) threads = default_threads();
  threads = std::max(1, std::min(threads, n / std::max(1, min_tasks_per_thread)));
  std::atomic<int> next{0};
  auto work = [&](int slot) {
    for (int t; (t = next.fetch_add(1, std::memory_order_relaxed)) < n;) fn(t, slot);
  };
  std::vector<std::thread> pool;
  for (int s = 1; s < threads; ++s) {
    try {
      pool.emplace_back(work, s);
    } catch (...) {  // no more threads: the ones running (and this one) share the rest
      break;
    }
  }
  work(0);
  for (auto& t : pool) t.join();
}

}  // namespace

extern "C" {

// Version of this C ABI (native.py checks it).
int cv_native_abi_version() { return 1; }

// Motion-compensates prev with the block vectors mv (float32 [gh, gw, 2], (dx, dy) = dst - src,
// integer or half-pel) and compares with cur (uint8 [H, W, 3] contiguous, like prev). Writes
// res (int16 [H, W, 3]) and chan_sum (uint16 [H, W]) when not NULL. Returns sum |cur - pred|
// over all pixels and channels, or -1 on bad arguments.
int64_t cv_residual(const uint8_t* cur, const uint8_t* prev, int H, int W, const float* mv,
                    int gh, int gw, int bs, int16_t* res, uint16_t* chan_sum, int threads) {
  if (!cur || !prev || !mv || H <= 0 || W <= 0 || bs <= 0 || gh != (H + bs - 1) / bs ||
      gw != (W + bs - 1) / bs)
    return -1;
  const Frame f{cur, prev, H, W, mv, gh, gw, bs, res, chan_sum};
  // each thread slot has its own scratch rows
  const int slots = threads > 0 ? threads : default_threads();
  std::vector<uint64_t> totals((size_t)slots * 8, 0);  // 64-byte apart: no false sharing
  struct Scratch {
    std::vector<int> nx, ny;
    std::vector<uint8_t> pred, absbuf;
    std::vector<uint16_t> cs;
  };
  std::vector<Scratch> scratch;
  try {  // all scratch rows up front: nothing in the threads allocates (or throws)
    scratch.resize(slots);
    for (Scratch& s : scratch) {
      s.nx.resize(gw);
      s.ny.resize(gw);
      s.pred.resize((size_t)W * 3 + 64);
      s.absbuf.resize((size_t)W * 3 + 64);
      if (!chan_sum) s.cs.resize((size_t)W + 32);
    }
  } catch (...) {
    return -1;
  }
  // ~64k pixels per thread at least: below that, spawning costs more than it saves
  const int rows_per_thread = std::max(1, (int)(65536 / ((int64_t)W * bs) + 1));
  parallel_for(gh, slots, rows_per_thread, [&](int bi, int slot) {
    Scratch& s = scratch[slot];
    totals[(size_t)slot * 8] += residual_block_row(f, bi, s.nx, s.ny, s.pred, s.absbuf, s.cs);
  });
  uint64_t total = 0;
  for (int s = 0; s < slots; ++s) total += totals[(size_t)s * 8];
  return (int64_t)total;
}

// Per-block counts (int32 [ceil(H/bs), ceil(W/bs)], blocks clipped at the border) of the pixels
// whose chan_sum (uint16 [H, W]) is >= lim. Returns 0, or -1 on bad arguments.
int cv_block_counts(const uint16_t* chan_sum, int H, int W, int bs, int lim, int32_t* out,
                    int threads) {
  if (!chan_sum || !out || H <= 0 || W <= 0 || bs <= 0) return -1;
  const int gh = (H + bs - 1) / bs, gw = (W + bs - 1) / bs;
  if (lim <= 0) {  // every pixel
    for (int i = 0; i < gh; ++i)
      for (int j = 0; j < gw; ++j)
        out[(size_t)i * gw + j] = std::min(bs, H - i * bs) * std::min(bs, W - j * bs);
    return 0;
  }
  if (lim > 65535) {
    std::fill(out, out + (size_t)gh * gw, 0);
    return 0;
  }
  const uint16_t t = (uint16_t)lim;
  const int rows_per_thread = std::max(1, (int)(262144 / ((int64_t)W * bs) + 1));
  parallel_for(gh, threads, rows_per_thread, [&](int bi, int) {
    int32_t* o = out + (size_t)bi * gw;
    std::fill(o, o + gw, 0);
    const int y0 = bi * bs, y1 = std::min(H, y0 + bs);
    for (int y = y0; y < y1; ++y) {
      const uint16_t* r = chan_sum + (size_t)y * W;
      for (int j = 0; j < gw; ++j) {
        const int x0 = j * bs, bw = std::min(bs, W - x0);
        if (bw == 16) o[j] += count_at_least<16>(r + x0, t, 16);
        else if (bw == 8) o[j] += count_at_least<8>(r + x0, t, 8);
        else o[j] += count_at_least<0>(r + x0, t, bw);
      }
    }
  });
  return 0;
}

}  // extern "C"
