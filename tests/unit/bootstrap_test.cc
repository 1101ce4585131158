#include "kubeca/bootstrap.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <map>
#include <regex>
#include <set>

#include "kubeca/config.h"
#include "kubeca/diff.h"
#include "kubeca/fs.h"
#include "kubeca/pki.h"
#include "kubeca/template.h"
#include "test_support.h"

namespace kubeca {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kSource = fs::path(KUBECA_TEST_DATA) / "../..";

fs::path temp_dir(const std::string& tag) { return test::make_temp_dir("kubeca-bootstrap-" + tag); }

Config example(const std::string& name) {
  Config c = load_config((kSource / "examples" / (name + ".yaml")).string(), "");
  c.key_algorithm = "ecdsa-p256";  // bootstrap copies keys; their kind does not matter here
  return c;
}

// One PKI per flavor for the whole suite: init is the slow part.
class Bootstrap : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(temp_dir("pki"));
    init_pki(example("coreos-2016"), *dir_ / "coreos", std::chrono::system_clock::now());
    init_pki(example("modern"), *dir_ / "modern", std::chrono::system_clock::now());
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
  }
  void TearDown() override {
    for (const auto& r : roots_) fs::remove_all(r);
  }

  static fs::path pki(const std::string& flavor) { return *dir_ / flavor; }

  static std::vector<HostFile> plan(const Config& c, Role role, const std::string& node = "") {
    BootstrapRequest r;
    r.role = role;
    r.node = node;
    r.pki = pki(c.flavor == Flavor::kModern ? "modern" : "coreos");
    r.config_yaml = "# cluster.yaml as given\n";
    return plan_files(c, r);
  }

  fs::path root() { return roots_.emplace_back(temp_dir("root")); }

  static const HostFile& find(const std::vector<HostFile>& files, const std::string& path) {
    for (const auto& f : files) {
      if (f.path == path) return f;
    }
    throw std::runtime_error("not planned: " + path);
  }

  static fs::path* dir_;
  std::vector<fs::path> roots_;
};
fs::path* Bootstrap::dir_ = nullptr;

// --- The seed, field by field -------------------------------------------------------------

// The files the seed's master section writes: every "$ sudo vi PATH" and the text under it.
std::map<std::string, std::string> seed_files() {
  std::ifstream in(fs::path(KUBECA_TEST_DATA) / "coreos-2016-seed.txt");
  std::map<std::string, std::string> out;
  std::string line, path;
  const std::regex vi(R"(^\s*\$ sudo vi (\S+)\s*$)");
  std::smatch m;
  while (std::getline(in, line)) {
    if (std::regex_match(line, m, vi)) {
      path = m[1];
      out[path] = "";
    } else if (!path.empty() && (line.rfind("$ ", 0) == 0 || line.rfind("```", 0) == 0)) {
      path.clear();
    } else if (!path.empty()) {
      out[path] += line + "\n";
    }
  }
  return out;
}

// The seed's slips, fixed on purpose and listed in docs/bootstrap.md.
struct Deliberate {
  const char* path;
  const char* seed;
  const char* ours;
};
const Deliberate kDeliberate[] = {
    {"/etc/systemd/system/calico-node.service", "estart=always", "Restart=always"},
};

void compare_yaml(const YAML::Node& a, const YAML::Node& b, const std::string& at,
                  std::vector<std::string>& diffs) {
  if (a.Type() != b.Type()) {
    diffs.push_back(at + ": node kinds differ");
    return;
  }
  if (a.IsScalar()) {
    if (a.Scalar() != b.Scalar()) diffs.push_back(at + ": " + a.Scalar() + " != " + b.Scalar());
  } else if (a.IsSequence()) {
    if (a.size() != b.size()) diffs.push_back(at + ": list lengths differ");
    for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
      compare_yaml(a[i], b[i], at + "[" + std::to_string(i) + "]", diffs);
    }
  } else if (a.IsMap()) {
    std::set<std::string> keys;
    for (const auto& kv : a) keys.insert(kv.first.Scalar());
    for (const auto& kv : b) keys.insert(kv.first.Scalar());
    for (const auto& k : keys) {
      if (!a[k] || !b[k]) {
        diffs.push_back(at + "." + k + ": only on one side");
        continue;
      }
      compare_yaml(a[k], b[k], at + "." + k, diffs);
    }
  }
}

// A systemd unit or an env file as (section, key, value) triples, continuation lines joined.
std::vector<std::string> unit_fields(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string line, section, pending;
  while (std::getline(ss, line)) {
    line = std::regex_replace(line, std::regex(R"(\s+$)"), "");
    if (!pending.empty()) {
      line = pending + " " + std::regex_replace(line, std::regex(R"(^\s+)"), "");
      pending.clear();
    }
    if (!line.empty() && line.back() == '\\') {
      pending = line.substr(0, line.size() - 1);
      pending = std::regex_replace(pending, std::regex(R"(\s+$)"), "");
      continue;
    }
    if (line.empty() || line[0] == '#') continue;
    if (line[0] == '[') {
      section = line;
      continue;
    }
    const auto eq = line.find('=');
    out.push_back(section + " " + line.substr(0, eq) + " = " + line.substr(eq + 1));
  }
  return out;
}

