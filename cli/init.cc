#include <iostream>

#include "common.h"
#include "kubeca/fs.h"
#include "kubeca/pki.h"
#include "output.h"

namespace kubeca::cli {

Progress init_progress_line() {
  if (!stderr_is_terminal()) return {};
  using Clock = std::chrono::steady_clock;
  // Drawn at most every 100 ms, and whenever a phase completes, so its total shows.
  return [last = Clock::time_point(), drawn = false, phases = 0](const InitProgress& p) mutable {
    if (p.finished) {
      if (drawn) std::cerr << "\r\033[K" << std::flush;
      return;
    }
    if (p.keys_total + p.certificates_total + p.files_total == 0) return;
    const int done = (p.keys_total && p.keys == p.keys_total) +
                     (p.certificates_total && p.certificates == p.certificates_total) +
                     (p.files_total && p.files == p.files_total);
    const auto now = Clock::now();
    if (drawn && done == phases && now - last < std::chrono::milliseconds(100)) return;
    last = now;
    drawn = true;
    phases = done;
    std::cerr << "\r\033[Kkeys " << p.keys << "/" << p.keys_total << ", certificates "
              << p.certificates << "/" << p.certificates_total << ", files " << p.files << "/"
              << p.files_total << std::flush;
  };
}

int cmd_init(const std::vector<std::string>& args) {
  po::options_description desc("Options");
  desc.add_options()("config,c", po::value<std::string>(),
                     "cluster.yaml, else /etc/kubeca/cluster.yaml")(
      "env-file", po::value<std::string>(), "the seed's shell variables (MASTER_HOST=...)")(
      "pki", po::value<std::string>()->default_value(kDefaultPki),
      "the PKI folder to create or complete");
  add_output_options(desc);
  po::variables_map vm;
  if (!parse(args,
             "Usage: kubeca init --config cluster.yaml --pki DIR [--env-file F] [-o "
             "json|yaml|table]\n\n"
             "Creates the cluster CA, every certificate the flavor needs and the\n"
             "kubeconfigs. Re-running creates what is missing and changes nothing else.",
             desc, vm)) {
    return 0;
  }
  const Format format = output_format(vm);
  const std::string dir = vm["pki"].as<std::string>();
  check_output_dir("--pki", dir);
  const Config config = load_config_from(vm);
  // Opened (and made, as serve would) before any key is generated: a bad store stops here.
  const auto store = config_store(config, OpenMode::kCreate);
  const auto report = init_pki(config, dir, std::chrono::system_clock::now(), init_progress_line(),
                               {store.get(), crl_url_of(config)});
  if (format != Format::kTable) {
    nlohmann::json files = nlohmann::json::array();
    for (const auto& f : report.files) files.push_back({{"path", f.path}, {"created", f.created}});
    print_data({{"pki", dir},
                {"flavor", to_string(config.flavor)},
                {"key_algorithm", config.key_algorithm},
                {"created", report.created()},
                {"elapsed_ms", report.elapsed.count()},
                {"files", files}},
               format);
    return 0;
  }
  for (const auto& f : report.files) {
    std::cout << (f.created ? "[created] " : "[kept]    ") << dir << "/" << f.path << "\n";
  }
  std::cout << report.created() << " files created, " << report.files.size() - report.created()
            << " kept, in " << report.elapsed.count() << " ms (" << to_string(config.flavor) << ", "
            << config.key_algorithm << ")\n";
  return 0;
}

}  // namespace kubeca::cli
