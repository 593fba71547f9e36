// dist/sampler.hpp against torch.utils.data.DistributedSampler and torch.randperm (fixture written by
// tests/torch/make_sampler_fixtures.py with python3-torch), plus the shards' own properties.
#include <catch2/catch.hpp>

#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include <grcnn/backends/default.hpp>
#include <grcnn/dist/sampler.hpp>

using namespace grcnn;

namespace {
const nlohmann::json& fixture() {
  static const nlohmann::json j = [] {
    std::ifstream in("sampler_fixtures.json");
    REQUIRE(in.good());
    return nlohmann::json::parse(in);
  }();
  return j;
}
}  // namespace

TEST_CASE("torch_randperm equals torch.randperm with a seeded CPU generator", "[dist][sampler]") {
  for (const auto& c : fixture()["perms"]) {
    const auto n = c["n"].get<std::size_t>();
    const auto seed = c["seed"].get<std::uint64_t>();
    INFO("n " << n << " seed " << seed << " (torch " << fixture()["torch"].get<std::string>() << ")");
    CHECK(dist::torch_randperm(n, seed) == c["perm"].get<std::vector<std::size_t>>());
  }
}

TEST_CASE("distributed_indices equal DistributedSampler's for every rank, seed, epoch and padding", "[dist][sampler]") {
  std::size_t cases = 0;
  for (const auto& c : fixture()["cases"]) {
    dist::sampler_options o;
    o.world = c["world"].get<std::size_t>();
    o.rank = c["rank"].get<std::size_t>();
    o.seed = c["seed"].get<std::uint64_t>();
    o.shuffle = c["shuffle"].get<bool>();
    o.drop_last = c["drop_last"].get<bool>();
    const auto n = c["n"].get<std::size_t>();
    const auto epoch = c["epoch"].get<std::uint64_t>();
    const auto expect = c["indices"].get<std::vector<std::size_t>>();
    INFO("n " << n << " world " << o.world << " rank " << o.rank << " seed " << o.seed << " epoch " << epoch
              << " shuffle " << o.shuffle << " drop_last " << o.drop_last);
    REQUIRE(dist::distributed_indices(n, o, epoch) == expect);
    CHECK(dist::distributed_samples(n, o) == expect.size());
    ++cases;
  }
  CHECK(cases > 2000);
}

TEST_CASE("shards: the same length, disjoint but for the padding, together the whole dataset", "[dist][sampler]") {
  for (std::size_t n : {1u, 5u, 16u, 101u})
    for (std::size_t world : {1u, 2u, 3u, 4u, 8u})
      for (bool drop_last : {false, true}) {
        INFO("n " << n << " world " << world << " drop_last " << drop_last);
        std::multiset<std::size_t> all;
        std::size_t length = 0;
        for (std::size_t r = 0; r < world; ++r) {
          const auto mine = dist::distributed_indices(n, {.world = world, .rank = r, .seed = 3, .drop_last = drop_last}, 5);
          if (r == 0) length = mine.size();
          CHECK(mine.size() == length);
          all.insert(mine.begin(), mine.end());
        }
        const std::set<std::size_t> distinct(all.begin(), all.end());
        if (!drop_last) {
          CHECK(distinct.size() == n);  // every sample
          CHECK(all.size() == (n + world - 1) / world * world);  // padded as torch pads
        } else {
          CHECK(all.size() == distinct.size());  // no repeats
          CHECK(all.size() == n / world * world);
        }
        // Evaluation shards: every sample exactly once.
        std::multiset<std::size_t> eval;
        for (std::size_t r = 0; r < world; ++r)
          for (auto i : dist::evaluation_indices(n, world, r)) eval.insert(i);
        CHECK(eval.size() == n);
        CHECK(std::set<std::size_t>(eval.begin(), eval.end()).size() == n);
      }
  CHECK_THROWS_WITH(dist::distributed_indices(5, {.world = 2, .rank = 2}, 0), Catch::Contains("rank 2 of a world of 2"));
}
