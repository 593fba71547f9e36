#pragma once
// The VOneBlock's Gabor filter bank (Dapello et al. 2020): per-channel parameters sampled from the
// published macaque V1 distributions, and the kernels built from them. The sampling replays numpy's
// legacy RandomState (core/numpy_random.hpp) draw for draw, so a seed gives the very bank VOneNet's generate_gabor_param
// gives with that seed (tests/torch/make_vone_fixtures.py checks it).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <random>
#include <vector>

#include "grcnn/core/error.hpp"
#include "grcnn/core/numpy_random.hpp"
#include "grcnn/core/tensor.hpp"

namespace grcnn::nn::gabor {

using numpy_legacy_rng = grcnn::numpy_legacy_rng;

// numpy.interp for increasing (possibly repeated) knots xp, x inside [xp.front(), xp.back()] or clamped.
inline double interp(double x, const std::vector<double>& xp, const std::vector<double>& fp) {
  if (x < xp.front()) return fp.front();
  if (x >= xp.back()) return fp.back();
  std::size_t j = static_cast<std::size_t>(std::upper_bound(xp.begin(), xp.end(), x) - xp.begin()) - 1;  // xp[j] <= x < xp[j+1]
  if (xp[j] == x) return fp[j];
  const double slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j]);
  return slope * (x - xp[j]) + fp[j];
}

// [0, cumsum(weights)...] as numpy's np.hstack(([0], w.cumsum())).
inline std::vector<double> cdf_knots(const std::vector<double>& w) {
  std::vector<double> k{0.0};
  double s = 0.0;
  for (double v : w) k.push_back(s += v);
  return k;
}
inline std::vector<double> normalized(std::vector<double> w) {
  double s = 0.0;
  for (double v : w) s += v;
  for (double& v : w) v /= s;
  return w;
}

// The sampled parameters, one entry per channel, in the units of the literature.
struct v1_parameters {
  std::vector<double> sf;     // spatial frequency, cycles per degree
  std::vector<double> theta;  // orientation, degrees in [0, 180)
  std::vector<double> phase;  // degrees in [0, 360)
  std::vector<double> nx, ny; // envelope widths in cycles (sigma * f)
  std::size_t size() const { return sf.size(); }
};

struct sampling_options {
  int features = 512;
  std::uint32_t seed = 0;
  double sf_corr = 0.75;  // correlation of nx and sf (Gaussian copula)
  double sf_max = 9.0, sf_min = 0.0;
};

// The published distributions (VOneNet params.py): orientation (De Valois 1982a), the joint nx/ny
// counts (Ringach 2002), spatial frequency (De Valois 1982b).
inline constexpr std::array<double, 5> orientation_bins{-22.5, 22.5, 67.5, 112.5, 157.5};
inline constexpr std::array<double, 4> orientation_counts{66, 49, 77, 54};
inline constexpr std::array<std::array<double, 5>, 5> nxny_counts{{{2, 0, 1, 0, 0},
                                                                   {8, 9, 4, 1, 0},
                                                                   {1, 2, 19, 17, 3},
                                                                   {0, 0, 1, 7, 4},
                                                                   {0, 0, 0, 0, 0}}};
inline constexpr std::array<double, 9> sf_bins{0.5, 0.7, 1.0, 1.4, 2.0, 2.8, 4.0, 5.6, 8.0};
inline constexpr std::array<double, 8> sf_counts{4, 4, 8, 25, 32, 26, 28, 12};

// np.logspace(-1, 0.2, 6): the nx and ny bin edges.
inline std::vector<double> n_bins() {
  std::vector<double> b(6);
  const double step = (0.2 - -1.0) / 5.0;
  for (int i = 0; i < 6; ++i) b[static_cast<std::size_t>(i)] = std::pow(10.0, i == 5 ? 0.2 : i * step + -1.0);
  return b;
}

