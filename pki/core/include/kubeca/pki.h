// The cluster PKI folder: what `kubeca init` creates and the other commands read.
#pragma once

#include <botan/x509cert.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kubeca/ca.h"
#include "kubeca/config.h"
#include "kubeca/keys.h"
#include "kubeca/profile.h"
#include "kubeca/store.h"

namespace kubeca {

namespace fs = std::filesystem;

struct PkiFile {
  std::string path;  // relative to the PKI folder
  bool created = false;
};

struct InitReport {
  std::vector<PkiFile> files;
  std::chrono::milliseconds elapsed{0};
  size_t created() const;
};

// init's three phases, counted: keys made, certificates signed, files written. The callback
// runs on worker threads, one call at a time (init serializes them), after every step: it
// decides how often to draw.
struct InitProgress {
  size_t keys = 0, keys_total = 0;
  size_t certificates = 0, certificates_total = 0;
  size_t files = 0, files_total = 0;
  bool finished = false;  // the last call: everything is written
};
using Progress = std::function<void(const InitProgress&)>;

// What the offline commands (init, issue, certs renew) do besides writing files.
struct Recording {
  // Every leaf is recorded here (requester "init", "issue" or "certs-renew") before its file
  // is written, so `kubeca revoke --serial` knows it; null: no record.
  Store* store = nullptr;
  // The CRL distribution point of the cluster CA's leaves (the service's /v1/crl); "": none.
  // Leaves of the etcd and front-proxy CAs get none: that CRL is not signed by their CA.
  std::string crl_url;
};

// Every certificate, key and kubeconfig the config's flavor calls for. Creates what is
// missing and keeps everything else byte for byte; computes all before writing anything.
// An existing certificate whose identity differs from the config is an error, not a rewrite.
// With a store, binds it to the cluster CA and records every leaf of the folder it does not
// know yet, made or kept, before writing.
InitReport init_pki(const Config& config, const fs::path& dir, TimePoint now,
                    const Progress& progress = {}, const Recording& recording = {});

// The specs init creates, CAs first.
std::vector<CertSpec> planned_certificates(const Config& config);

fs::path cert_path(const fs::path& dir, const std::string& file);  // DIR/file.pem
fs::path key_path(const fs::path& dir, const std::string& file);   // DIR/file-key.pem

// The CA of `issuer` (ca, front-proxy-ca or etcd-ca) from the folder.
std::unique_ptr<Ca> load_ca(const fs::path& dir, Profile issuer, Flavor flavor);

struct Issued {
  Botan::X509_Certificate cert;
  std::string cert_pem;
  std::string key_pem;
};
// Issues spec with a new key of `algorithm` and writes PREFIX.pem / PREFIX-key.pem;
// refuses (InputError) to replace an existing pair unless force, and always refuses a path
// that is not a regular file (fs.h's output rule). The record goes to recording.store (the
// caller binds it to the cluster CA) before the files are written; recording.crl_url is set
// on `ca` when it is the cluster CA (the spec's issuer is Profile::kCa).
Issued issue_to_files(Ca& ca, const CertSpec& spec, KeyAlgorithm algorithm, const fs::path& prefix,
                      TimePoint now, bool force = false, const Recording& recording = {});

struct CertStatus {
  std::string name;  // "apiserver", "etcd/server", "admin.conf"
  std::string subject;
  std::string issuer;  // the CA's file name, or its subject when it is not in the folder
  std::string serial;
  TimePoint not_before, not_after;
  bool is_ca = false;
  // The CA's key is not in the folder (for a CA: its own; for a leaf: its CA's, or its CA is
  // not in the folder at all): kubeca cannot renew it here, as kubeadm's external CA mode.
  bool externally_managed = false;
  // Other names that hold the same certificate: a kubeconfig is the row, as in kubeadm's
  // table, and the PEM file it embeds ("admin" for admin.conf) is listed here, not twice.
  std::vector<std::string> copies;
  // valid | expiring | expired | not-yet-valid, or for a broken entry (no subject, serial or
  // dates): missing (a key without its certificate) | invalid (a file that does not parse).
  std::string status;
  std::string error;  // for missing | invalid: what is wrong
  bool broken() const { return status == "missing" || status == "invalid"; }
};
// Every certificate in the folder (PEM files and those embedded in *.conf), sorted, each
// once; broken ones are listed too, never dropped.
std::vector<CertStatus> list_certificates(const fs::path& dir, TimePoint now,
                                          std::chrono::seconds warn = std::chrono::hours(24 * 30));

std::string format_time(TimePoint t);  // RFC 3339, UTC
int64_t unix_seconds(TimePoint t);     // what the store keeps
int64_t unix_now();

struct Renewed {
  std::string name;                         // "apiserver", "etcd/server"
  std::string old_serial, new_serial;       // new_serial is "" for a dry run or a skipped one
  std::vector<std::string> kubeconfigs;     // rewritten (or, dry, to rewrite): they embed it
  std::string old_identity, new_identity;   // describe(): "O=..., CN=..., DNS:..., IP:..."
  std::vector<std::string> added, removed;  // subject fields and SANs the renewal changes
  std::string skipped;  // why it was not renewed (its CA is externally managed); "" if it was
};

struct OfflineRenewOptions {
  bool rotate_key = false;
  bool dry_run = false;  // plan only: no key made, nothing signed, recorded or written
  // Today's config: a certificate init makes from it gets the config's identity (new SANs),
  // validity and usages; others keep their own. Null: every one keeps its own identity.
  const Config* config = nullptr;
};
// Offline renewal, as kubeadm's: `name` ("all", a certificate's path in the folder without
// .pem, or a kubeconfig) gets a new validity from the CA that signed it. The key is kept
// unless rotate_key. Kubeconfigs that embed the old certificate are rewritten. A renewed
// leaf of the cluster CA gets recording.crl_url when set, else keeps the CRL distribution
// point it had. With a store (bound to DIR/ca.pem), every new certificate is recorded
// before any file is replaced. A certificate whose CA key is absent (external CA) fails a
// named renewal with what to do instead (runtime_error); "all" skips it (Renewed::skipped)
// and fails only when it would renew nothing.
std::vector<Renewed> renew_offline(const fs::path& dir, const std::string& name, TimePoint now,
                                   const OfflineRenewOptions& options = {},
                                   const Recording& recording = {});

}  // namespace kubeca
