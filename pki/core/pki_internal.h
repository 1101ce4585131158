// What pki.cc, listing.cc and renew_offline.cc share about a PKI folder.
#pragma once

#include <botan/pk_keys.h>

#include <filesystem>
#include <string>
#include <vector>

namespace kubeca::detail {

// A key kubeca did not make meets the service's weak-key policy before a new certificate
// names it: a file dropped in the folder is input like a CSR. InputError naming `path`.
void check_key_file(const std::filesystem::path& path, const Botan::Public_Key& key,
                    const std::string& fix);

// Regular files under dir (symlinks followed), sorted, skipping hidden ones and hidden
// folders such as the versions behind a renewed pair.
std::vector<std::filesystem::path> visible_files(const std::filesystem::path& dir);

}  // namespace kubeca::detail
