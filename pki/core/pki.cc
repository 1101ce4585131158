#include "kubeca/pki.h"

#include <botan/base64.h>
#include <botan/data_src.h>
#include <botan/pkix_types.h>
#include <botan/x509_ext.h>
#include <botan/x509_key.h>
#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <ctime>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>

#include "kubeca/crl.h"
#include "kubeca/fs.h"
#include "kubeca/keys.h"
#include "kubeca/kubeconfig.h"
#include "kubeca/node.h"
#include "kubeca/parallel.h"
#include "pki_internal.h"

namespace kubeca {

size_t InitReport::created() const {
  return static_cast<size_t>(
      std::count_if(files.begin(), files.end(), [](const PkiFile& f) { return f.created; }));
}

fs::path cert_path(const fs::path& dir, const std::string& file) { return dir / (file + ".pem"); }
fs::path key_path(const fs::path& dir, const std::string& file) {
  return dir / (file + "-key.pem");
}

namespace detail {
void check_key_file(const fs::path& path, const Botan::Public_Key& key, const std::string& fix) {
  const std::string weak = weak_key_reason(key);
  if (!weak.empty()) throw InputError(path.string() + ": " + weak + "; " + fix);
}

std::vector<fs::path> visible_files(const fs::path& dir) {
  std::vector<fs::path> out;
  for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator();
       ++it) {
    if (it->path().filename().string()[0] == '.') {
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file()) out.push_back(it->path());
  }
  std::sort(out.begin(), out.end());
  return out;
}
}  // namespace detail

std::vector<CertSpec> planned_certificates(const Config& c) {
  const bool modern = c.flavor == Flavor::kModern;
  std::vector<CertSpec> out;
  auto add = [&](Profile p, const Identity& id = {}) { out.push_back(make_spec(c, p, id)); };
  add(Profile::kCa);
  if (modern) {
    add(Profile::kFrontProxyCa);
    add(Profile::kEtcdCa);
  }
  add(Profile::kApiserver);
  add(Profile::kAdmin);
  add(Profile::kSigner);
  if (modern) add(Profile::kKubelet, {c.master_name, {c.master_host}, {}});
  for (const auto& w : c.workers) add(Profile::kKubelet, {w.name, {w.ip}, {}});
  if (modern) {
    for (Profile p :
         {Profile::kKubeProxy, Profile::kControllerManager, Profile::kScheduler,
          Profile::kApiserverKubeletClient, Profile::kFrontProxyClient, Profile::kEtcdServer,
          Profile::kEtcdPeer, Profile::kEtcdHealthcheckClient, Profile::kApiserverEtcdClient}) {
      add(p);
    }
  }
  return out;
}

namespace {

// The identity of a spec, its lists sorted, for comparing.
std::string normalized(CertSpec s) {
  std::sort(s.dns_names.begin(), s.dns_names.end());
  std::sort(s.ip_addresses.begin(), s.ip_addresses.end());
  std::sort(s.organizations.begin(), s.organizations.end());
  return describe(s);
}

struct Item {
  CertSpec spec;
  bool have_cert = false, have_key = false;
  std::string cert_pem, key_pem;
  std::unique_ptr<Botan::Private_Key> key;
  std::unique_ptr<Botan::X509_Certificate> cert;
};

}  // namespace

std::unique_ptr<Ca> load_ca(const fs::path& dir, Profile issuer, Flavor flavor) {
  Config c;
  c.flavor = flavor;
  c.master_host = "127.0.0.1";
  const std::string file = make_spec(c, issuer).file;
  const fs::path cert = cert_path(dir, file), key = key_path(dir, file);
  if (!file_exists(cert)) {
    throw std::runtime_error(cert.string() + " not found: run `kubeca init` first");
  }
  if (!file_exists(key)) {
    throw std::runtime_error(key.string() + " not found: the CA key is needed to issue");
  }
  return Ca::load(cert, key);
}

namespace {

// Binds the store to the cluster CA, then records every leaf it does not know yet, durably.
void record_leaves(Store& store, const std::vector<Item>& items) {
  std::vector<CertRecord> records;
  for (const auto& it : items) {
    if (it.spec.profile == Profile::kCa) {
      store.bind_ca(ca_pin(*it.cert));
    } else if (!profile_is_ca(it.spec.profile)) {
      records.push_back(record_of(*it.cert, to_string(it.spec.profile), "init"));
    }
  }
  store.record_certificates(records);
}

// Counts init's steps from any thread and hands each new state to the callback in order.
class ProgressCounter {
 public:
  explicit ProgressCounter(const Progress& fn) : fn_(fn) {}
  void step(size_t InitProgress::*field) {
    if (!fn_) return;
    std::lock_guard<std::mutex> lock(mu_);
    ++(state_.*field);
    fn_(state_);
  }
  void set(const std::function<void(InitProgress&)>& change) {
    if (!fn_) return;
    std::lock_guard<std::mutex> lock(mu_);
    change(state_);
    fn_(state_);
  }