TEST_F(Bootstrap, CoreosMasterIsTheSeedFieldByField) {
  const auto files = plan(example("coreos-2016"), Role::kMaster);
  const auto seed = seed_files();
  ASSERT_EQ(seed.size(), 11u) << "the seed's master section writes 11 files";
  for (auto [path, text] : seed) {
    SCOPED_TRACE(path);
    for (const auto& d : kDeliberate) {
      if (path == d.path) {
        ASSERT_NE(text.find(d.seed), std::string::npos);
        text.replace(text.find(d.seed), std::string(d.seed).size(), d.ours);
      }
    }
    const HostFile& ours = find(files, path);
    if (path.size() > 5 && path.substr(path.size() - 5) == ".yaml") {
      std::vector<std::string> diffs;
      compare_yaml(YAML::Load(text), YAML::Load(ours.content), "", diffs);
      EXPECT_TRUE(diffs.empty()) << diffs.front();
    } else if (path.size() > 5 && path.substr(path.size() - 5) == ".conf" && text.find('{') == 0) {
      EXPECT_EQ(json::parse(text), json::parse(ours.content));
    } else {
      EXPECT_EQ(unit_fields(text), unit_fields(ours.content));
    }
    // And the text itself, trailing blanks and all: the seed as written.
    EXPECT_EQ(text, ours.content);
  }
  // Nothing else but the TLS assets the seed copies.
  std::set<std::string> paths;
  for (const auto& f : files) paths.insert(f.path);
  for (const auto& [path, text] : seed) paths.erase(path);
  EXPECT_EQ(paths, (std::set<std::string>{"/etc/kubernetes/ssl/ca.pem",
                                          "/etc/kubernetes/ssl/apiserver.pem",
                                          "/etc/kubernetes/ssl/apiserver-key.pem"}));
  EXPECT_EQ(find(files, "/etc/kubernetes/ssl/apiserver-key.pem").mode, 0600u);
  EXPECT_EQ(find(files, "/etc/kubernetes/ssl/apiserver.pem").content,
            read_file(pki("coreos") / "apiserver.pem"));
}

TEST_F(Bootstrap, CoreosValuesComeFromTheConfigNotTheTemplates) {
  Config c = example("coreos-2016");
  c.master_host = "172.16.0.5";
  c.etcd_endpoints = {"http://172.16.0.5:2379"};
  c.service_cidr = "10.96.0.0/16";
  c.dns_service_ip = "10.96.0.53";
  c.domain = "example.internal";
  c.k8s_service_ip.clear();  // derived again from the new range
  validate(c);
  const auto files = plan(c, Role::kMaster);
  const std::string api = find(files, "/etc/kubernetes/manifests/kube-apiserver.yaml").content;
  EXPECT_NE(api.find("- --advertise-address=172.16.0.5\n"), std::string::npos);
  EXPECT_NE(api.find("- --etcd-servers=http://172.16.0.5:2379\n"), std::string::npos);
  EXPECT_NE(api.find("- --service-cluster-ip-range=10.96.0.0/16\n"), std::string::npos);
  const std::string kubelet = find(files, "/etc/systemd/system/kubelet.service").content;
  EXPECT_NE(kubelet.find("--hostname-override=172.16.0.5 "), std::string::npos);
  EXPECT_NE(kubelet.find("--cluster-dns=10.96.0.53 "), std::string::npos);
  EXPECT_NE(kubelet.find("--cluster-domain=example.internal\n"), std::string::npos);
  for (const auto& f : files) {
    EXPECT_EQ(f.content.find("192.168.24."), std::string::npos) << f.path;
    EXPECT_EQ(f.content.find("{{"), std::string::npos) << f.path;
  }
}