// Rows of z ~ N(0, [[1, r], [r, 1]]) as numpy's multivariate_normal makes them: x @ (sqrt(s)[:, None] * v)
// with (u, s, v) = svd(cov); the signs of v are LAPACK's for this matrix (checked against numpy).
inline std::array<double, 2> correlated_normal(numpy_legacy_rng& rng, double r) {
  const double x0 = rng.standard_normal(), x1 = rng.standard_normal();
  const double h = std::numbers::sqrt2 / 2;
  double a00, a01, a10, a11;
  if (r > 0) {
    const double s0 = std::sqrt(1 + r), s1 = std::sqrt(1 - r);
    a00 = -h * s0, a01 = -h * s0, a10 = -h * s1, a11 = h * s1;
  } else if (r < 0) {
    const double s0 = std::sqrt(1 - r), s1 = std::sqrt(1 + r);
    a00 = -h * s0, a01 = h * s0, a10 = h * s1, a11 = h * s1;
  } else {
    a00 = 1, a01 = 0, a10 = 0, a11 = 1;
  }
  return {x0 * a00 + x1 * a10, x0 * a01 + x1 * a11};
}

inline double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::numbers::sqrt2); }

// VOneNet's generate_gabor_param(features, seed, rand_flag=False, sf_corr, sf_max, sf_min), draw for draw:
// phase U(0, 360); orientation by inverse CDF over its histogram (negatives + 180); (nx, sf) through a
// Gaussian copula with correlation sf_corr; ny from the joint table's row for nx's bin.
inline v1_parameters sample_v1_parameters(const sampling_options& o) {
  GRCNN_CHECK(o.features >= 1, error, "gabor: needs at least one feature, got ", o.features);
  GRCNN_CHECK(o.sf_corr >= -1 && o.sf_corr <= 1, error, "gabor: sf_corr must lie in [-1, 1], got ", o.sf_corr);
  // Spatial-frequency bins kept: from the first edge >= sf_min to the last edge <= sf_max.
  std::size_t lo = sf_bins.size(), hi = 0;
  for (std::size_t i = 0; i < sf_bins.size(); ++i) {
    if (sf_bins[i] >= o.sf_min && lo == sf_bins.size()) lo = i;
    if (sf_bins[i] <= o.sf_max) hi = i;
  }
  GRCNN_CHECK(lo < sf_bins.size() && sf_bins[0] <= o.sf_max && hi > lo, error, "gabor: sf_min ", o.sf_min, " and sf_max ",
              o.sf_max, " leave no spatial-frequency bin of [0.5, 8] cycles/degree");
  std::vector<double> sf_log2_edges, sf_w;
  for (std::size_t i = lo; i <= hi; ++i) sf_log2_edges.push_back(std::log2(sf_bins[i]));
  for (std::size_t i = lo; i < hi; ++i) sf_w.push_back(sf_counts[i]);
  const auto sf_k = cdf_knots(normalized(sf_w));

  std::vector<double> ori_w(orientation_counts.begin(), orientation_counts.end());
  const auto ori_k = cdf_knots(normalized(ori_w));
  const std::vector<double> ori_edges(orientation_bins.begin(), orientation_bins.end());

  double total = 0;
  for (const auto& row : nxny_counts)
    for (double v : row) total += v;
  std::vector<double> nx_w;
  std::vector<std::vector<double>> ny_rows;
  for (const auto& row : nxny_counts) {
    double s = 0;
    for (double v : row) s += v / total;
    nx_w.push_back(s);
    std::vector<double> r;
    for (double v : row) r.push_back((v / total) / s);  // NaN for the empty last row, as numpy (never used)
    ny_rows.push_back(r);
  }
  const auto nx_k = cdf_knots(normalized(nx_w));
  const auto nb = n_bins();
  std::vector<double> n_log10;
  for (double b : nb) n_log10.push_back(std::log10(b));

  const auto F = static_cast<std::size_t>(o.features);
  numpy_legacy_rng rng(o.seed);
  v1_parameters p;
  p.phase.resize(F), p.theta.resize(F), p.nx.resize(F), p.ny.resize(F), p.sf.resize(F);
  for (auto& v : p.phase) v = interp(rng.random_sample(), {0.0, 1.0}, {0.0, 360.0});
  for (auto& v : p.theta) {
    v = interp(rng.random_sample(), ori_k, ori_edges);
    if (v < 0) v += 180;
  }
  std::vector<double> u_sf(F);
  for (std::size_t i = 0; i < F; ++i) {
    const auto z = correlated_normal(rng, o.sf_corr);
    p.nx[i] = std::pow(10.0, interp(normal_cdf(z[0]), nx_k, n_log10));
    u_sf[i] = normal_cdf(z[1]);
  }
  for (std::size_t i = 0; i < F; ++i) {
    const double u = rng.random_sample();
    std::size_t bin = 0;  // the last edge below nx
    for (std::size_t b = 0; b < nb.size(); ++b)
      if (nb[b] < p.nx[i]) bin = b;
    p.ny[i] = std::pow(10.0, interp(u, cdf_knots(ny_rows[bin]), n_log10));
  }
  for (std::size_t i = 0; i < F; ++i) p.sf[i] = std::pow(2.0, interp(u_sf[i], sf_k, sf_log2_edges));
  return p;
}