 private:
  const Progress& fn_;
  std::mutex mu_;
  InitProgress state_;
};

InitReport init_pki_locked(const Config& c, const fs::path& dir, TimePoint now,
                           const Progress& progress_fn, const Recording& recording) {
  ProgressCounter progress(progress_fn);
  const auto started = std::chrono::steady_clock::now();
  const KeyAlgorithm algorithm = *parse_key_algorithm(c.key_algorithm);
  std::vector<Item> items;
  for (auto& spec : planned_certificates(c))
    items.push_back(Item{std::move(spec), false, false, "", "", nullptr, nullptr});

  // Read what is there; decide what to make.
  size_t missing_keys = 0;
  for (auto& it : items) {
    const fs::path cp = cert_path(dir, it.spec.file), kp = key_path(dir, it.spec.file);
    it.have_cert = file_exists(cp);
    it.have_key = file_exists(kp);
    if (it.have_key) {
      it.key_pem = read_file(kp);
      try {
        it.key = load_private_key_pem(it.key_pem);
      } catch (const std::exception& e) {
        throw std::runtime_error(kp.string() + ": not a private key (" + e.what() + ")");
      }
    }
    if (it.have_cert) {
      if (!it.have_key) {
        throw std::runtime_error(cp.string() + " exists without its key " + kp.string() +
                                 "; restore the key or move the certificate away");
      }
      it.cert_pem = read_file(cp);
      it.cert = std::make_unique<Botan::X509_Certificate>(parse_certificate_pem(it.cert_pem));
      if (!key_matches(*it.cert, *it.key)) {
        throw std::runtime_error(kp.string() + " is not the key of " + cp.string());
      }
      if (normalized(identity_of(*it.cert)) != normalized(it.spec)) {
        throw std::runtime_error(cp.string() + " names " + describe(identity_of(*it.cert)) +
                                 " but the config asks for " + describe(it.spec) +
                                 "; renew it with today's config (kubeca certs renew " +
                                 it.spec.file + " --config ...) or move it away");
      }
    } else if (!it.have_key) {
      ++missing_keys;
    } else {
      detail::check_key_file(kp, *it.key, "replace it, or remove it to have a new one made");
    }
  }
  const bool need_sa = c.flavor == Flavor::kModern && !file_exists(dir / "sa.key");
  if (need_sa) ++missing_keys;

  const size_t to_sign = static_cast<size_t>(
      std::count_if(items.begin(), items.end(), [](const Item& it) { return !it.have_cert; }));
  progress.set([&](InitProgress& p) {
    p.keys_total = missing_keys;
    p.certificates_total = to_sign;
  });
  auto keys =
      generate_keys(algorithm, missing_keys, 0, [&] { progress.step(&InitProgress::keys); });
  size_t next_key = 0;
  for (auto& it : items) {
    if (!it.have_cert && !it.have_key) {
      it.key = std::move(keys[next_key++]);
      it.key_pem = private_key_pem(*it.key);
    }
  }

  Botan::RandomNumberGenerator& rng = thread_rng();
  std::map<Profile, std::unique_ptr<Ca>> cas;
  std::vector<FileWrite> outputs;  // paths relative to dir
  std::set<std::string> serials;
  std::vector<std::string> others;  // managed files beside the certificate/key pairs
  // The CAs and the checks here, in order; the certificates the CAs issue are signed after
  // this loop, in parallel. Serials are drawn here, so uniqueness is checked in one place.
  std::vector<size_t> to_issue;
  std::vector<Botan::BigInt> to_issue_serials;
  for (size_t i = 0; i < items.size(); ++i) {
    Item& it = items[i];
    const Profile p = it.spec.profile;
    if (!it.have_cert) {
      if (profile_is_ca(p)) {
        auto key_copy = load_private_key_pem(it.key_pem);
        auto ca = Ca::create(it.spec, std::move(key_copy), now, rng);
        it.cert = std::make_unique<Botan::X509_Certificate>(ca->certificate());
        it.cert_pem = to_pem(*it.cert);
        progress.step(&InitProgress::certificates);
      } else {
        (void)cas.at(issuer_of(p));  // CAs come first
        Botan::BigInt serial;
        do {
          serial = random_serial(rng);
        } while (!serials.insert(serial.to_hex_string()).second);
        to_issue.push_back(i);
        to_issue_serials.push_back(serial);
      }
    } else if (!profile_is_ca(p)) {
      // A kept certificate must chain to the CA kept or made in this run: a CA made anew
      // (its files were deleted) would otherwise leave the folder with leaves nobody trusts.
      const Ca& ca = *cas.at(issuer_of(p));
      if (it.cert->issuer_dn() != ca.certificate().subject_dn() ||
          !it.cert->check_signature(*ca.certificate().load_subject_public_key())) {
        const fs::path ca_file = cert_path(dir, make_spec(c, issuer_of(p)).file);
        throw std::runtime_error(cert_path(dir, it.spec.file).string() + " was not issued by " +
                                 ca_file.string() + "; restore that CA or move the certificate" +
                                 " and its key away to have them issued again");
      }
    }
    if (profile_is_ca(p)) {
      cas[p] = std::make_unique<Ca>(*it.cert, load_private_key_pem(it.key_pem));
      if (p == Profile::kCa) cas[p]->set_crl_url(recording.crl_url);
    }
  }
  // RSA signatures cost milliseconds each: sign on every core (Ca::issue is thread-safe and
  // keeps a signer per concurrent caller), each thread with its own RNG.
  const unsigned sign_threads =
      static_cast<unsigned>(std::min<size_t>(cpu_threads(), to_issue.size()));
  parallel_for(to_issue.size(), sign_threads, [&](size_t j) {
    Item& it = items[to_issue[j]];
    const Ca& ca = *cas.at(issuer_of(it.spec.profile));
    it.cert = std::make_unique<Botan::X509_Certificate>(
        ca.issue(it.spec, *it.key, now, to_issue_serials[j], thread_rng()));
    it.cert_pem = to_pem(*it.cert);
    progress.step(&InitProgress::certificates);
  });
  for (auto& it : items) {
    if (!it.have_cert) {
      if (!it.have_key) outputs.push_back({key_path("", it.spec.file), it.key_pem, 0600});
      outputs.push_back({cert_path("", it.spec.file), it.cert_pem, 0644});
    }
  }
  if (c.flavor == Flavor::kModern) others.insert(others.end(), {"sa.key", "sa.pub"});
  if (need_sa) {
    auto& key = keys[next_key++];
    outputs.push_back({"sa.key", private_key_pem(*key), 0600});
    outputs.push_back({"sa.pub", public_key_pem(*key), 0644});
  } else if (c.flavor == Flavor::kModern && !file_exists(dir / "sa.pub")) {
    // A run stopped between the two leaves the key alone; its public half is derived again.
    outputs.push_back(
        {"sa.pub", public_key_pem(*load_private_key_pem(read_file(dir / "sa.key"))), 0644});
  }

  // Kubeconfigs, rendered from the certificates; written only when their bytes change.
  auto find = [&](Profile p) -> const Item& {
    return *std::find_if(items.begin(), items.end(),
                         [p](const Item& it) { return it.spec.profile == p; });
  };
  const std::string ca_pem = find(Profile::kCa).cert_pem;
  std::vector<std::pair<std::string, const Item*>> kubeconfigs;  // file, whose credentials
  auto kubeconfig = [&](const std::string& file, const Item& it) {
    kubeconfigs.emplace_back(file, &it);
  };
  kubeconfig("admin.conf", find(Profile::kAdmin));
  for (const auto& it : items) {
    if (it.spec.profile != Profile::kKubelet) continue;
    const std::string node = it.spec.file.substr(
        c.flavor == Flavor::kModern ? 8 : 0,
        c.flavor == Flavor::kModern ? std::string::npos : it.spec.file.size() - 7);
    kubeconfig("kubelet-" + node + ".conf", it);
  }
  if (c.flavor == Flavor::kModern) {
    kubeconfig("kube-proxy.conf", find(Profile::kKubeProxy));
    kubeconfig("controller-manager.conf", find(Profile::kControllerManager));
    kubeconfig("scheduler.conf", find(Profile::kScheduler));
  }
  std::vector<std::string> rendered(kubeconfigs.size());
  parallel_for(kubeconfigs.size(), cpu_threads(), [&](size_t j) {
    const Item& it = *kubeconfigs[j].second;
    KubeconfigSpec k{c.cluster_name,
                     c.apiserver_url(),
                     ca_pem,
                     it.spec.common_name,
                     it.cert_pem,
                     it.key_pem,
                     "",
                     "",
                     ""};
    rendered[j] = render_kubeconfig(k);
  });
  for (size_t j = 0; j < kubeconfigs.size(); ++j) {
    const std::string& file = kubeconfigs[j].first;
    const fs::path path = dir / file;
    others.push_back(file);
    if (!file_exists(path) || read_file(path) != rendered[j]) {
      outputs.push_back({file, std::move(rendered[j]), 0600});
    }
  }
  // Recorded before any file is written: a crash in between leaves a record without a file
  // (harmless), never a certificate the store cannot revoke.
  if (recording.store) record_leaves(*recording.store, items);

  // Everything is computed: write it. Keys before certificates, so a crash in between
  // leaves a key that the next run reuses.
  create_private_directories(dir);
  ::chmod(dir.c_str(), 0700);
  // Subfolders (etcd/) are made here, 0700, not by the writes with the umask's 0755.
  for (const auto& o : outputs) create_private_directories((dir / o.path).parent_path());
  std::stable_sort(outputs.begin(), outputs.end(),
                   [](const FileWrite& a, const FileWrite& b) { return a.mode < b.mode; });
  InitReport report;
  std::set<std::string> created;
  // Every 0600 file (keys, kubeconfigs) is in place before the first 0644 one.
  std::vector<std::vector<FileWrite>> groups;
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (i == 0 || outputs[i].mode != outputs[i - 1].mode) groups.emplace_back();
    groups.back().push_back({dir / outputs[i].path, std::move(outputs[i].data), outputs[i].mode});
    created.insert(outputs[i].path.string());
  }
  progress.set([&](InitProgress& p) { p.files_total = outputs.size(); });
  write_files_atomic(groups, [&] { progress.step(&InitProgress::files); });
  progress.set([](InitProgress& p) { p.finished = true; });
  for (const auto& it : items) {
    for (const fs::path& rel : {cert_path("", it.spec.file), key_path("", it.spec.file)}) {
      report.files.push_back({rel.string(), created.count(rel.string()) > 0});
    }
  }
  for (const auto& o : others) report.files.push_back({o, created.count(o) > 0});
  report.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  return report;
}

}  // namespace

