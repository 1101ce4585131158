#include <signal.h>

#include <iostream>

#include "common.h"
#include "kubeca/server.h"

namespace kubeca::cli {

int cmd_serve(const std::vector<std::string>& args) {
  po::options_description desc("Options");
  desc.add_options()("config,c", po::value<std::string>(), "cluster.yaml")(
      "env-file", po::value<std::string>(), "the seed's shell variables")(
      "pki", po::value<std::string>()->required(), "the PKI folder with ca.pem and ca-key.pem")(
      "listen", po::value<std::string>(), "HOST:PORT (default signer.listen; port 0: any free)")(
      "store", po::value<std::string>(), "sqlite:PATH (default signer.store)")(
      "audit-log", po::value<std::string>(),
      "append one JSON line per decision here (default stdout)")(
      "threads", po::value<size_t>()->default_value(64), "connections served at once")(
      "max-failures", po::value<int>()->default_value(10),
      "failed attempts with one token id from one address, per window, before 429")(
      "failure-window", po::value<std::string>()->default_value("1m"),
      "the failure limiter's window (90s, 1m, 1h)");
  po::variables_map vm;
  if (!parse(args,
             "Usage: kubeca serve --config cluster.yaml --pki DIR [--listen ADDR] [--store URL]\n\n"
             "Serves the signing API over TLS 1.2+ with the signer certificate (issued\n"
             "into DIR on first start). Stops gracefully on SIGTERM or SIGINT.",
             desc, vm)) {
    return 0;
  }
  const Config config = load_config_from(vm);
  ServeOptions o;
  const std::string listen =
      vm.count("listen") ? vm["listen"].as<std::string>() : config.signer_listen;
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos) throw UsageError("--listen: expected HOST:PORT");
  o.host = listen.substr(0, colon);
  if (!o.host.empty() && o.host.front() == '[') o.host = o.host.substr(1, o.host.size() - 2);
  try {
    o.port = std::stoi(listen.substr(colon + 1));
  } catch (const std::exception&) {
    throw UsageError("--listen: bad port in \"" + listen + "\"");
  }
  o.threads = vm["threads"].as<size_t>();
  o.max_failures = vm["max-failures"].as<int>();
  if (o.max_failures < 1) throw UsageError("--max-failures: must be at least 1");
  o.failure_window = parse_duration(vm["failure-window"].as<std::string>());
  if (vm.count("audit-log")) o.audit_log = vm["audit-log"].as<std::string>();
  const std::string store_url =
      vm.count("store") ? vm["store"].as<std::string>() : config.signer_store;

  // Signals are taken by a waiting thread, not a handler: stop() is not async-signal-safe.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  SigningServer server(config, vm["pki"].as<std::string>(), open_store(store_url), o);
  const int port = server.start();
  std::cerr << "kubeca: serving on https://" << o.host << ":" << port << " (store " << store_url
            << ")" << std::endl;
  int sig = 0;
  sigwait(&set, &sig);
  std::cerr << "kubeca: " << (sig == SIGTERM ? "SIGTERM" : "SIGINT")
            << ": finishing requests in flight" << std::endl;
  server.stop();
  server.wait();
  std::cerr << "kubeca: stopped" << std::endl;
  return 0;
}

}  // namespace kubeca::cli
