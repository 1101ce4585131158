#include "kubeca/token.h"

#include <iostream>

#include "common.h"
#include "kubeca/kubeconfig.h"
#include "kubeca/pki.h"
#include "kubeca/profile.h"
#include "output.h"

namespace kubeca::cli {

namespace {
using Clock = std::chrono::system_clock;

// --print-join-command: the `kubeca request` line a node runs, as `kubeadm token create
// --print-join-command` prints `kubeadm join`.
void add_join_options(po::options_description& desc) {
  desc.add_options()("print-join-command",
                     "create: print the node's `kubeca request` line (server, token, CA pin)")(
      "pki", po::value<std::string>(), "create: the PKI folder whose CA is pinned")(
      "config,c", po::value<std::string>(), "create, with --store: cluster.yaml (signer.url)");
}

struct JoinTarget {
  std::string servers;  // the signer's URL(s), comma-separated
  std::string pin;      // sha256:HEX
};

// Where the node goes and what it pins, found before the token is made so that a bad
// combination creates nothing.
JoinTarget join_target(const po::variables_map& vm, AdminTarget& t) {
  JoinTarget j;
  if (vm.count("server")) {
    j.servers = vm["server"].as<std::string>();
  } else if (vm.count("kubeconfig")) {
    j.servers = read_kubeconfig(vm["kubeconfig"].as<std::string>()).server;
  } else if (vm.count("config")) {
    j.servers = load_config_from(vm).signer_url;
  } else {
    throw UsageError("--print-join-command with --store needs --config (its signer.url)");
  }
  if (vm.count("pki")) {
    j.pin = folder_ca_pin(vm["pki"].as<std::string>());
  } else if (t.api) {
    const HttpResult r = t.api->get("/v1/ca");
    if (r.status != 200) throw std::runtime_error("fetching the CA: " + r.describe());
    j.pin = ca_pin(parse_certificate_pem(first_certificate_pem(r.body)));
  } else {
    throw UsageError("--print-join-command with --store needs --pki DIR (the CA to pin)");
  }
  return j;
}

std::string join_command(const JoinTarget& j, const std::string& token, const std::string& node) {
  return "kubeca request --server " + j.servers + " --token " + token + " --ca-hash " + j.pin +
         " --out-dir /etc/kubernetes/pki --name " + node;
}
}  // namespace

int cmd_token(const std::vector<std::string>& args) {
  po::options_description desc("Options");
  desc.add_options()("action", po::value<std::string>()->required(), "create | list | revoke")(
      "id", po::value<std::string>(), "the token id to revoke")(
      "node", po::value<std::string>(), "create: the node name the token is bound to")(
      "ip", po::value<std::vector<std::string>>(), "create: the node's IP; repeat for more")(
      "profile", po::value<std::string>()->default_value("kubelet"), "create: the profile")(
      "ttl", po::value<std::string>()->default_value("1h"), "create: lifetime (30m, 1h, 24h)")(
      "uses", po::value<int>()->default_value(1), "create: how many certificates it may get")(
      "allow-privileged",
      "create: allow a profile other than kubelet or kube-proxy (admin, apiserver, etcd-*, ...)");
  add_output_options(desc);
  add_admin_options(desc);
  add_join_options(desc);
  po::positional_options_description pos;
  pos.add("action", 1).add("id", 1);
  po::variables_map vm;
  if (!parse(args,
             "Usage: kubeca token create --node NAME --ip IP [--ip IP] [--profile kubelet] "
             "[--ttl 1h] [--uses 1] [--allow-privileged] [-o json|yaml|table]\n"
             "       kubeca token list [-o json|yaml|table]\n       kubeca token revoke ID\n\n"
             "Against the store (--store sqlite:PATH) or a running service as an admin\n"
             "(--kubeconfig FILE, or --server URL --certificate-authority ca.pem\n"
             "--client-certificate admin.pem --client-key admin-key.pem).\n"
             "A token is printed once; only its hash is stored.\n"
             "--print-join-command prints the node's line instead: kubeca request --server URL\n"
             "--token TOKEN --ca-hash sha256:HEX ... (the pin from --pki DIR, else the\n"
             "service's /v1/ca; with --store, the URL from --config's signer.url). On a host,\n"
             "prefer the token in a file: --token-file FILE (chmod 600), since a command\n"
             "line is visible to everyone in ps.",
             desc, vm, &pos)) {
    return 0;
  }
  const std::string action = vm["action"].as<std::string>();
  const Format format = output_format(vm);
  if (action != "create" &&
      (vm.count("print-join-command") || vm.count("pki") || vm.count("config"))) {
    throw UsageError("--print-join-command, --pki and --config go with token create");
  }
  if (action == "create") {
    if (!vm.count("node")) throw UsageError("token create needs --node");
    TokenRequest r;
    r.node = vm["node"].as<std::string>();
    if (vm.count("ip")) r.ips = vm["ip"].as<std::vector<std::string>>();
    r.profile = vm["profile"].as<std::string>();
    r.ttl = parse_duration(vm["ttl"].as<std::string>());
    r.uses = vm["uses"].as<int>();
    r.allow_privileged = vm.count("allow-privileged") > 0;
    // Refused here too, before a service is asked: its holder could mint a credential
    // with cluster-wide power.
    const auto profile = parse_profile(r.profile);
    if (profile && !profile_is_ca(*profile) && token_profile_privileged(r.profile)) {
      if (!r.allow_privileged) {
        throw UsageError("--profile " + r.profile +
                         ": a token for it grants cluster-wide power; add --allow-privileged if "
                         "that is meant");
      }
      std::cerr << "kubeca: warning: a token for profile " << r.profile
                << " grants cluster-wide power to whoever holds it; keep it short-lived\n";
    }
    AdminTarget t = admin_target(vm);
    const bool join = vm.count("print-join-command") > 0;
    // Typed, not inherited: KUBECA_PKI and KUBECA_CONFIG may be set for other commands.
    const auto typed = [&](const char* o) { return vm.count(o) && !from_env(o); };
    if (!join && (typed("pki") || typed("config"))) {
      throw UsageError("--pki and --config go with --print-join-command");
    }
    const JoinTarget jt = join ? join_target(vm, t) : JoinTarget{};
    nlohmann::json out;
    if (t.store) {
      auto [token, rec] = create_token(*t.store, r, unix_now());
      out = token_json(rec);
      out["token"] = token;
    } else {
      out = expect(t.api->post("/v1/tokens", {{"node", r.node},
                                              {"ips", r.ips},
                                              {"profile", r.profile},
                                              {"ttl", vm["ttl"].as<std::string>()},
                                              {"uses", r.uses},
                                              {"allow_privileged", r.allow_privileged}}),
                   201, "token create");
    }
    if (join) {
      out["join_command"] = join_command(jt, out["token"], r.node);
    }
    if (format != Format::kTable) {
      print_data(out, format);
    } else if (join) {
      std::cout << out["join_command"].get<std::string>() << "\n"
                << "# on a host, prefer --token-file FILE (chmod 600) to --token: a command line "
                   "is visible in ps\n";
    } else {
      std::cout << out["token"].get<std::string>() << "\n";
      std::cerr << "token " << out["id"].get<std::string>() << " for node "
                << out["node"].get<std::string>() << " (" << out["profile"].get<std::string>()
                << "), " << out["uses_allowed"].get<int>() << " use(s), expires "
                << table_time(out["expires_at"].get<std::string>())
                << "; shown once, keep it secret\n";
    }
    return 0;
  }
  if (action == "list") {
    AdminTarget t = admin_target(vm);
    nlohmann::json out = nlohmann::json::array();
    if (t.store) {
      for (const auto& rec : t.store->list_tokens()) {
        out.push_back(token_json(rec));
      }
    } else {
      out = expect(t.api->get("/v1/tokens"), 200, "token list");
    }
    if (format != Format::kTable) {
      print_data(out, format);
      return 0;
    }
    std::vector<std::vector<std::string>> rows{
        {"ID", "NODE", "PROFILE", "USES", "EXPIRES", "STATUS"}};
    const std::string now = format_time(Clock::now());
    for (const auto& j : out) {
      std::string status = j["revoked"].get<bool>()                               ? "revoked"
                           : j["expires_at"].get<std::string>() <= now            ? "expired"
                           : j["uses"].get<int>() >= j["uses_allowed"].get<int>() ? "used"
                                                                                  : "active";
      rows.push_back({j["id"], j["node"], j["profile"],
                      std::to_string(j["uses"].get<int>()) + "/" +
                          std::to_string(j["uses_allowed"].get<int>()),
                      table_time(j["expires_at"].get<std::string>()), status});
    }
    print_table(rows);
    return 0;
  }
  if (action == "revoke") {
    if (!vm.count("id")) throw UsageError("token revoke needs the token ID");
    const std::string id = vm["id"].as<std::string>();
    if (id.size() != 6) throw UsageError("a token ID is its 6 characters before the dot");
    AdminTarget t = admin_target(vm);
    if (t.store) {
      if (!t.store->revoke_token(id)) throw std::runtime_error("no token " + id);
    } else {
      expect(t.api->del("/v1/tokens/" + id), 200, "token revoke");
    }
    std::cout << "revoked token " << id << "\n";
    return 0;
  }
  throw UsageError("unknown action \"" + action + "\" (create, list or revoke)");
}

}  // namespace kubeca::cli
