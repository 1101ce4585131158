// -o json|yaml|table (--output; --json is -o json) for every command that prints data, and
// the two ways a date is shown: RFC 3339 in data, kubeadm's "Jan 02, 2006 15:04 UTC" in tables.
#pragma once

#include <boost/program_options.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

namespace kubeca::cli {

enum class Format { kTable, kJson, kYaml };

// Adds -o/--output and --json to desc.
void add_output_options(boost::program_options::options_description& desc);
// The format asked for; UsageError for an unknown one or --json with another -o.
Format output_format(const boost::program_options::variables_map& vm);
// Prints j as JSON (indented) or YAML; a table is the command's own.
void print_data(const nlohmann::json& j, Format format);
std::string to_yaml(const nlohmann::json& j);

// "Jan 02, 2006 15:04 UTC", as kubeadm's tables.
std::string table_time(std::chrono::system_clock::time_point t);
// The same from RFC 3339 ("2006-01-02T15:04:05Z"), as the service answers; the text as it
// is when it does not parse.
std::string table_time(const std::string& rfc3339);

}  // namespace kubeca::cli
