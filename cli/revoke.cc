#include <iostream>

#include "common.h"
#include "kubeca/crl.h"
#include "kubeca/fs.h"
#include "kubeca/net.h"
#include "kubeca/pki.h"
#include "output.h"

namespace kubeca::cli {

namespace {

void print_revoked(const std::vector<std::string>& serials, const std::string& reason,
                   Format format) {
  if (format == Format::kTable) {
    for (const auto& s : serials) std::cout << "revoked " << s << " (" << reason << ")\n";
    return;
  }
  nlohmann::json out = nlohmann::json::array();
  for (const auto& s : serials) out.push_back({{"serial", s}, {"reason", reason}});
  print_data(out, format);
}

int revoke_node(AdminTarget& t, const po::variables_map& vm, const std::string& node,
                const std::string& reason_name, int reason) {
  if (!is_dns_name(node)) throw UsageError("--node: \"" + node + "\" is not a valid node name");
  std::vector<std::string> serials;
  if (t.api) {
    const auto out =
        expect(t.api->post("/v1/revoke", {{"node", node}, {"reason", reason_name}}), 200, "revoke");
    serials = out["revoked"].get<std::vector<std::string>>();
  } else {
    if (!vm.count("pki")) throw UsageError("--store needs --pki (the CA that issued it)");
    const auto ca = load_ca(vm["pki"].as<std::string>(), Profile::kCa, Flavor::kModern);
    t.store->bind_ca(ca_pin(ca->certificate()));  // the store's CA signs the CRL below
    for (const auto& r : kubeca::revoke_node(*t.store, node, reason, unix_now())) {
      serials.push_back(r.serial);
    }
    if (serials.empty()) {
      throw std::runtime_error("no unexpired certificate of node " + node + " in the store");
    }
    // The service's replicas serve the published CRL: this one lists the revocations now.
    make_and_publish_crl(*ca, *t.store, std::chrono::system_clock::now());
  }
  print_revoked(serials, reason_name, output_format(vm));
  return 0;
}

}  // namespace

int cmd_revoke(const std::vector<std::string>& args) {
  po::options_description desc("Options");
  desc.add_options()("serial", po::value<std::string>(), "the serial to revoke (hex)")(
      "cert", po::value<std::string>(), "the certificate file to revoke")(
      "node", po::value<std::string>(), "revoke every unexpired certificate of this node")(
      "reason", po::value<std::string>()->default_value("unspecified"),
      "keyCompromise, superseded, cessationOfOperation, affiliationChanged, ...")(
      "pki", po::value<std::string>(), "with --store: the PKI folder holding the CA");
  add_output_options(desc);
  add_admin_options(desc);
  po::variables_map vm;
  if (!parse(args,
             "Usage: kubeca revoke --serial HEX | --cert FILE | --node NAME [--reason R] [-o ...]\n"
             "       (--pki DIR --store URL, or as an admin against the service)\n\n"
             "Marks the certificate revoked (with --node, every unexpired certificate of the\n"
             "node); the CRL lists it from then on, and no certificate with its key renews.",
             desc, vm)) {
    return 0;
  }
  const Format format = output_format(vm);
  if (vm.count("serial") + vm.count("cert") + vm.count("node") != 1) {
    throw UsageError("give one of --serial, --cert or --node");
  }
  if (vm.count("serial")) {
    const std::string s = vm["serial"].as<std::string>();
    std::string digits;
    for (char ch : s) {
      if (ch != ':') digits += ch;
    }
    if (digits.empty() || digits.size() > 64 ||
        digits.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
      throw UsageError("--serial: \"" + s + "\" is not hex (as `openssl x509 -serial` prints it)");
    }
  }
  if (vm.count("cert")) require_input_file("--cert", vm["cert"].as<std::string>());
  const std::string reason_name = vm["reason"].as<std::string>();
  const auto reason = parse_revocation_reason(reason_name);
  if (!reason) throw UsageError("--reason: unknown \"" + reason_name + "\"");
  AdminTarget t = admin_target(vm);
  if (vm.count("node"))
    return revoke_node(t, vm, vm["node"].as<std::string>(), reason_name, *reason);
  nlohmann::json body = {{"reason", reason_name}};
  std::string serial;
  if (vm.count("cert")) {
    body["certificate"] = read_file(vm["cert"].as<std::string>());
  } else {
    body["serial"] = vm["serial"].as<std::string>();
  }
  if (t.api) {
    const auto out = expect(t.api->post("/v1/revoke", body), 200, "revoke");
    serial = out["serial"];
  } else {
    if (!vm.count("pki")) throw UsageError("--store needs --pki (the CA that issued it)");
    const auto ca = load_ca(vm["pki"].as<std::string>(), Profile::kCa, Flavor::kModern);
    t.store->bind_ca(ca_pin(ca->certificate()));
    const auto rec = revoke_certificate(
        *t.store, *ca, vm.count("serial") ? vm["serial"].as<std::string>() : "",
        vm.count("cert") ? body["certificate"].get<std::string>() : "", *reason, unix_now());
    if (!rec) throw std::runtime_error("no certificate with that serial in the store");
    serial = rec->serial;
    make_and_publish_crl(*ca, *t.store, std::chrono::system_clock::now());
  }
  print_revoked({serial}, reason_name, format);
  return 0;
}

int cmd_crl(const std::vector<std::string>& args) {
  po::options_description desc("Options");
  desc.add_options()("out", po::value<std::string>()->required(),
                     "write the CRL here; - for standard output")(
      "force", "replace an existing --out file that holds something else (an older CRL)")(
      "pem", "PEM instead of DER")("pki", po::value<std::string>(), "with --store: the CA folder");
  add_admin_options(desc);
  po::variables_map vm;
  if (!parse(args,
             "Usage: kubeca crl --out FILE|- [--pem] [--force] (--pki DIR --store URL, or the "
             "service)\n\n"
             "Writes the current certificate revocation list, signed by the CA. An existing\n"
             "--out file with other content (an older CRL) is replaced only with --force.",
             desc, vm)) {
    return 0;
  }
  const std::string out = vm["out"].as<std::string>();
  if (!is_stdout(out)) check_output_file("--out", out);
  AdminTarget t = admin_target(vm);
  const bool pem = vm.count("pem") > 0;
  std::string data;
  if (t.api) {
    const auto r = t.api->get("/v1/crl", pem ? "application/x-pem-file" : "");
    if (r.status != 200) throw std::runtime_error("crl: " + r.describe());
    data = r.body;
  } else {
    if (!vm.count("pki")) throw UsageError("--store needs --pki (the CA that signs the CRL)");
    const auto ca = load_ca(vm["pki"].as<std::string>(), Profile::kCa, Flavor::kModern);
    t.store->bind_ca(ca_pin(ca->certificate()));
    // Published too: the service never serves a lower number than one handed out.
    const Crl crl = make_and_publish_crl(*ca, *t.store, std::chrono::system_clock::now());
    data = pem ? crl.pem() : std::string(crl.der.begin(), crl.der.end());
  }
  const bool wrote = write_output("--out", out, data, 0644, vm.count("force"));
  if (!is_stdout(out)) std::cout << (wrote ? "wrote " : "unchanged ") << out << "\n";
  return 0;
}

}  // namespace kubeca::cli
