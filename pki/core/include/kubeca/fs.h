// Files the way a CA must write them: atomic, durable, private when secret.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace kubeca {

// Writes through a temporary file in the same folder, fsync, rename, fsync of the folder:
// a crash leaves the old file or the new one, never a mix. An existing path that is not a
// regular file is refused (check_output_file), never replaced.
void write_file_atomic(const std::filesystem::path& path, const std::string& data,
                       unsigned mode = 0644);
struct FileWrite {
  std::filesystem::path path;
  std::string data;
  unsigned mode = 0644;
};
// Writes many files, each atomically as above, for the price of one flush: every file goes to
// a temporary name, one syncfs() per file system makes them all durable, then they are
// renamed into place a group at a time, the folders synced after each group. A crash leaves
// each file old or new, and no file of a group in place unless every earlier group is. A
// failure before the renames leaves no file (folders made on the way stay). Temporaries a
// killed writer left in those folders are removed first: hold a FolderLock on them.
// syncfs() flushes the whole file system, other programs' data too, and reports write
// errors from Linux 5.8 on. `on_file` is called after each temporary is written.
void write_files_atomic(const std::vector<std::vector<FileWrite>>& groups,
                        const std::function<void()>& on_file = {});

// Makes `dir` and the parents that are missing, each 0700 whatever the umask: the PKI
// folder and its subfolders (etcd/) hold keys. Folders that exist are left as they are.
void create_private_directories(const std::filesystem::path& dir);

// An exclusive flock() on a folder (made if missing, 0700) for as long as the object lives: one
// kubeca at a time writes a PKI folder. A second one fails at once, naming the folder.
class FolderLock {
 public:
  explicit FolderLock(const std::filesystem::path& dir);
  ~FolderLock();
  FolderLock(const FolderLock&) = delete;
  FolderLock& operator=(const FolderLock&) = delete;

 private:
  int fd_ = -1;
};

// The rule for every path a command writes to, in one place:
//  - "-" is standard output (is_stdout);
//  - an existing path that is not a regular file (a device, a FIFO, a socket, a folder, or a
//    symlink to one) is refused: a rename over it would replace /dev/null with a file;
//  - an existing regular file with other content is refused unless `force`; one with the
//    same content is left as it is.
// Refusals are InputError (exit 2) naming `flag` and the path, raised before anything is
// written.
bool is_stdout(const std::filesystem::path& path);
// Refuses an existing path that is not a regular file (symlinks followed).
void check_output_file(const std::string& flag, const std::filesystem::path& path);
// Refuses an existing path that is not a folder.
void check_output_dir(const std::string& flag, const std::filesystem::path& dir);
// check_output_file, then an existing file with other content unless force.
void check_replace(const std::string& flag, const std::filesystem::path& path,
                   const std::string& data, bool force);
// Writes a command's output by the rule above: stdout for "-", else check_replace and
// write_file_atomic. Returns false when the file already held exactly `data`.
bool write_output(const std::string& flag, const std::filesystem::path& path,
                  const std::string& data, unsigned mode, bool force);

std::string read_file(const std::filesystem::path& path);
bool file_exists(const std::filesystem::path& path);

// Writes a certificate and its key so that a crash at any point leaves a matching pair: the
// files become symlinks into a hidden folder of versions (.NAME.pem.d) switched by one rename.
void install_pair(const std::filesystem::path& cert, const std::filesystem::path& key,
                  const std::string& cert_pem, const std::string& key_pem);
// Finishes or discards what an interrupted install_pair left. Returns true if it did anything.
bool recover_pair(const std::filesystem::path& cert, const std::filesystem::path& key);

}  // namespace kubeca