TEST_F(Bootstrap, CoreosWorkerFollowsTheGuidesWorkerStep) {
  const auto files = plan(example("coreos-2016"), Role::kWorker, "coreos3");
  EXPECT_EQ(find(files, "/etc/kubernetes/ssl/worker.pem").content,
            read_file(pki("coreos") / "coreos3-worker.pem"));
  EXPECT_EQ(find(files, "/etc/kubernetes/ssl/worker-key.pem").content,
            read_file(pki("coreos") / "coreos3-worker-key.pem"));
  EXPECT_EQ(find(files, "/etc/kubernetes/ssl/worker-key.pem").mode, 0600u);
  const auto fields = unit_fields(find(files, "/etc/systemd/system/kubelet.service").content);
  std::string exec;
  for (const auto& f : fields) {
    if (f.find("[Service] ExecStart = ") == 0) exec = f;
  }
  for (const char* flag : {"--api-servers=https://192.168.24.11 ", "--register-node=true ",
                           "--kubeconfig=/etc/kubernetes/worker-kubeconfig.yaml ",
                           "--tls-cert-file=/etc/kubernetes/ssl/worker.pem ",
                           "--tls-private-key-file=/etc/kubernetes/ssl/worker-key.pem",
                           "--hostname-override=192.168.24.13 ", "--network-plugin=cni ",
                           "--cluster-dns=10.3.0.10 "}) {
    EXPECT_NE(exec.find(flag), std::string::npos) << flag << " in " << exec;
  }
  EXPECT_EQ(exec.find("register-schedulable"), std::string::npos);
  const YAML::Node kc = YAML::Load(find(files, "/etc/kubernetes/worker-kubeconfig.yaml").content);
  EXPECT_EQ(kc["clusters"][0]["cluster"]["certificate-authority"].as<std::string>(),
            "/etc/kubernetes/ssl/ca.pem");
  EXPECT_EQ(kc["users"][0]["name"].as<std::string>(), "kubelet");
  EXPECT_EQ(kc["users"][0]["user"]["client-certificate"].as<std::string>(),
            "/etc/kubernetes/ssl/worker.pem");
  const YAML::Node proxy =
      YAML::Load(find(files, "/etc/kubernetes/manifests/kube-proxy.yaml").content);
  const auto cmd = proxy["spec"]["containers"][0]["command"];
  EXPECT_EQ(cmd[2].as<std::string>(), "--master=https://192.168.24.11");
  EXPECT_EQ(cmd[3].as<std::string>(), "--kubeconfig=/etc/kubernetes/worker-kubeconfig.yaml");
  const json calico = json::parse(find(files, "/etc/kubernetes/cni/net.d/10-calico.conf").content);
  EXPECT_EQ(calico["delegate"]["hostname"], "192.168.24.13");
  EXPECT_EQ(calico["delegate"]["policy"]["k8s_api_root"], "https://192.168.24.11:443/api/v1/");
  EXPECT_EQ(calico["delegate"]["policy"]["k8s_client_certificate"],
            "/etc/kubernetes/ssl/worker.pem");
  EXPECT_EQ(find(files, "/etc/flannel/options.env").content.substr(0, 30),
            "FLANNELD_IFACE=192.168.24.13\nF");
  // The kubeca units, with the CA pin from the PKI and never a token.
  const std::string request = find(files, "/etc/systemd/system/kubeca-request.service").content;
  EXPECT_NE(request.find("Type=oneshot"), std::string::npos);
  EXPECT_NE(request.find("Before=kubelet.service"), std::string::npos);
  EXPECT_NE(request.find("--out-dir /etc/kubernetes/ssl --name coreos3"), std::string::npos);
  const std::string env = find(files, "/etc/kubeca/ca.env").content;
  EXPECT_EQ(env.substr(env.find("KUBECA_CA_HASH=")),
            "KUBECA_CA_HASH=" + ca_pin(parse_certificate_pem(read_file(pki("coreos") / "ca.pem"))) +
                "\n");
  for (const auto& f : files) EXPECT_EQ(f.content.find("KUBECA_TOKEN="), std::string::npos);
  find(files, "/etc/systemd/system/kubeca-renew.service");
  find(files, "/etc/systemd/system/kubeca-renew.timer");
}

TEST_F(Bootstrap, UnknownNodesAreInputErrors) {
  EXPECT_THROW(plan(example("coreos-2016"), Role::kWorker, "coreos9"), InputError);
  EXPECT_THROW(plan(example("coreos-2016"), Role::kWorker, ""), InputError);
  EXPECT_THROW(plan(example("coreos-2016"), Role::kMaster, "coreos2"), InputError);
  EXPECT_THROW(plan(example("modern"), Role::kEtcd, "nobody"), InputError);
  // A member whose certificates were never issued: the error names the command to run.
  try {
    plan(example("modern"), Role::kEtcd, "coreos2");
    FAIL() << "no etcd/server-coreos2.pem in the PKI";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("kubeca issue etcd-server --name coreos2 --ip "
                                         "192.168.24.12"),
              std::string::npos)
        << e.what();
  }
}

TEST_F(Bootstrap, CoreosDnsAddon) {
  const auto files = plan(example("coreos-2016"), Role::kAddons);
  const auto docs = YAML::LoadAll(find(files, "/etc/kubernetes/addons/kube-dns.yaml").content);
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[0]["kind"].as<std::string>(), "Service");
  EXPECT_EQ(docs[0]["spec"]["clusterIP"].as<std::string>(), "10.3.0.10");
  EXPECT_EQ(docs[0]["spec"]["ports"][0]["protocol"].as<std::string>(), "UDP");
  EXPECT_EQ(docs[0]["spec"]["ports"][1]["protocol"].as<std::string>(), "TCP");
  EXPECT_EQ(docs[1]["kind"].as<std::string>(), "ReplicationController");
  EXPECT_EQ(docs[1]["metadata"]["name"].as<std::string>(), "kube-dns-v11");
  std::vector<std::string> names;
  for (const auto& c : docs[1]["spec"]["template"]["spec"]["containers"]) {
    names.push_back(c["name"].as<std::string>());
  }
  EXPECT_EQ(names, (std::vector<std::string>{"etcd", "kube2sky", "skydns", "healthz"}));
}

// --- modern -------------------------------------------------------------------------------

std::vector<std::string> command_of(const std::string& pod_yaml) {
  std::vector<std::string> out;
  for (const auto& a : YAML::Load(pod_yaml)["spec"]["containers"][0]["command"]) {
    out.push_back(a.as<std::string>());
  }
  return out;
}

bool has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

