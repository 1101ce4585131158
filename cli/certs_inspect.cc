// `kubeca certs inspect FILE`: what a certificate, a kubeconfig's certificate or a CSR says,
// and (with --pki, a store) whether it chains to the PKI and is revoked.
#include <botan/data_src.h>
#include <botan/pk_keys.h>
#include <botan/x509_ext.h>

#include <cctype>
#include <iostream>
#include <optional>

#include "certs.h"
#include "kubeca/csr.h"
#include "kubeca/fs.h"
#include "kubeca/kubeconfig.h"
#include "kubeca/pki.h"
#include "output.h"

namespace kubeca::cli {

namespace {

// Key usages and extended key usages as Kubernetes names them (certificates.k8s.io).
nlohmann::json usages_of(const Botan::Extensions& ext) {
  nlohmann::json out = nlohmann::json::array();
  if (const auto* ku = ext.get_extension_object_as<Botan::Cert_Extension::Key_Usage>()) {
    const auto c = ku->get_constraints();
    const std::pair<Botan::Key_Constraints, const char*> names[] = {
        {Botan::DIGITAL_SIGNATURE, "digital signature"},
        {Botan::NON_REPUDIATION, "content commitment"},
        {Botan::KEY_ENCIPHERMENT, "key encipherment"},
        {Botan::DATA_ENCIPHERMENT, "data encipherment"},
        {Botan::KEY_AGREEMENT, "key agreement"},
        {Botan::KEY_CERT_SIGN, "cert sign"},
        {Botan::CRL_SIGN, "crl sign"}};
    for (const auto& [bit, name] : names) {
      if (c & bit) out.push_back(name);
    }
  }
  if (const auto* eku = ext.get_extension_object_as<Botan::Cert_Extension::Extended_Key_Usage>()) {
    for (const auto& oid : eku->get_oids()) {
      out.push_back(oid == Botan::OID::from_string("PKIX.ServerAuth")   ? "server auth"
                    : oid == Botan::OID::from_string("PKIX.ClientAuth") ? "client auth"
                                                                        : oid.to_string());
    }
  }
  return out;
}

std::string key_text(const Botan::Public_Key& key) {
  return key.algo_name() + " " + std::to_string(key.key_length()) + " bits";
}

nlohmann::json sans_of(const CertSpec& id) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& d : id.dns_names) out.push_back("DNS:" + d);
  for (const auto& ip : id.ip_addresses) out.push_back("IP:" + ip);
  return out;
}

// The folder's CA that signed `cert` (its name in the folder), "" when none did.
std::string chain_in(const std::string& pki, const Botan::X509_Certificate& cert) {
  for (const auto& c : list_certificates(pki, std::chrono::system_clock::now())) {
    if (!c.is_ca || c.broken() || c.subject != dn_text(cert.issuer_dn())) continue;
    const auto ca = parse_certificate_pem(read_file(cert_path(pki, c.name)));
    if (cert.check_signature(*ca.load_subject_public_key())) return c.name;
  }
  return "";
}

nlohmann::json inspect_certificate(const Botan::X509_Certificate& cert, const std::string& kind,
                                   const po::variables_map& vm) {
  const CertSpec id = identity_of(cert);
  nlohmann::json out = {{"kind", kind},
                        {"subject", dn_text(cert.subject_dn())},
                        {"sans", sans_of(id)},
                        {"usages", usages_of(cert.v3_extensions())},
                        {"is_ca", cert.is_CA_cert()},
                        {"issuer", dn_text(cert.issuer_dn())},
                        {"not_before", format_time(cert.not_before().to_std_timepoint())},
                        {"not_after", format_time(cert.not_after().to_std_timepoint())},
                        {"serial", serial_hex(cert)},
                        {"key", key_text(*cert.load_subject_public_key())}};
  const auto now = std::chrono::system_clock::now();
  out["valid_now"] =
      cert.not_before().to_std_timepoint() <= now && now < cert.not_after().to_std_timepoint();
  out["chains_to"] = nullptr;  // unknown without --pki
  if (vm.count("pki")) {
    const std::string ca = chain_in(vm["pki"].as<std::string>(), cert);
    out["chains_to"] = ca.empty() ? nlohmann::json(false) : nlohmann::json(ca);
  }
  out["revoked"] = nullptr;  // unknown without a store
  std::unique_ptr<Store> store;
  if (vm.count("store")) {
    check_store_url(vm["store"].as<std::string>());
    store = open_store(vm["store"].as<std::string>(), OpenMode::kExisting);
  } else if (vm.count("config") || vm.count("env-file")) {
    store = config_store(load_config_from(vm), OpenMode::kExisting);
  }
  if (store) {
    const auto rec = store->find_certificate(serial_hex(cert));
    out["in_store"] = rec.has_value();
    out["revoked"] = rec && rec->status == "revoked";
  }
  return out;
}

