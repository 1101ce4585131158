#include "kubeca/node.h"

#include <botan/pkcs10.h>
#include <botan/x509self.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>
#include <thread>

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

// --server: one https:// URL, or the replicas' URLs separated by commas.
void check_servers(const std::string& servers) {
  try {
    split_servers(servers);
  } catch (const std::invalid_argument& e) {
    throw InputError(std::string("--server: ") + e.what());
  }
}

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

// A key waiting for its certificate, on disk (0600, synced) before its CSR is sent: a
// process killed after the server answered asks again with the same key and gets the same
// certificate back, instead of having spent its token on a key that is gone.
fs::path pending_key_path(const fs::path& key) {
  return key.parent_path() / ("." + key.filename().string() + ".pending");
}

std::unique_ptr<Botan::Private_Key> pending_key(const fs::path& key, KeyAlgorithm algorithm) {
  const fs::path p = pending_key_path(key);
  if (file_exists(p)) {
    try {
      auto k = load_private_key_pem(read_file(p));
      if (algorithm_of(*k) == algorithm) return k;
    } catch (const std::exception&) {
      // unreadable: made again below
    }
  }
  auto k = generate_key(algorithm, thread_rng());
  write_file_atomic(p, private_key_pem(*k), 0600);
  return k;
}

void drop_pending_key(const fs::path& key) {
  std::error_code ec;
  fs::remove(pending_key_path(key), ec);
}

}  // namespace

std::string read_token_file(const std::string& flag, const fs::path& path) {
  // Opened once, then judged by what was opened: no race between a check and the read,
  // and O_NONBLOCK so a FIFO cannot hang the node's boot.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    throw InputError(flag + ": cannot open " + path.string() + ": " + std::strerror(errno));
  }
  struct stat st {};
  std::string data;
  std::string problem;
  if (::fstat(fd, &st) != 0) {
    problem = std::string("cannot stat it: ") + std::strerror(errno);
  } else if (!S_ISREG(st.st_mode)) {
    problem = "is not a regular file";
  } else if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%03o", static_cast<unsigned>(st.st_mode & 0777));
    problem = std::string("is mode ") + mode +
              ": others may read or change it; chmod 600 it (and issue a new token)";
  } else if (st.st_size > 4096) {
    problem = "is too large to hold a token";
  } else {
    char buf[4097];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) data.append(buf, static_cast<size_t>(n));
    if (n < 0) problem = std::string("cannot read it: ") + std::strerror(errno);
  }
  ::close(fd);
  if (!problem.empty()) throw InputError(flag + ": " + path.string() + " " + problem);
  while (!data.empty() && (data.back() == '\n' || data.back() == '\r' || data.back() == ' ')) {
    data.pop_back();
  }
  if (data.empty()) throw InputError(flag + ": " + path.string() + " is empty");
  if (!parse_token(data)) {
    throw InputError(flag + ": " + path.string() +
                     " does not hold a token of the form [a-z0-9]{6}.[a-z0-9]{16}");
  }
  return data;
}