// A Gabor kernel of size ks x ks (coordinates -ks/2..ks/2; x runs along rows, y along columns):
// exp(-(x'^2/sigma_x^2 + y'^2/sigma_y^2)/2) / (2 pi sigma_x sigma_y) * cos(2 pi f x' + phase), with
// x' = x cos(theta) + y sin(theta), y' = -x sin(theta) + y cos(theta). f in cycles per pixel; radians.
inline std::vector<double> kernel(double f, double sigma_x, double sigma_y, double theta, double phase, int ks) {
  const int w = ks / 2;
  std::vector<double> g(static_cast<std::size_t>(ks) * static_cast<std::size_t>(ks));
  const double c = std::cos(theta), s = std::sin(theta);
  for (int r = 0; r < ks; ++r)
    for (int q = 0; q < ks; ++q) {
      const double x = r - w, y = q - w;
      const double xr = x * c + y * s, yr = -x * s + y * c;
      g[static_cast<std::size_t>(r * ks + q)] =
          std::exp(-0.5 * (xr * xr / (sigma_x * sigma_x) + yr * yr / (sigma_y * sigma_y))) /
          (2 * std::numbers::pi * sigma_x * sigma_y) * std::cos(2 * std::numbers::pi * f * xr + phase);
    }
  return g;
}

struct bank_options {
  int in_channels = 3;
  int kernel_size = 25;
  double pixels_per_degree = 28.0;  // image size / visual degrees (224 / 8)
  double phase_offset = 0.0;        // radians added to every phase (q1: pi / 2)
};

// A fixed filter bank [F, in_channels, ks, ks]: filter i is the Gabor of parameters i in one input
// channel, channels[i], and zero in the others.
inline tensor make_bank(const v1_parameters& p, const std::vector<int>& channels, const bank_options& o) {
  const auto F = static_cast<std::int64_t>(p.size()), ks = static_cast<std::int64_t>(o.kernel_size);
  GRCNN_CHECK(channels.size() == p.size(), shape_error, "gabor bank: ", channels.size(), " channel choices for ", F, " filters");
  GRCNN_CHECK(o.kernel_size >= 1 && o.pixels_per_degree > 0, error, "gabor bank: needs a positive kernel size and pixels per degree");
  std::vector<float> w(static_cast<std::size_t>(F * o.in_channels * ks * ks), 0.f);
  for (std::int64_t i = 0; i < F; ++i) {
    const auto k = static_cast<std::size_t>(i);
    GRCNN_CHECK(channels[k] >= 0 && channels[k] < o.in_channels, shape_error, "gabor bank: filter ", i, " input channel ",
                channels[k], " outside [0, ", o.in_channels, ")");
    const double f = p.sf[k] / o.pixels_per_degree;
    const auto g = kernel(f, p.nx[k] / f, p.ny[k] / f, p.theta[k] / 180 * std::numbers::pi,
                          p.phase[k] / 180 * std::numbers::pi + o.phase_offset, o.kernel_size);
    float* dst = w.data() + (i * o.in_channels + channels[k]) * ks * ks;
    for (std::size_t j = 0; j < g.size(); ++j) dst[j] = static_cast<float>(g[j]);
  }
  return tensor::from_values(grcnn::shape{F, o.in_channels, ks, ks}, w);
}

}  // namespace grcnn::nn::gabor
