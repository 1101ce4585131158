// The `certs` actions that live in their own files.
#pragma once

#include <string>
#include <vector>

#include "common.h"

namespace kubeca::cli {

// certs renew NAME, with vm parsed by cmd_certs.
int certs_renew(const po::variables_map& vm);
// certs inspect FILE: its own options.
int certs_inspect(const std::vector<std::string>& args);

}  // namespace kubeca::cli
