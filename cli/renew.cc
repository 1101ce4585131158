#include <signal.h>

#include <atomic>
#include <iostream>
#include <thread>

#include "common.h"
#include "kubeca/node.h"
#include "kubeca/pki.h"

namespace kubeca::cli {

int cmd_renew(const std::vector<std::string>& args) {
  po::options_description desc("Options");
  desc.add_options()("server", po::value<std::string>()->required(),
                     "the signer, https://HOST:8443; replicas: URL1,URL2,... (tried in turn)")(
      "ca", po::value<std::string>()->required(), "the cluster CA (ca.pem) to trust the signer")(
      "cert", po::value<std::string>()->required(),
      "the certificate to renew (also the mTLS identity)")(
      "key", po::value<std::string>()->required(), "its key")(
      "daemon", "keep running: renew at 2/3 of each certificate's life")(
      "exec", po::value<std::string>(), "run this shell command after each swap (kubelet restart)")(
      "rotate-key", "make a new key instead of keeping the current one")(
      "force", "renew now, even when not yet due")("retries", po::value<int>()->default_value(8),
                                                   "one-shot: attempts while unreachable")(
      "max-backoff", po::value<std::string>()->default_value("5m"), "longest wait between retries");
  po::variables_map vm;
  if (!parse(args,
             "Usage: kubeca renew --server URL --ca ca.pem --cert C --key K [--daemon] "
             "[--exec CMD] [--rotate-key]\n\n"
             "Renews a certificate over mTLS with itself, once it is two thirds through its\n"
             "life (with jitter); swaps certificate and key atomically; runs the hook.\n"
             "Without --daemon it exits 0 when the certificate is not due yet.",
             desc, vm)) {
    return 0;
  }
  for (const char* f : {"ca", "cert", "key"}) {
    require_input_file(std::string("--") + f, vm[f].as<std::string>());
  }
  RenewOptions o;
  o.server = vm["server"].as<std::string>();
  o.ca_file = vm["ca"].as<std::string>();
  o.cert = vm["cert"].as<std::string>();
  o.key = vm["key"].as<std::string>();
  o.rotate_key = vm.count("rotate-key") > 0;
  o.force = vm.count("force") > 0;
  if (vm.count("exec")) o.exec = vm["exec"].as<std::string>();
  o.max_attempts = vm["retries"].as<int>();
  if (o.max_attempts < 1) {
    throw UsageError("--retries: " + std::to_string(o.max_attempts) + " is not 1 or more");
  }
  o.max_delay = parse_duration(vm["max-backoff"].as<std::string>());
  o.log = [](const std::string& s) { std::cerr << "kubeca: " << s << std::endl; };
  if (!vm.count("daemon")) {
    const auto r = node_renew(o);
    if (r.renewed) {
      std::cout << "renewed " << o.cert.string() << " (serial " << r.serial << ")\n";
    } else {
      std::cout << "not due: " << o.cert.string() << " renews after " << format_time(r.next_due)
                << " (--force to renew now)\n";
    }
    return 0;
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::atomic<bool> stop{false};
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&set, &sig);
    stop = true;
  });
  int rc = 0;
  try {
    renew_daemon(o, stop);
  } catch (const std::exception& e) {
    std::cerr << "kubeca: " << e.what() << std::endl;
    rc = 1;
  }
  if (!stop) pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
  return rc;
}

}  // namespace kubeca::cli
