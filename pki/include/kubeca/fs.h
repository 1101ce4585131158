// Files the way a CA must write them: atomic, durable, private when secret.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace kubeca {

// Writes through a temporary file in the same folder, fsync, rename, fsync of the folder:
// a crash leaves the old file or the new one, never a mix.
void write_file_atomic(const std::filesystem::path& path, const std::string& data,
                       unsigned mode = 0644);
struct FileWrite {
  std::filesystem::path path;
  std::string data;
  unsigned mode = 0644;
};
// Writes many files, each atomically as above, for the price of one flush: every file goes to
// a temporary name, one syncfs() makes them all durable, then they are renamed into place a
// group at a time, the folders synced after each group. A crash leaves each file old or new,
// and no file of a group in place unless every earlier group is.
void write_files_atomic(const std::vector<std::vector<FileWrite>>& groups);

std::string read_file(const std::filesystem::path& path);
bool file_exists(const std::filesystem::path& path);

}  // namespace kubeca