nlohmann::json inspect_csr(const Csr& csr) {
  CertSpec id;
  for (const auto& d : csr.subject_alt_name().get_attribute("DNS")) id.dns_names.push_back(d);
  for (const auto& ip : csr.subject_alt_name().get_attribute("IP")) id.ip_addresses.push_back(ip);
  return {{"kind", "csr"},
          {"subject", dn_text(csr.subject_dn())},
          {"sans", sans_of(id)},
          {"usages", usages_of(csr.extensions())},
          {"is_ca", csr.is_CA()},
          {"issuer", nullptr},
          {"not_before", nullptr},
          {"not_after", nullptr},
          {"serial", nullptr},
          {"key", key_text(*csr.subject_public_key())},
          {"signature_ok", csr.self_signature_ok()}};
}

struct Parsed {
  std::string kind;  // certificate | kubeconfig | csr
  std::optional<Botan::X509_Certificate> cert;
  std::optional<Csr> csr;
};

// What FILE holds: a CSR, a certificate (PEM or DER), or a kubeconfig with a certificate;
// InputError for anything else.
Parsed parse_input(const std::string& file) {
  require_input_file("certs inspect", file);
  const std::string text = read_file(file);
  const std::string what =
      file + " is not a certificate, a kubeconfig with an embedded certificate, or a CSR";
  const bool pem_csr = text.find("-----BEGIN CERTIFICATE REQUEST-----") != std::string::npos ||
                       text.find("-----BEGIN NEW CERTIFICATE REQUEST-----") != std::string::npos;
  const bool pem_cert = text.find("-----BEGIN CERTIFICATE-----") != std::string::npos;
  const bool yaml =
      text.find("apiVersion") != std::string::npos || text.find("users:") != std::string::npos;
  try {
    if (pem_csr) {
      Csr csr = Csr::from_pem(text);
      (void)csr.subject_public_key();  // a key Botan cannot read is a bad input too
      return {"csr", std::nullopt, std::move(csr)};
    }
    if (pem_cert) return {"certificate", parse_certificate_pem(text), std::nullopt};
    if (yaml) {
      const auto creds = read_kubeconfig(file);
      if (creds.client_cert_pem.empty()) {
        throw InputError(file + ": the kubeconfig embeds no client certificate");
      }
      return {"kubeconfig", parse_certificate_pem(creds.client_cert_pem), std::nullopt};
    }
    Botan::DataSource_Memory der(text);
    return {"certificate", Botan::X509_Certificate(der), std::nullopt};
  } catch (const InputError&) {
    throw;
  } catch (const std::exception& e) {
    throw InputError(what + " (" + e.what() + ")");
  }
}

nlohmann::json inspect_file(const std::string& file, const po::variables_map& vm) {
  const Parsed p = parse_input(file);
  if (p.csr) return inspect_csr(*p.csr);
  return inspect_certificate(*p.cert, p.kind, vm);
}

std::string cell(const nlohmann::json& v) {
  if (v.is_null()) return "-";
  if (v.is_boolean()) return v.get<bool>() ? "yes" : "no";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array()) {
    std::string out;
    for (const auto& i : v) out += (out.empty() ? "" : ", ") + cell(i);
    return out.empty() ? "-" : out;
  }
  return v.dump();
}

}  // namespace

int certs_inspect(const std::vector<std::string>& args) {
  po::options_description desc("Options");
  desc.add_options()("file", po::value<std::string>()->required(),
                     "a certificate (PEM or DER), a kubeconfig, or a CSR")(
      "pki", po::value<std::string>(), "the PKI folder: does it chain to one of its CAs?")(
      "store", po::value<std::string>(), "the store (sqlite:PATH): is it revoked?")(
      "config,c", po::value<std::string>(), "cluster.yaml: its signer.store, as --store")(
      "env-file", po::value<std::string>(), "the seed's shell variables, as --config");
  add_output_options(desc);
  po::positional_options_description pos;
  pos.add("file", 1);
  po::variables_map vm;
  if (!parse(args,
             "Usage: kubeca certs inspect FILE [--pki DIR] [--store URL | --config F] "
             "[-o json|yaml|table]\n\n"
             "Shows what FILE holds: subject, SANs, usages, issuer, validity, serial, key. With\n"
             "--pki, whether one of DIR's CAs signed it (chains_to); with a store (--store, or\n"
             "--config's signer.store), whether the signer recorded and revoked it. Offline:\n"
             "nothing is asked of a running service. --json is -o json.",
             desc, vm, &pos)) {
    return 0;
  }
  const Format format = output_format(vm);
  const nlohmann::json out = inspect_file(vm["file"].as<std::string>(), vm);
  if (format != Format::kTable) {
    print_data(out, format);
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  for (const char* k :
       {"kind", "subject", "sans", "usages", "is_ca", "issuer", "not_before", "not_after",
        "valid_now", "serial", "key", "signature_ok", "chains_to", "in_store", "revoked"}) {
    if (!out.contains(k)) continue;
    const auto& v = out[k];
    std::string key = k;
    for (auto& ch : key) ch = ch == '_' ? ' ' : static_cast<char>(std::toupper(ch));
    const bool date = v.is_string() && (key == "NOT BEFORE" || key == "NOT AFTER");
    rows.push_back({key, date ? table_time(v.get<std::string>()) : cell(v)});
  }
  print_table(rows);
  return 0;
}

}  // namespace kubeca::cli
