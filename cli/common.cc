#include "common.h"

#include <unistd.h>

#include <iostream>

namespace kubeca::cli {

bool parse(const std::vector<std::string>& args, const std::string& usage,
           po::options_description& desc, po::variables_map& vm,
           const po::positional_options_description* positional) {
  desc.add_options()("help,h", "show this help");
  try {
    po::command_line_parser parser(args);
    parser.options(desc);
    if (positional) {
      parser.positional(*positional);
    }
    po::store(parser.run(), vm);
    if (vm.count("help")) {
      std::cout << usage << "\n\n" << desc << "\n";
      return false;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    throw UsageError(std::string(e.what()) + " (see --help)");
  }
  return true;
}

bool stdout_is_terminal() { return ::isatty(STDOUT_FILENO) == 1; }
bool stderr_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& r : rows) {
    if (width.size() < r.size()) width.resize(r.size());
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 3, ' ');
    }
    std::cout << line << "\n";
  }
}

void print_json(const nlohmann::json& j) { std::cout << j.dump(2) << "\n"; }

void progress_line(size_t done, size_t total, const std::string& what) {
  if (!stderr_is_terminal()) return;
  std::cerr << "\r\033[K[" << done << "/" << total << "] " << what << std::flush;
  if (done == total) std::cerr << "\r\033[K" << std::flush;
}

Config load_config_from(const po::variables_map& vm) {
  const std::string yaml = vm.count("config") ? vm["config"].as<std::string>() : "";
  const std::string env = vm.count("env-file") ? vm["env-file"].as<std::string>() : "";
  if (yaml.empty() && env.empty()) throw UsageError("--config or --env-file is required");
  return load_config(yaml, env);
}

}  // namespace kubeca::cli
