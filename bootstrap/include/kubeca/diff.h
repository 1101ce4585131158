// Line diffs for `kubeca bootstrap --dry-run`: what would change, as `diff -u` shows it.
#pragma once

#include <string>

namespace kubeca {

// A unified diff of `before` and `after` with 3 lines of context and ---/+++ headers;
// empty when they are equal.
std::string unified_diff(const std::string& before, const std::string& after,
                         const std::string& before_name, const std::string& after_name);

}  // namespace kubeca
