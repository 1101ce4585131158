#include "kubeca/node.h"

#include <botan/auto_rng.h>
#include <botan/pkcs10.h>
#include <botan/x509self.h>

#include <cstdio>

#include "kubeca/ca.h"
#include "kubeca/client.h"
#include "kubeca/config.h"
#include "kubeca/fs.h"
#include "kubeca/keys.h"
#include "kubeca/kubeconfig.h"
#include "kubeca/net.h"
#include "kubeca/token.h"

namespace kubeca {

namespace fs = std::filesystem;

namespace {

fs::path with_suffix(const fs::path& p, const char* suffix) { return p.string() + suffix; }

bool still_fresh(const fs::path& cert, const fs::path& key, const fs::path& ca_file) {
  if (!file_exists(cert) || !file_exists(key) || !file_exists(ca_file)) return false;
  try {
    const auto c = parse_certificate_pem(read_file(cert));
    const auto k = load_private_key_pem(read_file(key));
    const auto ca = parse_certificate_pem(read_file(ca_file));
    if (!key_matches(c, *k) || c.issuer_dn() != ca.subject_dn()) return false;
    std::unique_ptr<Botan::Public_Key> ca_key(ca.subject_public_key());
    if (!c.check_signature(*ca_key)) return false;
    const auto nb = c.not_before().to_std_timepoint(), na = c.not_after().to_std_timepoint();
    const auto now = std::chrono::system_clock::now();
    return now >= nb && (na - now) * 3 > (na - nb);
  } catch (const std::exception&) {
    return false;
  }
}

std::string host_of(const std::string& url) {
  std::string rest = url.substr(url.find("://") + 3);
  rest = rest.substr(0, rest.find('/'));
  if (!rest.empty() && rest[0] == '[') return rest.substr(0, rest.find(']') + 1);
  return rest.substr(0, rest.rfind(':'));
}

}  // namespace

void install_pair(const fs::path& cert, const fs::path& key, const std::string& cert_pem,
                  const std::string& key_pem) {
  const bool new_key = !file_exists(key) || read_file(key) != key_pem;
  if (new_key) write_file_atomic(with_suffix(key, ".new"), key_pem, 0600);
  write_file_atomic(with_suffix(cert, ".new"), cert_pem, 0644);
  if (new_key) fs::rename(with_suffix(key, ".new"), key);
  fs::rename(with_suffix(cert, ".new"), cert);
}

bool recover_pair(const fs::path& cert, const fs::path& key) {
  const fs::path cert_new = with_suffix(cert, ".new"), key_new = with_suffix(key, ".new");
  const bool have_cert_new = file_exists(cert_new), have_key_new = file_exists(key_new);
  if (!have_cert_new && !have_key_new) return false;
  if (!have_cert_new) {  // stopped before the certificate was written: the old pair stands
    fs::remove(key_new);
    return true;
  }
  try {
    const auto c = parse_certificate_pem(read_file(cert_new));
    const fs::path k = have_key_new ? key_new : key;
    if (key_matches(c, *load_private_key_pem(read_file(k)))) {
      if (have_key_new) fs::rename(key_new, key);
      fs::rename(cert_new, cert);
      return true;
    }
  } catch (const std::exception&) {
  }
  fs::remove(cert_new);
  fs::remove(key_new);
  return true;
}

NodeRequestResult node_request(const NodeRequestOptions& o) {
  if (!is_dns_name(o.name)) throw InputError("--name: \"" + o.name + "\" is not a valid node name");
  if (!parse_token(o.token)) {
    throw InputError("--token: not of the form [a-z0-9]{6}.[a-z0-9]{16}");
  }
  std::string pin = o.ca_hash;
  for (auto& ch : pin) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (pin.rfind("sha256:", 0) != 0 || pin.size() != 7 + 64) {
    throw InputError("--ca-hash: expected sha256: and 64 hex digits (see `kubeca demo` or "
                     "`openssl x509 -pubkey | openssl pkey -pubin -outform der | sha256sum`)");
  }
  const auto algorithm = parse_key_algorithm(o.key_algorithm);
  if (!algorithm) throw InputError("--key-algorithm: unknown \"" + o.key_algorithm + "\"");
  if (o.server.rfind("https://", 0) != 0) throw InputError("--server: must be an https:// URL");
  auto log = [&](const std::string& s) {
    if (o.log) o.log(s);
  };

  NodeRequestResult r;
  r.cert = o.out_dir / (o.name + ".pem");
  r.key = o.out_dir / (o.name + "-key.pem");
  r.ca = o.out_dir / "ca.pem";
  recover_pair(r.cert, r.key);
  if (still_fresh(r.cert, r.key, r.ca)) {
    const auto c = parse_certificate_pem(read_file(r.cert));
    r.kept = true;
    r.serial = serial_hex(c);
    r.not_after = c.not_after().readable_string();
    log("kept " + r.cert.string() + ": valid with more than a third of its life left");
    return r;
  }

  auto retry_log = [&](int attempt, const HttpResult& res) {
    log("attempt " + std::to_string(attempt) + " failed (" + res.describe() + "); retrying");
  };
  // The CA first, unverified, then checked against the pin before anything else is sent.
  ApiClient discovery(o.server, "");
  const HttpResult ca_res = with_retries([&] { return discovery.get("/v1/ca"); }, o.max_attempts,
                                         o.max_delay, retry_log);
  if (ca_res.status != 200) throw std::runtime_error("fetching the CA: " + ca_res.describe());
  const std::string ca_pem = first_certificate_pem(ca_res.body);
  if (ca_pem.empty()) throw std::runtime_error("the server's /v1/ca holds no certificate");
  const auto ca = parse_certificate_pem(ca_pem);
  if (ca_pin(ca) != pin) {
    throw std::runtime_error("the server's CA is " + ca_pin(ca) + ", not the pinned " + pin +
                             "; refusing to go on (wrong server, or a man in the middle)");
  }

  Botan::AutoSeeded_RNG rng;
  auto key = generate_key(*algorithm, rng);
  Botan::X509_Cert_Options opts;
  if (o.profile == "kubelet") opts.common_name = "system:node:" + o.name;
  const auto csr = Botan::X509::create_cert_req(opts, *key, signature_hash(*key), rng);

  ApiClient api(o.server, ca_pem);
  const nlohmann::json body = {{"csr", csr.PEM_encode()}, {"profile", o.profile}};
  const HttpResult res = with_retries([&] { return api.post("/v1/sign", body, o.token); },
                                      o.max_attempts, o.max_delay, retry_log);
  if (res.status != 201) throw std::runtime_error("the signer refused: " + res.describe());
  const auto j = res.json();
  const std::string cert_pem = j.value("certificate", std::string());
  const auto cert = parse_certificate_pem(cert_pem);
  if (!key_matches(cert, *key) || !cert.check_signature(ca.subject_public_key())) {
    throw std::runtime_error("the signer returned a certificate that does not match");
  }
  fs::create_directories(o.out_dir);
  write_file_atomic(r.ca, ca_pem, 0644);
  install_pair(r.cert, r.key, cert_pem, private_key_pem(*key));
  r.serial = serial_hex(cert);
  r.not_after = cert.not_after().readable_string();
  if (!o.kubeconfig_out.empty()) {
    KubeconfigSpec k;
    k.cluster_name = "kubernetes";
    k.server = o.apiserver.empty() ? "https://" + host_of(o.server) + ":6443" : o.apiserver;
    k.user = cert.subject_info("X520.CommonName").empty()
                 ? o.name
                 : cert.subject_info("X520.CommonName").front();
    k.ca_file = fs::absolute(r.ca).string();
    k.client_cert_file = fs::absolute(r.cert).string();
    k.client_key_file = fs::absolute(r.key).string();
    write_file_atomic(o.kubeconfig_out, render_kubeconfig(k), 0600);
  }
  log("issued " + r.cert.string() + " serial " + r.serial);
  return r;
}

}  // namespace kubeca
