// `kubeca kubeconfig user`: a person's short-lived credential, as `kubeadm kubeconfig user`
// makes it. Offline with the CA key (--pki), or through the signing service for an admin
// who holds no CA key (--kubeconfig): the key is made here and only a CSR travels.
#include <botan/x509self.h>

#include <iostream>

#include "common.h"
#include "kubeca/ca.h"
#include "kubeca/crl.h"
#include "kubeca/fs.h"
#include "kubeca/keys.h"
#include "kubeca/kubeconfig.h"
#include "kubeca/pki.h"

namespace kubeca::cli {

namespace {

struct Credential {
  std::string cert_pem, ca_pem;
};

// With the CA key in DIR; recorded in signer.store when --config names one.
Credential issue_offline(const po::variables_map& vm, const UserRequest& r,
                         const Botan::Private_Key& key) {
  const std::string dir = vm["pki"].as<std::string>();
  Config config;
  if (vm.count("config") || vm.count("env-file")) {
    config = load_config_from(vm);
  } else {
    config.master_host = "127.0.0.1";  // only pki.cert_validity is read
    validate(config);
  }
  const CertSpec spec = user_spec(config, r);
  require_input_file("--pki", (std::filesystem::path(dir) / "ca.pem").string());
  if (!file_exists(std::filesystem::path(dir) / "ca-key.pem")) {
    throw InputError("--pki: " + dir +
                     " has no ca-key.pem; without the CA key, go through the signer with "
                     "--kubeconfig ADMIN.conf");
  }
  auto ca = load_ca(dir, Profile::kCa, config.flavor);
  const auto store = config_store(config, OpenMode::kExisting);
  if (store) store->bind_ca(ca_pin(ca->certificate()));
  ca->set_crl_url(crl_url_of(config));
  Botan::RandomNumberGenerator& rng = thread_rng();
  const auto cert = ca->issue(spec, key, std::chrono::system_clock::now(), random_serial(rng), rng);
  // Recorded before the kubeconfig is written, so it is never out of the store's reach.
  if (store) store->record_certificates({record_of(cert, "user", "kubeconfig-user")});
  return {to_pem(cert), ca->certificate_pem()};
}

// Through the service, as the admin of --kubeconfig.
Credential issue_remote(const po::variables_map& vm, const UserRequest& r,
                        const Botan::Private_Key& key) {
  const std::string admin = vm["kubeconfig"].as<std::string>();
  require_input_file("--kubeconfig", admin);
  const KubeconfigCredentials c = read_kubeconfig(admin);
  if (c.server.rfind("https://", 0) != 0) {
    throw UsageError("--kubeconfig: its server must be the signer's https:// URL");
  }
  ApiClient api(c.server, c.ca_pem, c.client_cert_pem, c.client_key_pem);
  Botan::X509_Cert_Options opts;
  opts.common_name = r.name;
  Botan::RandomNumberGenerator& rng = thread_rng();
  const auto csr = Botan::X509::create_cert_req(opts, key, signature_hash(key), rng);
  nlohmann::json body = {{"csr", csr.PEM_encode()},
                         {"name", r.name},
                         {"groups", r.groups},
                         {"ttl", format_duration(r.ttl)},
                         {"allow_privileged", r.allow_privileged}};
  const auto answer = expect(api.post("/v1/users", body), 201, "the signer refused");
  return {answer.at("certificate").get<std::string>(), answer.at("ca").get<std::string>()};
}

}  // namespace

int cmd_kubeconfig_user(const std::vector<std::string>& args) {
  po::options_description desc("Options");
  desc.add_options()("name", po::value<std::string>()->required(), "the user name (CN)")(
      "group", po::value<std::vector<std::string>>(), "a group (O); repeat for more")(
      "ttl", po::value<std::string>()->default_value("24h"),
      "how long the certificate is valid (1m to pki.cert_validity)")(
      "server", po::value<std::string>()->required(), "the API server URL the kubeconfig names")(
      "out", po::value<std::string>()->required(),
      "the kubeconfig file to write (0600); - for standard output")(
      "force", "replace an existing --out file that holds something else")(
      "pki", po::value<std::string>()->default_value(kDefaultPki),
      "offline: the PKI folder with the CA key")(
      "config,c", po::value<std::string>(),
      "offline: cluster.yaml (pki.cert_validity; records in signer.store)")(
      "kubeconfig", po::value<std::string>(),
      "through the signer instead: an admin kubeconfig whose server is the signer")(
      "key-algorithm", po::value<std::string>()->default_value("ecdsa-p256"), "the user's key")(
      "cluster-name", po::value<std::string>()->default_value("kubernetes"), "cluster entry name")(
      "allow-privileged", "allow a system: name or group (system:masters: a cluster admin)");
  po::variables_map vm;
  no_env_for("server");  // the API server's URL here, not the signer's KUBECA_SERVER
  if (!parse(args,
             "Usage: kubeca kubeconfig user --name NAME [--group G]... [--ttl 24h] --server URL\n"
             "       --out FILE [--pki DIR [--config F] | --kubeconfig ADMIN.conf]\n\n"
             "Makes a person's credential, as kubeadm kubeconfig user does: a new key and a\n"
             "client certificate (profile user: CN=NAME, O=each group, clientAuth only) valid\n"
             "for --ttl, in a kubeconfig for the API server at --server. Offline it signs\n"
             "with the CA key in --pki; with --kubeconfig (an admin's, for the signer) the\n"
             "key is made here and only a CSR goes to the signing service. Either way the\n"
             "certificate is recorded (offline: when --config names signer.store) and\n"
             "revocable with kubeca revoke --serial. A system: group or name (system:masters\n"
             "makes a cluster admin) needs --allow-privileged.",
             desc, vm)) {
    return 0;
  }
  UserRequest r;
  r.name = vm["name"].as<std::string>();
  if (vm.count("group")) r.groups = vm["group"].as<std::vector<std::string>>();
  try {
    r.ttl = parse_duration(vm["ttl"].as<std::string>());
  } catch (const InputError& e) {
    throw InputError(std::string("--ttl: ") + e.what());
  }
  r.allow_privileged = vm.count("allow-privileged") > 0;
  check_user_request(r);
  const std::string server = vm["server"].as<std::string>();
  if (server.rfind("https://", 0) != 0) throw UsageError("--server: must be an https:// URL");
  const auto algorithm = parse_key_algorithm(vm["key-algorithm"].as<std::string>());
  if (!algorithm) {
    throw UsageError("--key-algorithm: unknown \"" + vm["key-algorithm"].as<std::string>() + "\"");
  }
  const std::string out = vm["out"].as<std::string>();
  if (!is_stdout(out)) {
    check_output_file("--out", out);
    // A new key never matches what is there: refuse before anything is signed.
    if (file_exists(out) && !vm.count("force")) {
      throw InputError("--out: " + out +
                       " exists; choose another path or add --force to replace it");
    }
  }
  const bool typed_pki = !vm["pki"].defaulted() && !from_env("pki");
  const bool remote = vm.count("kubeconfig") && !typed_pki;
  if (vm.count("kubeconfig") && typed_pki && !from_env("kubeconfig")) {
    throw UsageError(
        "--pki (offline, with the CA key) or --kubeconfig (through the signer), not both");
  }
  if (remote && vm.count("config") && !from_env("config")) {
    throw UsageError("--config goes with --pki, not --kubeconfig");
  }

  Botan::RandomNumberGenerator& rng = thread_rng();
  const auto key = generate_key(*algorithm, rng);
  const Credential cred = remote ? issue_remote(vm, r, *key) : issue_offline(vm, r, *key);
  const auto cert = parse_certificate_pem(cred.cert_pem);
  KubeconfigSpec spec{vm["cluster-name"].as<std::string>(),
                      server,
                      cred.ca_pem,
                      r.name,
                      cred.cert_pem,
                      private_key_pem(*key),
                      "",
                      "",
                      ""};
  write_output("--out", out, render_kubeconfig(spec), 0600, true);
  if (!is_stdout(out)) {
    std::string groups;
    for (const auto& g : r.groups) groups += (groups.empty() ? "" : ",") + g;
    std::cout << "wrote " << out << " for " << r.name
              << (groups.empty() ? "" : " (groups " + groups + ")") << " at " << server
              << "\n  serial " << serial_hex(cert) << ", expires "
              << format_time(cert.not_after().to_std_timepoint())
              << (remote ? ", signed by the signing service" : ", signed offline") << "\n";
  }
  return 0;
}

}  // namespace kubeca::cli
