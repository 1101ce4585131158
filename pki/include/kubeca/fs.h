// Files the way a CA must write them: atomic, durable, private when secret.
#pragma once

#include <filesystem>
#include <string>

namespace kubeca {

// Writes through a temporary file in the same folder, fsync, rename, fsync of the folder:
// a crash leaves the old file or the new one, never a mix.
void write_file_atomic(const std::filesystem::path& path, const std::string& data,
                       unsigned mode = 0644);
std::string read_file(const std::filesystem::path& path);
bool file_exists(const std::filesystem::path& path);

}  // namespace kubeca
