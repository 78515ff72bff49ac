// Steps of Algorithm 1 on least-squares components, for a batch of trials (XLA FFI, CPU).
//
// The same step as costsgd.problems.least_squares_step (docs/engine.md), in the
// same order of operations, for steps t = lo..hi of every trial of the batch:
//
//   x̄_t     = x̄_{t-1} + (x_t - x̄_{t-1}) (1/t)
//   s       = η_t w_i (a_iᵀx_t - b_i),            w_i = 1/(n p_i)
//   ‖y‖²    = ‖x_t‖² - 2 s a_iᵀx_t + s² ‖a_i‖²,   y = x_t - s a_i
//   x_{t+1} = y min(1, R/‖y‖)                      (NaN when ‖y‖ overflows)
//   K_t     = K_{t-1} + c_i
//
// Each trial's iterate and average stay in registers or L1 over all its steps,
// and four trials are stepped in lockstep so their dependency chains overlap;
// the compiled XLA step instead makes one pass over the whole batch per kernel
// (gather, reduction, update), each bound by the L2 cache.
//
// Arguments carry the batch dimensions of jax.vmap(..., vmap_method="expand_dims"):
// each has the outputs' batch dimensions, or 1 where it is shared.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

constexpr int kMaxBatchRank = 8;
constexpr int kLanes = 16;  // a row is padded to whole blocks of kLanes
#ifndef COSTSGD_GROUP  // benchmarks/bench_native_loop.py builds other sizes to compare
#define COSTSGD_GROUP 4
#endif
constexpr int kGroupSize = COSTSGD_GROUP;  // trials stepped in lockstep

// Where one argument's block for a flat batch index starts.
struct Broadcast {
  int rank = 0;
  int64_t size[kMaxBatchRank] = {};
  int64_t stride[kMaxBatchRank] = {};  // in blocks; 0 along a shared dimension
};

ffi::Error MakeBroadcast(const ffi::AnyBuffer& arg, int own_rank, const int64_t* batch,
                         int batch_rank, const char* name, Broadcast* out) {
  auto dims = arg.dimensions();
  if (static_cast<int>(dims.size()) != batch_rank + own_rank) {
    return ffi::Error::InvalidArgument(std::string("linear_sgd_steps: rank of ") + name);
  }
  out->rank = batch_rank;
  int64_t stride = 1;
  for (int k = batch_rank - 1; k >= 0; --k) {
    if (dims[k] != 1 && dims[k] != batch[k]) {
      return ffi::Error::InvalidArgument(std::string("linear_sgd_steps: batch of ") + name);
    }
    out->size[k] = batch[k];
    out->stride[k] = dims[k] == 1 ? 0 : stride;
    stride *= dims[k];
  }
  return ffi::Error::Success();
}

int64_t Block(const Broadcast& b, int64_t flat) {
  int64_t offset = 0;
  for (int k = b.rank - 1; k >= 0; --k) {
    offset += (flat % b.size[k]) * b.stride[k];
    flat /= b.size[k];
  }
  return offset;
}

template <typename T>
struct Args {
  const T* x;
  const T* average;
  const T* cost;
  const int32_t* indices;
  const T* eta;
  const int32_t* bounds;
  const T* a;
  const T* b;
  const T* a_norm2;
  const T* weight;
  const T* c;
  const T* radius;
  T* x_out;
  T* average_out;
  T* cost_out;
};

// The same pointers moved to trial m's blocks (its outputs at m).
template <typename T>
Args<T> Locate(const Args<T>& in, const Broadcast* bc, int64_t m, int64_t d, int64_t w,
               int64_t n, int64_t length, int64_t horizon) {
  return Args<T>{in.x + Block(bc[0], m) * d,       in.average + Block(bc[1], m) * d,
                 in.cost + Block(bc[2], m),        in.indices + Block(bc[3], m) * length,
                 in.eta + Block(bc[4], m) * horizon, in.bounds + Block(bc[5], m) * 3,
                 in.a + Block(bc[6], m) * n * w,   in.b + Block(bc[7], m) * n,
                 in.a_norm2 + Block(bc[8], m) * n, in.weight + Block(bc[9], m) * n,
                 in.c + Block(bc[10], m) * n,      in.radius + Block(bc[11], m),
                 in.x_out + m * d,                 in.average_out + m * d,
                 in.cost_out + m};
}

