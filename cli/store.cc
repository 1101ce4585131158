// `kubeca store migrate`: a signer's records from one store to another.
#include <iostream>

#include "common.h"
#include "kubeca/store_copy.h"
#include "output.h"

namespace kubeca::cli {

namespace {

int store_migrate(const std::vector<std::string>& args) {
  po::options_description desc("Options");
  desc.add_options()("from", po::value<std::string>()->required(),
                     "the store to read: sqlite:PATH or etcd://...")(
      "to", po::value<std::string>()->required(),
      "the store to fill (must be empty): etcd://H:P,...?ca=F&cert=F&key=F or sqlite:PATH");
  add_output_options(desc);
  po::variables_map vm;
  if (!parse(args,
             "Usage: kubeca store migrate --from URL --to URL [-o json|yaml|table]\n\n"
             "Copies every certificate, revocation and token (with its uses) from one store to\n"
             "another and checks the copy record by record. The target must be empty. Stop the\n"
             "`kubeca serve` that writes the source first (nodes retry meanwhile), then start\n"
             "the replicas on the target. See docs/ha.md.",
             desc, vm)) {
    return 0;
  }
  const Format format = output_format(vm);
  const std::string from_url = vm["from"].as<std::string>(), to_url = vm["to"].as<std::string>();
  if (from_url == to_url) throw UsageError("--from and --to name the same store");
  auto from = open_store(from_url);
  auto to = open_store(to_url);
  const auto n = copy_store(*from, *to, [](size_t done, size_t total) {
    if (done % 100 == 0 || done == total) progress_line(done, total, "records copied");
  });
  if (format != Format::kTable) {
    print_data({{"from", from_url},
                {"to", to_url},
                {"certificates", n.certificates},
                {"revoked", n.revoked},
                {"tokens", n.tokens},
                {"crl_number", n.crl_number},
                {"verified", true}},
               format);
    return 0;
  }
  std::cout << "copied " << n.certificates << " certificates (" << n.revoked << " revoked) and "
            << n.tokens << " tokens from " << from_url << " to " << to_url
            << "; verified; CRL Numbers go on above " << n.crl_number << "\n";
  return 0;
}

}  // namespace

int cmd_store(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::cout << "Usage: kubeca store migrate --from URL --to URL\n";
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "migrate") return store_migrate({args.begin() + 1, args.end()});
  throw UsageError("unknown store command \"" + args[0] + "\" (migrate)");
}

}  // namespace kubeca::cli
