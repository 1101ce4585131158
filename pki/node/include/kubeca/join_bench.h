// `kubeca bench join`: many nodes joining at once, each with its own token, key and CSR,
// each over a fresh TLS connection; every certificate is checked afterwards.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kubeca/store.h"

namespace kubeca {

struct JoinBenchOptions {
  std::vector<std::string> servers;  // https://HOST:PORT; node i goes to servers[i % size]
  std::string ca_pem;                // the cluster CA: trusts the servers, checks the answers
  std::string admin_cert_pem, admin_key_pem;  // to create the tokens over the API
  Store* store = nullptr;  // or, when set, the tokens are put straight into this store
  size_t nodes = 1000;
  size_t concurrency = 200;
  std::string key_algorithm = "ecdsa-p256";
  std::function<void(const std::string&)> log;  // progress of the preparation
};

struct JoinBenchResult {
  size_t nodes = 0, successes = 0;
  std::vector<std::string> failures;  // "node NAME: why", at most a few kept
  size_t failure_count = 0;
  double p50_ms = 0, p95_ms = 0, p99_ms = 0, max_ms = 0;
  double seconds = 0;  // from the first connect to the last answer
  double joins_per_second = 0;
  size_t verified = 0;        // certificates that chain to the CA and carry the node's key
  size_t unique_serials = 0;  // distinct serials among the certificates answered
  bool ok() const { return successes == nodes && verified == nodes && unique_serials == nodes; }
};

// Prepares N keys, CSRs and single-use tokens (not timed), then lets `concurrency` threads
// join the N nodes, each one TCP+TLS connection and one POST /v1/sign, no retry. Throws
// InputError for bad options and std::runtime_error when the preparation fails.
JoinBenchResult run_join_bench(const JoinBenchOptions& options);

// The nearest-rank percentile q (0..100) of sorted values; 0 for none.
double percentile(const std::vector<double>& sorted, double q);

}  // namespace kubeca