NodeRequestResult node_request(const NodeRequestOptions& o) {
  if (!is_dns_name(o.name)) throw InputError("--name: \"" + o.name + "\" is not a valid node name");
  if (!parse_token(o.token)) {
    throw InputError("--token: not of the form [a-z0-9]{6}.[a-z0-9]{16}");
  }
  std::string pin = o.ca_hash;
  for (auto& ch : pin) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (pin.rfind("sha256:", 0) != 0 || pin.size() != 7 + 64) {
    throw InputError(
        "--ca-hash: expected sha256: and 64 hex digits (on the master: `kubeca ca pin --pki DIR`, "
        "or "
        "`openssl x509 -pubkey | openssl pkey -pubin -outform der | sha256sum`)");
  }
  const auto algorithm = parse_key_algorithm(o.key_algorithm);
  if (!algorithm) throw InputError("--key-algorithm: unknown \"" + o.key_algorithm + "\"");
  check_servers(o.server);
  auto log = [&](const std::string& s) {
    if (o.log) o.log(s);
  };

  NodeRequestResult r;
  r.cert = o.out_dir / (o.name + ".pem");
  r.key = o.out_dir / (o.name + "-key.pem");
  r.ca = o.out_dir / "ca.pem";
  // Every output judged before the token is spent (fs.h's rule; request owns these files
  // and replaces them when it gets a new certificate).
  if (is_stdout(o.out_dir)) throw InputError("--out-dir: a folder, not standard output");
  check_output_dir("--out-dir", o.out_dir);
  for (const auto& p : {r.ca, r.cert, r.key}) check_output_file("--out-dir", p);
  if (!o.kubeconfig_out.empty()) {
    if (is_stdout(o.kubeconfig_out)) {
      throw InputError("--kubeconfig-out: a file, not standard output");
    }
    check_output_file("--kubeconfig-out", o.kubeconfig_out);
  }
  recover_pair(r.cert, r.key);
  if (still_fresh(r.cert, r.key, r.ca)) {
    drop_pending_key(r.key);
    const auto c = parse_certificate_pem(read_file(r.cert));
    r.kept = true;
    r.serial = serial_hex(c);
    r.not_after = c.not_after().readable_string();
    log("kept " + r.cert.string() + ": valid with more than a third of its life left");
    return r;
  }

  auto retry_log = [&](int attempt, const HttpResult& res) {
    log("attempt " + std::to_string(attempt) + " failed (" + res.describe() + "); retrying" +
        (res.retry_after > 0 ? " in " + std::to_string(res.retry_after) + " s, as Retry-After says"
                             : ""));
  };
  // The CA first, unverified, then checked against the pin before anything else is sent.
  ApiClient discovery(o.server, "");
  const HttpResult ca_res =
      with_retries([&] { return discovery.get("/v1/ca"); }, o.max_attempts, o.max_delay, retry_log);
  if (ca_res.status != 200) throw std::runtime_error("fetching the CA: " + ca_res.describe());
  const std::string ca_pem = first_certificate_pem(ca_res.body);
  if (ca_pem.empty()) throw std::runtime_error("the server's /v1/ca holds no certificate");
  const auto ca = parse_certificate_pem(ca_pem);
  if (ca_pin(ca) != pin) {
    throw std::runtime_error("the server's CA is " + ca_pin(ca) + ", not the pinned " + pin +
                             "; refusing to go on (wrong server, or a man in the middle)");
  }

  Botan::RandomNumberGenerator& rng = thread_rng();
  fs::create_directories(o.out_dir);
  auto key = pending_key(r.key, *algorithm);
  Botan::X509_Cert_Options opts;
  if (o.profile == "kubelet") opts.common_name = "system:node:" + o.name;
  const auto csr = Botan::X509::create_cert_req(opts, *key, signature_hash(*key), rng);

  ApiClient api(o.server, ca_pem);
  const nlohmann::json body = {{"csr", csr.PEM_encode()}, {"profile", o.profile}};
  int sent = 0;
  const HttpResult res =
      with_retries([&] { return api.post("/v1/sign", body, o.token, sent++ > 0); }, o.max_attempts,
                   o.max_delay, retry_log);
  if (res.status != 201 && res.status != 200) {
    if (res.status >= 400 && res.status < 500 && res.status != 429) drop_pending_key(r.key);
    throw std::runtime_error("the signer refused: " + res.describe());
  }
  const auto j = res.json();
  const std::string cert_pem = j.value("certificate", std::string());
  const auto cert = parse_certificate_pem(cert_pem);
  if (!key_matches(cert, *key) || !cert.check_signature(ca.subject_public_key())) {
    throw std::runtime_error("the signer returned a certificate that does not match");
  }
  write_file_atomic(r.ca, ca_pem, 0644);
  install_pair(r.cert, r.key, cert_pem, private_key_pem(*key));
  drop_pending_key(r.key);
  r.serial = serial_hex(cert);
  r.not_after = cert.not_after().readable_string();
  if (!o.kubeconfig_out.empty()) {
    KubeconfigSpec k;
    k.cluster_name = "kubernetes";
    k.server =
        o.apiserver.empty()
            ? "https://" + url_host(parse_url(split_servers(o.server).front())->host) + ":6443"
            : o.apiserver;
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

std::chrono::system_clock::time_point renewal_due(std::chrono::system_clock::time_point nb,
                                                  std::chrono::system_clock::time_point na,
                                                  double jitter) {
  const auto issued = na - nb > std::chrono::minutes(5) ? nb + std::chrono::minutes(5) : nb;
  const auto life = na - issued;
  const auto jitter_span =
      std::chrono::duration_cast<std::chrono::system_clock::duration>(life / 10 * jitter);
  return issued + life * 2 / 3 - jitter_span;
}

namespace {

double random_fraction() {
  static thread_local std::mt19937 gen(std::random_device{}());
  return std::uniform_real_distribution<double>(0.0, 1.0)(gen);
}

struct Pair {
  Botan::X509_Certificate cert;
  std::string key_pem;
};

Pair load_pair(const RenewOptions& o) {
  recover_pair(o.cert, o.key);
  Pair p{parse_certificate_pem(read_file(o.cert)), read_file(o.key)};
  if (!key_matches(p.cert, *load_private_key_pem(p.key_pem))) {
    throw std::runtime_error(o.key.string() + " is not the key of " + o.cert.string());
  }
  return p;
}

void run_hook(const RenewOptions& o) {
  if (o.exec.empty()) return;
  const int rc = std::system(o.exec.c_str());
  if (o.log) o.log("ran --exec \"" + o.exec + "\": exit status " + std::to_string(WEXITSTATUS(rc)));
}

// One renewal attempt. Returns the HTTP result; on 201 the new pair is in place.
HttpResult renew_once(const RenewOptions& o, const Pair& current, std::string& serial) {
  const std::string ca_pem = read_file(o.ca_file);
  Botan::RandomNumberGenerator& rng = thread_rng();
  std::unique_ptr<Botan::Private_Key> key;
  if (o.rotate_key) {
    key = pending_key(o.key, algorithm_of(*load_private_key_pem(current.key_pem)));
  } else {
    key = load_private_key_pem(current.key_pem);
  }
  Botan::X509_Cert_Options opts;
  const auto csr = Botan::X509::create_cert_req(opts, *key, signature_hash(*key), rng);
  ApiClient api(o.server, ca_pem, to_pem(current.cert), current.key_pem);
  HttpResult r = api.post("/v1/renew", {{"csr", csr.PEM_encode()}});
  if (r.status != 201) return r;
  const std::string cert_pem = r.json().value("certificate", std::string());
  const auto cert = parse_certificate_pem(cert_pem);
  const auto ca = parse_certificate_pem(first_certificate_pem(ca_pem));
  if (!key_matches(cert, *key) || !cert.check_signature(ca.subject_public_key())) {
    throw std::runtime_error("the signer returned a certificate that does not match");
  }
  install_pair(o.cert, o.key, cert_pem, o.rotate_key ? private_key_pem(*key) : current.key_pem);
  if (o.rotate_key) drop_pending_key(o.key);
  serial = serial_hex(cert);
  return r;
}

}  // namespace

RenewResult node_renew(const RenewOptions& o) {
  check_servers(o.server);
  const Pair current = load_pair(o);
  RenewResult out;
  const auto due = renewal_due(current.cert.not_before().to_std_timepoint(),
                               current.cert.not_after().to_std_timepoint(), random_fraction());
  if (!o.force && std::chrono::system_clock::now() < due) {
    out.next_due = due;
    out.serial = serial_hex(current.cert);
    return out;
  }
  std::string serial;
  const HttpResult r =
      with_retries([&] { return renew_once(o, current, serial); }, o.max_attempts, o.max_delay,
                   [&](int attempt, const HttpResult& res) {
                     if (o.log) {
                       o.log("attempt " + std::to_string(attempt) + " failed (" + res.describe() +
                             "); retrying");
                     }
                   });
  if (r.status != 201) throw std::runtime_error("renewal refused: " + r.describe());
  out.renewed = true;
  out.serial = serial;
  const auto fresh = parse_certificate_pem(read_file(o.cert));
  out.next_due = renewal_due(fresh.not_before().to_std_timepoint(),
                             fresh.not_after().to_std_timepoint(), random_fraction());
  if (o.log) o.log("renewed " + o.cert.string() + ": serial " + serial);
  run_hook(o);
  return out;
}

void renew_daemon(const RenewOptions& o, const std::atomic<bool>& stop) {
  auto log = [&](const std::string& s) {
    if (o.log) o.log(s);
  };
  auto sleep_until = [&](std::chrono::system_clock::time_point t) {
    while (!stop && std::chrono::system_clock::now() < t) {
      std::this_thread::sleep_for(std::min<std::chrono::system_clock::duration>(
          t - std::chrono::system_clock::now(), std::chrono::milliseconds(200)));
    }
  };
  std::chrono::milliseconds backoff(1000);
  while (!stop) {
    const Pair current = load_pair(o);
    const auto due = renewal_due(current.cert.not_before().to_std_timepoint(),
                                 current.cert.not_after().to_std_timepoint(), random_fraction());
    log("next renewal of " + o.cert.string() + " (serial " + serial_hex(current.cert) +
        ") due at " + Botan::X509_Time(due).readable_string());
    sleep_until(due);
    while (!stop) {
      std::string serial;
      HttpResult r;
      try {
        r = renew_once(o, current, serial);
      } catch (const std::exception& e) {
        r.transport_error = e.what();
      }
      if (r.status == 201) {
        log("renewed " + o.cert.string() + ": serial " + serial);
        run_hook(o);
        backoff = std::chrono::milliseconds(1000);
        break;
      }
      if ((r.status >= 400 && r.status < 500 && r.status != 429) || !r.retryable) {
        throw std::runtime_error("renewal refused: " + r.describe() +
                                 "; the certificate in place is kept");
      }
      // The server's Retry-After, when longer than our backoff, is the earliest worth trying.
      const auto wait = std::max<std::chrono::milliseconds>(
          backoff, std::chrono::seconds(std::max(r.retry_after, 0)));
      log("renewal failed (" + r.describe() + "); retrying in " + std::to_string(wait.count()) +
          " ms; the certificate in place is kept");
      sleep_until(std::chrono::system_clock::now() + wait);
      backoff = std::min(backoff * 2, o.max_delay);
    }
  }
}

}  // namespace kubeca
