// grcnn::eval: reads the hvm-mini NeuroidAssembly (a netCDF file) and prints its size.
#include <grcnn/eval/neuroid_assembly.hpp>

#include <filesystem>
#include <iostream>

#include "no_foreign_headers.hpp"

int main() {
  using namespace grcnn;
  const auto a = eval::read_neuroid_assembly(std::filesystem::path(GRCNN_CONSUMER_SOURCE_DIR) /
                                             "data/hvm-mini/majaj2015_subset.nc");
  std::cout << "eval consumer: " << a.name << ", " << a.presentations() << " presentations x " << a.neuroids()
            << " neuroids x " << a.time_bins() << " time bins\n";
  return a.presentations() > 0 && a.neuroids() > 0 && a.time_bins() > 0 ? 0 : 1;
}