TEST_F(Bootstrap, ModernApiserverHasTheFlagsOfKubernetesMd) {
  const auto files = plan(example("modern"), Role::kMaster);
  const auto cmd = command_of(find(files, "/etc/kubernetes/manifests/kube-apiserver.yaml").content);
  for (const char* flag :
       {"--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NodeRestriction",
        "--client-ca-file=/etc/kubernetes/pki/ca.crt",
        "--tls-cert-file=/etc/kubernetes/pki/apiserver.crt",
        "--kubelet-client-certificate=/etc/kubernetes/pki/apiserver-kubelet-client.crt",
        "--kubelet-client-key=/etc/kubernetes/pki/apiserver-kubelet-client.key",
        "--etcd-cafile=/etc/kubernetes/pki/etcd/ca.crt",
        "--etcd-certfile=/etc/kubernetes/pki/apiserver-etcd-client.crt",
        "--etcd-keyfile=/etc/kubernetes/pki/apiserver-etcd-client.key",
        "--etcd-servers=https://192.168.24.11:2379,https://192.168.24.12:2379,"
        "https://192.168.24.13:2379,https://192.168.24.14:2379",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        "--service-account-key-file=/etc/kubernetes/pki/sa.pub",
        "--service-account-signing-key-file=/etc/kubernetes/pki/sa.key",
        "--requestheader-client-ca-file=/etc/kubernetes/pki/front-proxy-ca.crt",
        "--proxy-client-cert-file=/etc/kubernetes/pki/front-proxy-client.crt",
        "--proxy-client-key-file=/etc/kubernetes/pki/front-proxy-client.key",
        "--enable-bootstrap-token-auth=true",
        "--secure-port=6443",
        "--service-cluster-ip-range=10.3.0.0/24",
        "--advertise-address=192.168.24.11"}) {
    EXPECT_TRUE(has(cmd, flag)) << flag;
  }
  // The files those flags name are laid down, from the PKI.
  for (const auto& [path, pki_file] :
       std::map<std::string, std::string>{{"/etc/kubernetes/pki/apiserver.crt", "apiserver.pem"},
                                          {"/etc/kubernetes/pki/sa.key", "sa.key"},
                                          {"/etc/kubernetes/pki/etcd/ca.crt", "etcd/ca.pem"},
                                          {"/etc/kubernetes/admin.conf", "admin.conf"}}) {
    EXPECT_EQ(find(files, path).content, read_file(pki("modern") / pki_file)) << path;
  }
  EXPECT_EQ(find(files, "/etc/kubernetes/pki/sa.key").mode, 0600u);
  EXPECT_EQ(find(files, "/etc/kubernetes/admin.conf").mode, 0600u);
  for (const auto& f : files) EXPECT_EQ(f.path.find("ca.key"), std::string::npos) << f.path;
}

TEST_F(Bootstrap, ModernUsesNoRemovedFlagAndNoInsecurePort) {
  std::vector<HostFile> all;
  for (auto [role, node] : std::vector<std::pair<Role, std::string>>{{Role::kMaster, ""},
                                                                     {Role::kWorker, "coreos2"},
                                                                     {Role::kEtcd, ""},
                                                                     {Role::kAddons, ""}}) {
    for (auto& f : plan(example("modern"), role, node)) all.push_back(f);
  }
  for (const auto& f : all) {
    if (f.source.rfind("template", 0) != 0) continue;
    for (const char* removed :
         {"--api-servers", "--register-schedulable", "--network-plugin",
          "--allow-privileged=true \\", "--admission-control=", "SecurityContextDeny",
          "--insecure-port", "--insecure-bind-address", ":8080", "ThirdPartyResource",
          "extensions/v1beta1", "10251", "10252", "--config=/etc/kubernetes/manifests",
          "--port=", "http://127.0.0.1"}) {
      EXPECT_EQ(f.content.find(removed), std::string::npos) << removed << " in " << f.path;
    }
  }
  const auto cm =
      command_of(find(all, "/etc/kubernetes/manifests/kube-controller-manager.yaml").content);
  EXPECT_TRUE(has(cm, "--kubeconfig=/etc/kubernetes/controller-manager.conf"));
  const YAML::Node cmp =
      YAML::Load(find(all, "/etc/kubernetes/manifests/kube-controller-manager.yaml").content);
  EXPECT_EQ(cmp["spec"]["containers"][0]["livenessProbe"]["httpGet"]["port"].as<int>(), 10257);
  EXPECT_EQ(cmp["spec"]["containers"][0]["livenessProbe"]["httpGet"]["scheme"].as<std::string>(),
            "HTTPS");
  const YAML::Node sp =
      YAML::Load(find(all, "/etc/kubernetes/manifests/kube-scheduler.yaml").content);
  EXPECT_EQ(sp["spec"]["containers"][0]["livenessProbe"]["httpGet"]["port"].as<int>(), 10259);
  EXPECT_TRUE(has(command_of(find(all, "/etc/kubernetes/manifests/kube-scheduler.yaml").content),
                  "--kubeconfig=/etc/kubernetes/scheduler.conf"));
}