// Steps lo..hi of kGroup trials (from Locate) that share lo, hi and the
// offset, in lockstep: a step of one trial is a chain (the reduction, then the
// step size, then the update), so interleaving independent trials overlaps
// their latencies. Rows of ``a`` are padded with zeros to ``width``, a multiple
// of kLanes, so every pass runs over whole blocks the compiler vectorises; with
// the block count known at compile time (kBlocks > 0) the iterates and
// averages stay in registers (or L1) over all the steps.
template <typename T, int kBlocks, int kGroup>
void RunGroup(const Args<T>* trials, int64_t d, int64_t width) {
  constexpr int64_t kWidth = kBlocks > 0 ? kBlocks * kLanes : 1;
  const int64_t w = kBlocks > 0 ? kWidth : width;
  T fixed[2 * kGroup][kWidth];
  std::vector<T> heap(kBlocks > 0 ? 0 : 2 * kGroup * w);
  T* x[kGroup];
  T* avg[kGroup];
  T cost[kGroup], radius[kGroup];
  for (int g = 0; g < kGroup; ++g) {
    x[g] = kBlocks > 0 ? fixed[2 * g] : heap.data() + 2 * g * w;
    avg[g] = kBlocks > 0 ? fixed[2 * g + 1] : heap.data() + (2 * g + 1) * w;
    std::fill(x[g] + d, x[g] + w, T(0));
    std::fill(avg[g] + d, avg[g] + w, T(0));
    std::copy(trials[g].x, trials[g].x + d, x[g]);
    std::copy(trials[g].average, trials[g].average + d, avg[g]);
    cost[g] = *trials[g].cost;
    radius[g] = *trials[g].radius;
  }
  const T tiny = std::numeric_limits<T>::min();
  const T inf = std::numeric_limits<T>::infinity();
  const T nan = std::numeric_limits<T>::quiet_NaN();
  const int32_t lo = trials[0].bounds[0], hi = trials[0].bounds[1], offset = trials[0].bounds[2];
  for (int32_t t = lo; t <= hi; ++t) {
    const T inv_t = T(1) / static_cast<T>(t);
    int32_t i[kGroup];
    const T* row[kGroup];
    T ax[kGroup], xx[kGroup];
    for (int g = 0; g < kGroup; ++g) {
      i[g] = trials[g].indices[t - 1 - offset];
      row[g] = trials[g].a + static_cast<int64_t>(i[g]) * w;
    }
    for (int g = 0; g < kGroup; ++g) {
      T* xg = x[g];
      T* ag = avg[g];
      const T* r = row[g];
      T sa = 0, sx = 0;
#pragma omp simd reduction(+ : sa, sx)
      for (int64_t j = 0; j < w; ++j) {
        ag[j] += (xg[j] - ag[j]) * inv_t;
        sa += r[j] * xg[j];
        sx += xg[j] * xg[j];
      }
      ax[g] = sa;
      xx[g] = sx;
    }
    for (int g = 0; g < kGroup; ++g) {
      const Args<T>& tr = trials[g];
      const int32_t k = i[g];
      const T step = tr.eta[t - 1] * tr.weight[k] * (ax[g] - tr.b[k]);
      const T norm2 = xx[g] - T(2) * step * ax[g] + step * step * tr.a_norm2[k];
      const T norm = std::sqrt(std::max(norm2, T(0)));
      T scale = std::min(T(1), radius[g] / std::max(norm, tiny));
      if (!(norm < inf)) scale = nan;
      T* xg = x[g];
      const T* r = row[g];
      if (scale == T(1)) {  // inside the ball (predicted): no wait on the sqrt and divide
#pragma omp simd
        for (int64_t j = 0; j < w; ++j) xg[j] -= step * r[j];
      } else {
#pragma omp simd
        for (int64_t j = 0; j < w; ++j) xg[j] = (xg[j] - step * r[j]) * scale;
      }
      cost[g] += tr.c[k];
    }
  }
  for (int g = 0; g < kGroup; ++g) {
    std::copy(x[g], x[g] + d, trials[g].x_out);
    std::copy(avg[g], avg[g] + d, trials[g].average_out);
    *trials[g].cost_out = cost[g];
  }
}

