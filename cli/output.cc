#include "output.h"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <ctime>
#include <iostream>

#include "common.h"

namespace kubeca::cli {

void add_output_options(po::options_description& desc) {
  desc.add_options()("output,o", po::value<std::string>(), "json, yaml or table (the default)")(
      "json", "the same as -o json");
}

Format output_format(const po::variables_map& vm) {
  const bool json = vm.count("json") > 0;
  if (!vm.count("output")) return json ? Format::kJson : Format::kTable;
  const std::string o = vm["output"].as<std::string>();
  Format f;
  if (o == "json") {
    f = Format::kJson;
  } else if (o == "yaml") {
    f = Format::kYaml;
  } else if (o == "table") {
    f = Format::kTable;
  } else {
    throw UsageError("-o: unknown output format \"" + o + "\" (json, yaml or table)");
  }
  if (json && f != Format::kJson) throw UsageError("--json and -o " + o + " disagree");
  return f;
}

namespace {

// A string YAML would read as something else (a number, a date, true, null) is quoted, as
// kubectl quotes its timestamps.
bool needs_quotes(const std::string& s) {
  if (s.empty()) return true;
  const unsigned char c = static_cast<unsigned char>(s[0]);
  if (std::isdigit(c) || c == '-' || c == '+' || c == '.') return true;
  std::string lower;
  for (unsigned char ch : s) lower += static_cast<char>(std::tolower(ch));
  for (const char* w : {"true", "false", "yes", "no", "on", "off", "y", "n", "null", "~"}) {
    if (lower == w) return true;
  }
  return false;
}

void emit(YAML::Emitter& e, const nlohmann::json& j) {
  if (j.is_object()) {
    e << YAML::BeginMap;
    for (const auto& [k, v] : j.items()) {
      e << YAML::Key << k << YAML::Value;
      emit(e, v);
    }
    e << YAML::EndMap;
  } else if (j.is_array()) {
    e << YAML::BeginSeq;
    for (const auto& v : j) emit(e, v);
    e << YAML::EndSeq;
  } else if (j.is_string()) {
    const std::string s = j.get<std::string>();
    if (needs_quotes(s)) e << YAML::DoubleQuoted;
    e << s;
  } else if (j.is_null()) {
    e << YAML::Null;
  } else {
    e << j.dump();  // numbers and booleans, as JSON writes them
  }
}

}  // namespace

std::string to_yaml(const nlohmann::json& j) {
  YAML::Emitter e;
  emit(e, j);
  return std::string(e.c_str()) + "\n";
}

void print_data(const nlohmann::json& j, Format format) {
  if (format == Format::kYaml) {
    std::cout << to_yaml(j);
  } else {
    print_json(j);
  }
}

std::string table_time(std::chrono::system_clock::time_point t) {
  const std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%b %d, %Y %H:%M UTC", &tm);
  return buf;
}

std::string table_time(const std::string& rfc3339) {
  std::tm tm{};
  const char* end = strptime(rfc3339.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  if (!end || *end) return rfc3339;
  return table_time(std::chrono::system_clock::from_time_t(timegm(&tm)));
}

}  // namespace kubeca::cli