TEST_F(Bootstrap, ModernKubeletConfigurationAndNodeIdentity) {
  const auto worker = plan(example("modern"), Role::kWorker, "coreos2");
  const YAML::Node kc = YAML::Load(find(worker, "/var/lib/kubelet/config.yaml").content);
  EXPECT_EQ(kc["kind"].as<std::string>(), "KubeletConfiguration");
  EXPECT_EQ(kc["clusterDNS"][0].as<std::string>(), "10.3.0.10");
  EXPECT_EQ(kc["clusterDomain"].as<std::string>(), "cluster.local");
  EXPECT_EQ(kc["authentication"]["x509"]["clientCAFile"].as<std::string>(),
            "/var/lib/kubelet/pki/ca.pem");
  EXPECT_EQ(kc["authorization"]["mode"].as<std::string>(), "Webhook");
  EXPECT_TRUE(kc["rotateCertificates"].IsDefined());
  EXPECT_FALSE(kc["registerWithTaints"].IsDefined());
  // The node registers by NAME: its certificate says system:node:NAME.
  const HostFile& cert = find(worker, "/var/lib/kubelet/pki/coreos2.pem");
  EXPECT_EQ(parse_certificate_pem(cert.content).subject_info("X520.CommonName").at(0),
            "system:node:coreos2");
  EXPECT_EQ(find(worker, "/var/lib/kubelet/pki/coreos2-key.pem").mode, 0600u);
  EXPECT_NE(find(worker, "/etc/systemd/system/kubelet.service")
                .content.find("--hostname-override=coreos2"),
            std::string::npos);
  const YAML::Node conf = YAML::Load(find(worker, "/etc/kubernetes/kubelet.conf").content);
  EXPECT_EQ(conf["clusters"][0]["cluster"]["server"].as<std::string>(),
            "https://192.168.24.11:6443");
  EXPECT_EQ(conf["users"][0]["user"]["client-certificate"].as<std::string>(),
            "/var/lib/kubelet/pki/coreos2.pem");
  const std::string request = find(worker, "/etc/systemd/system/kubeca-request.service").content;
  EXPECT_NE(request.find("--out-dir /var/lib/kubelet/pki --name coreos2"), std::string::npos);
  EXPECT_EQ(request.find("ConditionPathExists"), std::string::npos);

  const auto master = plan(example("modern"), Role::kMaster);
  const YAML::Node mc = YAML::Load(find(master, "/var/lib/kubelet/config.yaml").content);
  EXPECT_EQ(mc["registerWithTaints"][0]["key"].as<std::string>(),
            "node-role.kubernetes.io/control-plane");
}

TEST_F(Bootstrap, ModernEtcdMemberRunsWithTls) {
  const auto files = plan(example("modern"), Role::kEtcd);
  const std::string unit = find(files, "/etc/systemd/system/etcd.service").content;
  for (const char* flag :
       {"--name=coreos1 ", "--client-cert-auth=true ", "--peer-client-cert-auth=true ",
        "--listen-client-urls=https://192.168.24.11:2379 ",
        "--initial-cluster=coreos1=https://192.168.24.11:2380,coreos2=https://"
        "192.168.24.12:2380,coreos3=https://192.168.24.13:2380,coreos4=https://"
        "192.168.24.14:2380 "}) {
    EXPECT_NE(unit.find(flag), std::string::npos) << flag;
  }
  EXPECT_EQ(find(files, "/etc/kubernetes/pki/etcd/server.crt").content,
            read_file(pki("modern") / "etcd/server.pem"));
  EXPECT_EQ(find(files, "/etc/kubernetes/pki/etcd/peer.key").mode, 0600u);
}

TEST_F(Bootstrap, ModernRefusesPlainHttpEtcd) {
  Config c = example("modern");
  c.etcd_endpoints = {"http://192.168.24.11:2379"};
  EXPECT_THROW(plan(c, Role::kMaster), InputError);
}

TEST_F(Bootstrap, ModernCoreDns) {
  const auto files = plan(example("modern"), Role::kAddons);
  std::map<std::string, YAML::Node> by_kind;
  for (const auto& d : YAML::LoadAll(find(files, "/etc/kubernetes/addons/coredns.yaml").content)) {
    by_kind[d["kind"].as<std::string>()] = d;
  }
  for (const char* k : {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap",
                        "Deployment", "Service"}) {
    EXPECT_TRUE(by_kind.count(k)) << k;
  }
  EXPECT_EQ(by_kind["Service"]["metadata"]["name"].as<std::string>(), "kube-dns");
  EXPECT_EQ(by_kind["Service"]["spec"]["clusterIP"].as<std::string>(), "10.3.0.10");
  EXPECT_NE(by_kind["ConfigMap"]["data"]["Corefile"].as<std::string>().find(
                "kubernetes cluster.local in-addr.arpa ip6.arpa"),
            std::string::npos);
}

// --- templates ----------------------------------------------------------------------------

TEST(Template, AValueTheDataLacksIsAnErrorNotAnEmptyString) {
  const json data = {{"a", "1"}, {"empty", ""}, {"list", {{{"x", "y"}}}}, {"on", true}};
  EXPECT_EQ(render_template("t", "{{a}}-{{#list}}{{x}}{{/list}}-{{#on}}{{a}}{{/on}}", data),
            "1-y-1");
  EXPECT_THROW(render_template("t", "{{b}}", data), std::runtime_error);
  EXPECT_THROW(render_template("t", "{{empty}}", data), std::runtime_error);
  EXPECT_THROW(render_template("t", "{{#list}}{{z}}{{/list}}", data), std::runtime_error);
  EXPECT_THROW(render_template("t", "{{#nope}}x{{/nope}}", data), std::runtime_error);
  EXPECT_THROW(render_template("t", "{{#on}}x", data), std::runtime_error);
  EXPECT_EQ(unresolved_tags("a\n{{c}}", data).at(0), "{{c}} at line 2: the data has no \"c\"");
  // Config files are not HTML.
  EXPECT_EQ(render_template("t", "{{v}}", {{"v", "a&b<\"c\">"}}), "a&b<\"c\">");
}

