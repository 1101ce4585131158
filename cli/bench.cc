// `kubeca bench join`: a thousand nodes joining at once (docs/benchmarks.md, "join").
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "common.h"
#include "kubeca/fs.h"
#include "kubeca/join_bench.h"

namespace kubeca::cli {

namespace {

namespace fs = std::filesystem;

size_t count_flag(const po::variables_map& vm, const char* name, long long max) {
  const long long v = vm[name].as<long long>();
  if (v < 1 || v > max) {
    throw UsageError(std::string("--") + name + ": " + std::to_string(v) +
                     " is not between 1 and " + std::to_string(max));
  }
  return static_cast<size_t>(v);
}

int bench_join(const std::vector<std::string>& args, const std::string& usage) {
  po::options_description desc("Options");
  desc.add_options()("nodes", po::value<long long>()->default_value(1000),
                     "simulated nodes, each with its own token, key and CSR")(
      "concurrency", po::value<long long>()->default_value(200), "joins in flight at once")(
      "server", po::value<std::string>()->required(),
      "the signer, https://HOST:PORT; replicas URL1,URL2,... (node i goes to URL i mod n)")(
      "pki", po::value<std::string>()->default_value(kDefaultPki),
      "the PKI folder: ca.pem, and admin.pem/admin-key.pem to create the tokens")(
      "store", po::value<std::string>(),
      "create the tokens in this store (sqlite:PATH, etcd://...) instead of over the API")(
      "key-algorithm", po::value<std::string>()->default_value("ecdsa-p256"),
      "the nodes' key type");
  po::variables_map vm;
  if (!parse(args,
             usage +
                 "\n\nPrepares N nodes (keys, CSRs, single-use tokens bound to each node name;\n"
                 "not timed), then joins them at once: each is a fresh TCP and TLS connection\n"
                 "and one POST /v1/sign, with no retry. Prints successes, latency percentiles\n"
                 "and joins/s, and checks that every certificate verifies against the CA, names\n"
                 "its node, holds its key, and that every serial is unique. Exit code 1 when any\n"
                 "node failed or any check did not hold.",
             desc, vm)) {
    return 0;
  }
  JoinBenchOptions o;
  o.nodes = count_flag(vm, "nodes", 1000000);
  o.concurrency = count_flag(vm, "concurrency", 4096);
  try {
    o.servers = split_servers(vm["server"].as<std::string>());
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("--server: ") + e.what());
  }
  o.key_algorithm = vm["key-algorithm"].as<std::string>();
  const fs::path pki = vm["pki"].as<std::string>();
  require_input_file("--pki", (pki / "ca.pem").string());
  o.ca_pem = read_file(pki / "ca.pem");
  std::unique_ptr<Store> store;
  if (vm.count("store")) {
    check_store_url(vm["store"].as<std::string>());
    store = open_store(vm["store"].as<std::string>(), OpenMode::kExisting);
    o.store = store.get();
  } else {
    for (const char* f : {"admin.pem", "admin-key.pem"}) {
      require_input_file("--pki", (pki / f).string());
    }
    o.admin_cert_pem = read_file(pki / "admin.pem");
    o.admin_key_pem = read_file(pki / "admin-key.pem");
  }
  o.log = [](const std::string& s) { std::cerr << "kubeca: " << s << "\n"; };
  const JoinBenchResult r = run_join_bench(o);
  char line[512];
  std::snprintf(line, sizeof line,
                "nodes %zu  concurrency %zu  servers %zu\n"
                "successes %zu/%zu  failures %zu\n"
                "latency ms  p50 %.1f  p95 %.1f  p99 %.1f  max %.1f\n"
                "%.3f s, %.0f joins/s\n"
                "certificates verified against the CA %zu/%zu, unique serials %zu/%zu\n",
                r.nodes, o.concurrency, o.servers.size(), r.successes, r.nodes, r.failure_count,
                r.p50_ms, r.p95_ms, r.p99_ms, r.max_ms, r.seconds, r.joins_per_second, r.verified,
                r.nodes, r.unique_serials, r.nodes);
  std::cout << line;
  for (const auto& f : r.failures) std::cout << "failed: " << f << "\n";
  if (r.failure_count > r.failures.size()) {
    std::cout << "(and " << r.failure_count - r.failures.size() << " more)\n";
  }
  return r.ok() ? 0 : 1;
}

}  // namespace

int cmd_bench(const std::vector<std::string>& args) {
  const std::string usage =
      "Usage: kubeca bench join --server URL[,URL...] --pki DIR [--nodes N] [--concurrency C]";
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    (args.empty() ? std::cerr : std::cout) << usage << "\n";
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "join") return bench_join({args.begin() + 1, args.end()}, usage);
  throw UsageError("unknown bench \"" + args[0] + "\" (join)");
}

}  // namespace kubeca::cli