// Whether a trial's steps read only inside its arguments: 1 <= lo, hi <= T,
// the indices of steps lo..hi inside ``indices`` and each in [0, n).
template <typename T>
bool InRange(const Args<T>& trial, int64_t n, int64_t length, int64_t horizon) {
  const int64_t lo = trial.bounds[0], hi = trial.bounds[1], offset = trial.bounds[2];
  if (lo > hi) return true;
  if (lo < 1 || hi > horizon || lo - 1 - offset < 0 || hi - 1 - offset >= length) return false;
  for (int64_t t = lo; t <= hi; ++t) {
    const int32_t i = trial.indices[t - 1 - offset];
    if (i < 0 || i >= n) return false;
  }
  return true;
}

// Every trial of the batch: in groups of kGroupSize where their bounds agree
// (under jax.vmap they are shared), else one at a time.
template <typename T, int kBlocks>
ffi::Error Run(const Args<T>& in, const Broadcast* bc, int64_t batch, int64_t d, int64_t width,
               int64_t n, int64_t length, int64_t horizon) {
  Args<T> trials[kGroupSize];
  for (int64_t m = 0; m < batch;) {
    int count = 0;
    while (count < kGroupSize && m + count < batch) {
      trials[count] = Locate(in, bc, m + count, d, width, n, length, horizon);
      if (!InRange(trials[count], n, length, horizon)) {
        return ffi::Error::InvalidArgument(
            "linear_sgd_steps: bounds outside the step sizes or indices, or an index outside "
            "[0, n)");
      }
      ++count;
    }
    bool shared = count == kGroupSize;
    for (int g = 1; shared && g < count; ++g) {
      shared = std::equal(trials[g].bounds, trials[g].bounds + 3, trials[0].bounds);
    }
    if (shared) {
      RunGroup<T, kBlocks, kGroupSize>(trials, d, width);
      m += kGroupSize;
    } else {
      RunGroup<T, kBlocks, 1>(trials, d, width);
      m += 1;
    }
  }
  return ffi::Error::Success();
}

// Run with the block count as a compile-time constant up to 8 blocks (d <= 128).
template <typename T>
ffi::Error Dispatch(const Args<T>& in, const Broadcast* bc, int64_t batch, int64_t d,
                    int64_t width, int64_t n, int64_t length, int64_t horizon) {
  switch (width / kLanes) {
#define COSTSGD_BLOCKS(k) \
  case k:                 \
    return Run<T, k>(in, bc, batch, d, width, n, length, horizon);
    COSTSGD_BLOCKS(1) COSTSGD_BLOCKS(2) COSTSGD_BLOCKS(3) COSTSGD_BLOCKS(4)
    COSTSGD_BLOCKS(5) COSTSGD_BLOCKS(6) COSTSGD_BLOCKS(7) COSTSGD_BLOCKS(8)
#undef COSTSGD_BLOCKS
    default:
      return Run<T, 0>(in, bc, batch, d, width, n, length, horizon);
  }
}

template <typename T>
const T* Data(const ffi::AnyBuffer& buf) {
  return static_cast<const T*>(buf.untyped_data());
}

// The typed pointers of the arguments (in the handler's order) and the results.
template <typename T>
Args<T> Gather(const ffi::AnyBuffer* const* args, const ffi::AnyBuffer* const* outs) {
  auto out = [&](int k) { return static_cast<T*>(outs[k]->untyped_data()); };
  return Args<T>{Data<T>(*args[0]),       Data<T>(*args[1]), Data<T>(*args[2]),
                 Data<int32_t>(*args[3]), Data<T>(*args[4]), Data<int32_t>(*args[5]),
                 Data<T>(*args[6]),       Data<T>(*args[7]), Data<T>(*args[8]),
                 Data<T>(*args[9]),       Data<T>(*args[10]), Data<T>(*args[11]),
                 out(0),                  out(1),            out(2)};
}