TEST_F(Bootstrap, EveryTemplateRendersStrictlyForBothFlavors) {
  // Every role renders (a tag the values lack would throw), and every template is used.
  std::set<std::string> used;
  for (const char* flavor : {"coreos-2016", "modern"}) {
    for (auto [role, node] : std::vector<std::pair<Role, std::string>>{{Role::kMaster, ""},
                                                                       {Role::kWorker, "coreos4"},
                                                                       {Role::kEtcd, ""},
                                                                       {Role::kAddons, ""}}) {
      for (const auto& f : plan(example(flavor), role, node)) {
        EXPECT_EQ(f.content.find("{{"), std::string::npos) << f.path;
        if (f.source.rfind("template ", 0) == 0) used.insert(f.source.substr(9));
      }
    }
  }
  for (const auto& p : embedded_template_paths()) {
    if (fs::path(p).filename() == "files.yaml") continue;
    EXPECT_TRUE(used.count(p)) << "manifests/" << p << " is never laid down";
  }
}

TEST(Embedded, TheBinaryCarriesTheSourceTemplates) {
  std::set<std::string> on_disk;
  for (const auto& e : fs::recursive_directory_iterator(kSource / "manifests")) {
    if (!e.is_regular_file()) continue;
    const std::string rel = fs::relative(e.path(), kSource / "manifests").string();
    if (rel.rfind("monitoring/", 0) == 0) continue;  // Prometheus' files, not a host's
    on_disk.insert(rel);
    EXPECT_EQ(embedded_template(rel), read_file(e.path())) << rel;
  }
  const auto paths = embedded_template_paths();
  EXPECT_EQ(std::set<std::string>(paths.begin(), paths.end()), on_disk);
}

// --- laying files down --------------------------------------------------------------------

