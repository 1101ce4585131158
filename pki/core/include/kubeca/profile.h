// Certificate profiles: what each certificate of the cluster says, fixed by kubeca.
// A request never chooses subject, usages or names; it contributes its public key only.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "kubeca/config.h"

namespace kubeca {

enum class Profile {
  kCa,
  kApiserver,
  kKubelet,
  kAdmin,
  kKubeProxy,
  kControllerManager,
  kScheduler,
  kApiserverKubeletClient,
  kFrontProxyCa,
  kFrontProxyClient,
  kEtcdCa,
  kEtcdServer,
  kEtcdPeer,
  kEtcdHealthcheckClient,
  kApiserverEtcdClient,
  kSigner,
  kUser,  // a person's short-lived client certificate (`kubeca kubeconfig user`)
};

std::optional<Profile> parse_profile(const std::string& name);
const char* to_string(Profile p);
const std::vector<Profile>& all_profiles();
bool profile_in_flavor(Profile p, Flavor f);
bool profile_is_ca(Profile p);
// The CA that signs this profile: kCa, kFrontProxyCa or kEtcdCa (CAs sign themselves).
Profile issuer_of(Profile p);

// Who a per-node profile (kubelet, etcd-server, etcd-peer) is for.
struct Identity {
  std::string name;
  std::vector<std::string> ips;
  std::vector<std::string> dns;  // extra names, for `kubeca issue --dns`
};

struct CertSpec {
  Profile profile = Profile::kCa;
  std::string common_name;
  std::vector<std::string> organizations;
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;
  bool server_auth = false;
  bool client_auth = false;
  bool seed_usages = false;  // coreos-2016 keeps nonRepudiation, digitalSignature, keyEncipherment
  std::chrono::seconds validity{0};
  std::string file;  // path in the PKI folder without ".pem": "apiserver", "etcd/server"
};

// The spec for profile p in this cluster. Throws InputError when the identity a per-node
// profile needs is missing or the profile does not exist in the config's flavor.
CertSpec make_spec(const Config& config, Profile p, const Identity& id = {});

// A person's credential, as `kubeadm kubeconfig user` makes it: CN = name, O = each group,
// clientAuth only, valid for ttl.
struct UserRequest {
  std::string name;
  std::vector<std::string> groups;
  std::chrono::seconds ttl{0};
  bool allow_privileged = false;
};
// Checks a request's name, groups and ttl (InputError naming --name, --group or --ttl). A
// name or group under "system:" (system:masters above all) speaks for the cluster's own
// parts: refused unless allow_privileged, with a PrivilegedUser error.
void check_user_request(const UserRequest& r);
class PrivilegedUser : public InputError {
 public:
  using InputError::InputError;
};
// The spec of a user certificate: check_user_request, and ttl no longer than
// pki.cert_validity (InputError).
CertSpec user_spec(const Config& config, const UserRequest& r);

// The subject/SAN identity a certificate of `spec` stands for, for comparing on renewal.
std::string describe(const CertSpec& spec);

}  // namespace kubeca