ffi::Error LinearSgdSteps(ffi::AnyBuffer x, ffi::AnyBuffer average, ffi::AnyBuffer cost,
                          ffi::AnyBuffer indices, ffi::AnyBuffer eta, ffi::AnyBuffer bounds,
                          ffi::AnyBuffer a, ffi::AnyBuffer b, ffi::AnyBuffer a_norm2,
                          ffi::AnyBuffer weight, ffi::AnyBuffer c, ffi::AnyBuffer radius,
                          ffi::Result<ffi::AnyBuffer> x_out,
                          ffi::Result<ffi::AnyBuffer> average_out,
                          ffi::Result<ffi::AnyBuffer> cost_out) {
  auto out_dims = x_out->dimensions();
  const int batch_rank = static_cast<int>(out_dims.size()) - 1;
  if (batch_rank < 0 || batch_rank > kMaxBatchRank) {
    return ffi::Error::InvalidArgument("linear_sgd_steps: rank of x");
  }
  int64_t batch_dims[kMaxBatchRank];
  int64_t batch = 1;
  for (int k = 0; k < batch_rank; ++k) batch *= (batch_dims[k] = out_dims[k]);
  const int64_t d = out_dims[batch_rank];
  const ffi::AnyBuffer* args[] = {&x, &average, &cost, &indices, &eta, &bounds,
                                  &a, &b, &a_norm2, &weight, &c, &radius};
  const int own_rank[] = {1, 1, 0, 1, 1, 1, 2, 1, 1, 1, 1, 0};
  const char* names[] = {"x", "average", "cost", "indices", "eta", "bounds",
                         "a", "b", "a_norm2", "weight", "c", "radius"};
  Broadcast bc[12];
  for (int k = 0; k < 12; ++k) {
    ffi::Error err = MakeBroadcast(*args[k], own_rank[k], batch_dims, batch_rank, names[k], &bc[k]);
    if (err.failure()) return err;
  }
  auto last = [&](int k, int from_end) {
    auto dims = args[k]->dimensions();
    return dims[dims.size() - from_end];
  };
  const int64_t n = last(6, 2), width = last(6, 1), length = last(3, 1), horizon = last(4, 1);
  if (width % kLanes != 0 || width < d) {
    return ffi::Error::InvalidArgument("linear_sgd_steps: rows of a must be padded to kLanes");
  }
  for (int k : {7, 8, 9, 10}) {
    if (last(k, 1) != n) {
      return ffi::Error::InvalidArgument(std::string("linear_sgd_steps: size of ") + names[k]);
    }
  }
  if (last(0, 1) != d || last(1, 1) != d || last(5, 1) != 3) {
    return ffi::Error::InvalidArgument("linear_sgd_steps: sizes of x, average or bounds");
  }
  for (int k : {1, 2, 4, 6, 7, 8, 9, 10, 11}) {
    if (args[k]->element_type() != x.element_type()) {
      return ffi::Error::InvalidArgument(std::string("linear_sgd_steps: dtype of ") + names[k]);
    }
  }
  for (const ffi::AnyBuffer* out : {&*x_out, &*average_out, &*cost_out}) {
    if (out->element_type() != x.element_type()) {
      return ffi::Error::InvalidArgument("linear_sgd_steps: results must have x's dtype");
    }
  }
  if (indices.element_type() != ffi::DataType::S32 || bounds.element_type() != ffi::DataType::S32) {
    return ffi::Error::InvalidArgument("linear_sgd_steps: indices and bounds must be int32");
  }
  const ffi::AnyBuffer* outs[] = {&*x_out, &*average_out, &*cost_out};
  switch (x.element_type()) {
    case ffi::DataType::F32:
      return Dispatch(Gather<float>(args, outs), bc, batch, d, width, n, length, horizon);
    case ffi::DataType::F64:
      return Dispatch(Gather<double>(args, outs), bc, batch, d, width, n, length, horizon);
    default:
      return ffi::Error::InvalidArgument("linear_sgd_steps: float32 or float64 only");
  }
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(CostsgdLinearSgdSteps, LinearSgdSteps,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()  // x
                                  .Arg<ffi::AnyBuffer>()  // average
                                  .Arg<ffi::AnyBuffer>()  // cost
                                  .Arg<ffi::AnyBuffer>()  // indices
                                  .Arg<ffi::AnyBuffer>()  // eta
                                  .Arg<ffi::AnyBuffer>()  // bounds: lo, hi, offset
                                  .Arg<ffi::AnyBuffer>()  // a
                                  .Arg<ffi::AnyBuffer>()  // b
                                  .Arg<ffi::AnyBuffer>()  // a_norm2
                                  .Arg<ffi::AnyBuffer>()  // weight
                                  .Arg<ffi::AnyBuffer>()  // c
                                  .Arg<ffi::AnyBuffer>()  // radius
                                  .Ret<ffi::AnyBuffer>()  // x
                                  .Ret<ffi::AnyBuffer>()  // average
                                  .Ret<ffi::AnyBuffer>());  // cost