TEST_F(Bootstrap, SecondRunChangesNothing) {
  const fs::path r = root();
  const auto files = plan(example("coreos-2016"), Role::kWorker, "coreos2");
  auto first = compare_with_root(files, r);
  for (const auto& c : first) EXPECT_EQ(c.change, Change::kCreate) << c.file.path;
  EXPECT_EQ(write_changes(first, r, false), files.size());
  struct stat st {};
  ASSERT_EQ(::stat((r / "etc/kubernetes/ssl/worker-key.pem").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  ASSERT_EQ(::stat((r / "etc/kubernetes/ssl/worker.pem").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  if (::geteuid() == 0) {
    EXPECT_EQ(st.st_uid, 0u);
  }
  const auto state_before = read_file(state_path(r));

  auto second = compare_with_root(files, r);
  for (const auto& c : second) EXPECT_EQ(c.change, Change::kUnchanged) << c.file.path;
  EXPECT_EQ(write_changes(second, r, false), 0u);
  EXPECT_EQ(read_file(state_path(r)), state_before);
  EXPECT_EQ(describe_changes(second),
            "0 to create, 0 to change, " + std::to_string(files.size()) + " to keep\n");
}

TEST_F(Bootstrap, OperatorEditsAreRefusedUnlessForced) {
  const fs::path r = root();
  const auto files = plan(example("coreos-2016"), Role::kMaster);
  write_changes(compare_with_root(files, r), r, false);
  const fs::path edited = r / "etc/flannel/options.env";
  write_file_atomic(edited, read_file(edited) + "FLANNELD_IPMASQ=true\n");
  fs::permissions(r / "etc/kubernetes/ssl/ca.pem", fs::perms(0600));

  auto changes = compare_with_root(files, r);
  std::map<std::string, Change> by_path;
  for (const auto& c : changes) by_path[c.file.path] = c.change;
  EXPECT_EQ(by_path["/etc/flannel/options.env"], Change::kConflict);
  EXPECT_EQ(by_path["/etc/kubernetes/ssl/ca.pem"], Change::kMode);
  const std::string dry = describe_changes(changes);
  EXPECT_NE(dry.find("conflict  /etc/flannel/options.env"), std::string::npos) << dry;
  EXPECT_NE(dry.find("-FLANNELD_IPMASQ=true"), std::string::npos) << dry;
  EXPECT_NE(dry.find("mode 0600 -> 0644"), std::string::npos) << dry;
  EXPECT_NE(dry.find("\n0 to create, 1 to change, " + std::to_string(changes.size() - 2) +
                     " to keep, 1 edited outside kubeca (--force overwrites)\n"),
            std::string::npos)
      << dry;

  EXPECT_THROW(write_changes(changes, r, false), std::runtime_error);
  EXPECT_NE(read_file(edited).find("IPMASQ"), std::string::npos) << "refused means untouched";
  EXPECT_EQ(write_changes(changes, r, true), 2u);
  EXPECT_EQ(read_file(edited).find("IPMASQ"), std::string::npos);
  for (const auto& c : compare_with_root(files, r)) EXPECT_EQ(c.change, Change::kUnchanged);
}

TEST_F(Bootstrap, AConfigChangeUpdatesKubecasOwnFiles) {
  const fs::path r = root();
  write_changes(compare_with_root(plan(example("coreos-2016"), Role::kMaster), r), r, false);
  Config c = example("coreos-2016");
  c.dns_service_ip = "10.3.0.53";
  const auto changes = compare_with_root(plan(c, Role::kMaster), r);
  std::vector<std::string> updated;
  for (const auto& ch : changes) {
    EXPECT_NE(ch.change, Change::kConflict) << ch.file.path;
    if (ch.change == Change::kUpdate) updated.push_back(ch.file.path);
  }
  EXPECT_EQ(updated, std::vector<std::string>{"/etc/systemd/system/kubelet.service"});
  const std::string dry = describe_changes(changes);
  EXPECT_NE(dry.find("-  --cluster-dns=10.3.0.10 \\\n+  --cluster-dns=10.3.0.53 \\\n"),
            std::string::npos)
      << dry;
  EXPECT_NE(
      dry.find("\n0 to create, 1 to change, " + std::to_string(changes.size() - 1) + " to keep\n"),
      std::string::npos)
      << dry;
  write_changes(changes, r, false);
  EXPECT_NE(read_file(r / "etc/systemd/system/kubelet.service").find("10.3.0.53"),
            std::string::npos);
}

TEST_F(Bootstrap, DryRunNeverShowsASecret) {
  const fs::path r = root();
  const auto changes = compare_with_root(plan(example("modern"), Role::kMaster), r);
  const std::string dry = describe_changes(changes);
  EXPECT_EQ(dry.find("PRIVATE KEY"), std::string::npos);
  EXPECT_NE(dry.find("create    /etc/kubernetes/pki/apiserver.key (0600 root:root, pki "
                     "apiserver-key.pem)\n  (secret, "),
            std::string::npos)
      << dry;
  EXPECT_NE(dry.find("+++ /etc/kubernetes/manifests/kube-apiserver.yaml\n@@ -0,0 +1,"),
            std::string::npos);
  EXPECT_FALSE(fs::exists(r / "etc")) << "a dry run writes nothing";
}

// The node's certificate and key, as the kubeca-renew unit names them (--cert, --key).
std::set<std::string> renewed_pair(const std::vector<HostFile>& files) {
  std::set<std::string> out;
  for (const auto& f : files) {
    if (f.path != "/etc/systemd/system/kubeca-renew.service") continue;
    std::smatch m;
    for (const char* flag : {R"(--cert (\S+))", R"(--key (\S+))"}) {
      if (std::regex_search(f.content, m, std::regex(flag))) out.insert(m[1]);
    }
  }
  return out;
}

TEST_F(Bootstrap, OnlyTheFilesKubecaRenewReplacesAreCreateOnly) {
  for (auto [flavor, role] : std::vector<std::pair<std::string, Role>>{
           {"coreos-2016", Role::kWorker}, {"modern", Role::kWorker}, {"modern", Role::kMaster}}) {
    SCOPED_TRACE(flavor + " " + to_string(role));
    const auto files = plan(example(flavor), role, role == Role::kWorker ? "coreos2" : "");
    std::set<std::string> create_only;
    for (const auto& f : files) {
      if (!f.create_only) continue;
      create_only.insert(f.path);
      EXPECT_EQ(f.managed_by, "kubeca-renew") << f.path;
    }
    EXPECT_EQ(renewed_pair(files).size(), 2u);
    EXPECT_EQ(create_only, renewed_pair(files));
  }
  for (const auto& f : plan(example("coreos-2016"), Role::kMaster)) EXPECT_FALSE(f.create_only);
}

// After kubeca-renew took the node's pair over (a new certificate; the files symlinks into
// its versions folder), bootstrap leaves it alone: no conflict, with or without --force.
TEST_F(Bootstrap, TheNodesPairIsSeededOnceThenLeftToKubecaRenew) {
  for (const std::string flavor : {"coreos-2016", "modern"}) {
    SCOPED_TRACE(flavor);
    const fs::path r = root();
    const auto files = plan(example(flavor), Role::kWorker, "coreos2");
    const auto pair = renewed_pair(files);
    ASSERT_EQ(pair.size(), 2u);
    std::string cert_path, key_path;
    for (const auto& p : pair) (find(files, p).secret() ? key_path : cert_path) = p;
    ASSERT_FALSE(cert_path.empty() || key_path.empty());
    const fs::path cert = r / fs::path(cert_path).relative_path();
    const fs::path key = r / fs::path(key_path).relative_path();

    // Seeded from the PKI when absent, and recorded as handed over.
    write_changes(compare_with_root(files, r), r, false);
    EXPECT_EQ(read_file(cert), find(files, cert_path).content);
    const json state = json::parse(read_file(state_path(r)));
    EXPECT_EQ(state["create_only"][cert_path], "kubeca-renew");
    EXPECT_EQ(state["create_only"][key_path], "kubeca-renew");

    // As kubeca-renew leaves them: the key a symlink into .NAME.pem.d (the version 0640, so
    // a chmod through the link would show), the cert another certificate with another mode.
    const fs::path versions = cert.parent_path() / ("." + cert.filename().string() + ".d");
    fs::create_directories(versions / "v2");
    write_file_atomic(versions / "v2/key.pem", "renewed key\n", 0640);
    fs::create_directory_symlink("v2", versions / "current");
    fs::remove(key);
    fs::create_symlink(fs::path(versions.filename()) / "current/key.pem", key);
    write_file_atomic(cert, "renewed cert\n", 0600);
    const auto untouched = [&](const std::string& when) {
      SCOPED_TRACE(when);
      EXPECT_EQ(read_file(cert), "renewed cert\n");
      EXPECT_EQ(fs::status(cert).permissions(), fs::perms(0600));
      ASSERT_TRUE(fs::is_symlink(key));
      EXPECT_EQ(fs::read_symlink(key), fs::path(versions.filename()) / "current/key.pem");
      EXPECT_EQ(read_file(versions / "v2/key.pem"), "renewed key\n");
      EXPECT_EQ(fs::status(versions / "v2/key.pem").permissions(), fs::perms(0640));
    };

    const auto changes = compare_with_root(files, r);
    for (const auto& c : changes) {
      const bool mine = pair.count(c.file.path) > 0;
      EXPECT_EQ(c.change, mine ? Change::kKept : Change::kUnchanged) << c.file.path;
      if (mine) {
        EXPECT_EQ(c.note, "managed by kubeca-renew");
      }
    }
    // --dry-run says so, without a diff (or a secret).
    const std::string dry = describe_changes(changes);
    EXPECT_NE(dry.find("kept      " + cert_path + " (0644 root:root, pki "), std::string::npos)
        << dry;
    EXPECT_NE(dry.find("): managed by kubeca-renew\n"), std::string::npos) << dry;
    EXPECT_NE(dry.find("kept      " + key_path), std::string::npos) << dry;
    EXPECT_EQ(dry.find("+++"), std::string::npos) << dry;
    EXPECT_EQ(dry.find("conflict"), std::string::npos) << dry;
    EXPECT_NE(dry.find("0 to create, 0 to change, " + std::to_string(files.size()) + " to keep\n"),
              std::string::npos)
        << dry;

    EXPECT_EQ(write_changes(changes, r, false), 0u);
    untouched("re-run");
    // The record stays the seed's: a kept file's content is not kubeca's to record.
    EXPECT_EQ(json::parse(read_file(state_path(r)))["files"][cert_path], state["files"][cert_path]);

    // --force overwrites an operator's edit elsewhere, never the node's pair.
    const fs::path unit = r / "etc/systemd/system/kubelet.service";
    write_file_atomic(unit, read_file(unit) + "# edited\n");
    const auto forced = compare_with_root(files, r);
    EXPECT_THROW(write_changes(forced, r, false), std::runtime_error);
    EXPECT_EQ(write_changes(forced, r, true), 1u);
    EXPECT_EQ(read_file(unit).find("# edited"), std::string::npos);
    untouched("--force");

    // A dangling link (a versions folder being switched) is kept too, not read.
    fs::remove(cert);
    fs::create_symlink(".nothing/cert.pem", cert);
    for (const auto& c : compare_with_root(files, r)) {
      if (c.file.path == cert_path) {
        EXPECT_EQ(c.change, Change::kKept);
      }
    }
    EXPECT_EQ(write_changes(compare_with_root(files, r), r, true), 0u);
    EXPECT_EQ(fs::read_symlink(cert), ".nothing/cert.pem");

    // Absent again (a node reset): seeded again. Unless the unit wins the race after the
    // comparison: then what it wrote stays.
    fs::remove(cert);
    const auto create = compare_with_root(files, r);
    fs::create_symlink(".raced/cert.pem", cert);
    EXPECT_EQ(write_changes(create, r, false), 0u);
    EXPECT_EQ(fs::read_symlink(cert), ".raced/cert.pem");
    fs::remove(cert);
    EXPECT_EQ(write_changes(compare_with_root(files, r), r, false), 1u);
    EXPECT_FALSE(fs::is_symlink(cert));
    EXPECT_EQ(read_file(cert), find(files, cert_path).content);
    EXPECT_EQ(fs::status(cert).permissions(), fs::perms(0644));
    ASSERT_TRUE(fs::is_symlink(key));
  }
}

TEST(Diff, UnifiedLikeDiffU) {
  EXPECT_EQ(unified_diff("a\nb\nc\n", "a\nb\nc\n", "x", "y"), "");
  EXPECT_EQ(unified_diff("a\nb\nc\n", "a\nB\nc\n", "x", "y"),
            "--- x\n+++ y\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n");
  EXPECT_EQ(unified_diff("", "n\n", "/dev/null", "y"),
            "--- /dev/null\n+++ y\n@@ -0,0 +1,1 @@\n+n\n");
  std::string before, after;
  for (int i = 0; i < 20; ++i) {
    before += std::to_string(i) + "\n";
    after += (i == 2 || i == 17 ? "x" : std::to_string(i)) + "\n";
  }
  EXPECT_EQ(unified_diff(before, after, "a", "b"),
            "--- a\n+++ b\n@@ -1,6 +1,6 @@\n 0\n 1\n-2\n+x\n 3\n 4\n 5\n"
            "@@ -15,6 +15,6 @@\n 14\n 15\n 16\n-17\n+x\n 18\n 19\n");
}

}  // namespace
}  // namespace kubeca
