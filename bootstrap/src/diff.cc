#include "kubeca/diff.h"

#include <algorithm>
#include <sstream>
#include <vector>

namespace kubeca {

namespace {

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string line;
  while (std::getline(ss, line)) out.push_back(line);
  return out;
}

struct Op {
  char kind;    // ' ', '-', '+'
  size_t a, b;  // line numbers (0-based) in before / after
};

}  // namespace

std::string unified_diff(const std::string& before, const std::string& after,
                         const std::string& before_name, const std::string& after_name) {
  if (before == after) return "";
  const auto a = lines_of(before), b = lines_of(after);
  // Host files are small (hundreds of lines): the quadratic LCS table is fine.
  std::vector<std::vector<unsigned>> lcs(a.size() + 1, std::vector<unsigned>(b.size() + 1, 0));
  for (size_t i = a.size(); i-- > 0;) {
    for (size_t j = b.size(); j-- > 0;) {
      lcs[i][j] = a[i] == b[j] ? lcs[i + 1][j + 1] + 1 : std::max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  std::vector<Op> ops;
  size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    if (i < a.size() && j < b.size() && a[i] == b[j]) {
      ops.push_back({' ', i++, j++});
    } else if (i < a.size() && (j == b.size() || lcs[i + 1][j] >= lcs[i][j + 1])) {
      ops.push_back({'-', i++, j});  // deletions first, as diff -u prints them
    } else {
      ops.push_back({'+', i, j++});
    }
  }
  std::string out = "--- " + before_name + "\n+++ " + after_name + "\n";
  const size_t kContext = 3;
  size_t k = 0, prev_stop = 0;
  while (k < ops.size()) {
    if (ops[k].kind == ' ') {
      ++k;
      continue;
    }
    // A hunk: from kContext lines before this change to kContext after the last change
    // that is no more than 2 * kContext unchanged lines away.
    const size_t start = std::max(prev_stop, k >= kContext ? k - kContext : 0);
    size_t end = k;
    size_t quiet = 0;
    for (size_t m = k; m < ops.size(); ++m) {
      if (ops[m].kind == ' ') {
        if (++quiet > 2 * kContext) break;
      } else {
        quiet = 0;
        end = m;
      }
    }
    const size_t stop = std::min(ops.size(), end + 1 + kContext);
    size_t a_start = ops[start].a, b_start = ops[start].b, a_len = 0, b_len = 0;
    for (size_t m = start; m < stop; ++m) {
      if (ops[m].kind != '+') ++a_len;
      if (ops[m].kind != '-') ++b_len;
    }
    out += "@@ -" + std::to_string(a_len ? a_start + 1 : a_start) + "," + std::to_string(a_len) +
           " +" + std::to_string(b_len ? b_start + 1 : b_start) + "," + std::to_string(b_len) +
           " @@\n";
    for (size_t m = start; m < stop; ++m) {
      const std::string& text = ops[m].kind == '+' ? b[ops[m].b] : a[ops[m].a];
      out += ops[m].kind + text + "\n";
    }
    k = prev_stop = stop;
  }
  return out;
}

}  // namespace kubeca