InitReport init_pki(const Config& c, const fs::path& dir, TimePoint now, const Progress& progress,
                    const Recording& recording) {
  std::error_code ec;
  const bool existed = fs::exists(dir, ec);
  if (existed && !fs::is_directory(dir, ec)) {
    throw InputError("--pki: " + dir.string() + " is not a folder");
  }
  // Held from the first read to the last rename: a second init would otherwise read a
  // half-written folder and could make a second CA.
  FolderLock lock(dir);
  try {
    return init_pki_locked(c, dir, now, progress, recording);
  } catch (...) {
    if (!existed) fs::remove(dir, ec);  // the folder made for the lock, if still empty
    throw;
  }
}

Issued issue_to_files(Ca& ca, const CertSpec& spec, KeyAlgorithm algorithm, const fs::path& prefix,
                      TimePoint now, bool force, const Recording& recording) {
  const fs::path cp = prefix.string() + ".pem", kp = prefix.string() + "-key.pem";
  for (const auto& p : {cp, kp}) {
    check_output_file("--out", p);
    if (!force && file_exists(p)) {
      throw InputError(p.string() +
                       " exists; choose another --out, renew it with `kubeca certs renew`, "
                       "or add --force to replace it");
    }
  }
  Botan::RandomNumberGenerator& rng = thread_rng();
  auto key = generate_key(algorithm, rng);
  if (issuer_of(spec.profile) == Profile::kCa) ca.set_crl_url(recording.crl_url);
  auto cert = ca.issue(spec, *key, now, random_serial(rng), rng);
  Issued out{cert, to_pem(cert), private_key_pem(*key)};
  if (recording.store) {
    recording.store->record_certificates({record_of(cert, to_string(spec.profile), "issue")});
  }
  write_file_atomic(kp, out.key_pem, 0600);
  write_file_atomic(cp, out.cert_pem, 0644);
  return out;
}

std::string format_time(TimePoint t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

int64_t unix_seconds(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

int64_t unix_now() { return unix_seconds(std::chrono::system_clock::now()); }

}  // namespace kubeca
