#include "fill_job.h"

namespace mfi {

RunLayout make_run_layout(
    const std::vector<int64_t>& full_shape,
    const std::vector<int64_t>& start,
    const std::vector<int64_t>& shape) {
  const int ndim = static_cast<int>(full_shape.size());
  RunLayout layout;
  if (ndim == 0) {  // a scalar: one run of one element, stream index 0
    layout.run_length = 1;
    layout.num_runs = 1;
    return layout;
  }
  // Row-major strides of the full tensor.
  std::vector<uint64_t> stride(ndim, 1);
  for (int d = ndim - 2; d >= 0; --d) {
    stride[d] = stride[d + 1] * static_cast<uint64_t>(full_shape[d + 1]);
  }
  for (int d = 0; d < ndim; ++d) {
    layout.origin += static_cast<uint64_t>(start[d]) * stride[d];
  }
  // Trailing dimensions the window covers entirely are contiguous in the
  // stream and merge into the run; so does the first one it does not cover.
  int j = ndim - 1;
  while (j > 0 && shape[j] == full_shape[j]) {
    --j;
  }
  int64_t run = 1;
  for (int d = j; d < ndim; ++d) {
    run *= shape[d];
  }
  int64_t runs = 1;
  for (int d = 0; d < j; ++d) {
    layout.outer_extent.push_back(shape[d]);
    layout.outer_stride.push_back(stride[d]);
    runs *= shape[d];
  }
  layout.run_length = run;
  layout.num_runs = run == 0 ? 0 : runs;
  return layout;
}

} // namespace mfi
