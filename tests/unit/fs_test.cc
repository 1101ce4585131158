#include "kubeca/fs.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "kubeca/config.h"
#include "test_support.h"

namespace kubeca {
namespace {

namespace fs = std::filesystem;

class FsTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = test::make_temp_dir("kubeca-fs-test"); }
  void TearDown() override { fs::remove_all(dir_); }

  // Every name in the folder, dot files (temporaries) included.
  std::set<std::string> names(const fs::path& d) const {
    std::set<std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(d)) {
      out.insert(e.path().lexically_relative(dir_).string());  // a symlink as itself
    }
    return out;
  }

  static unsigned mode_of(const fs::path& p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
    return st.st_mode & 0777;
  }

  fs::path dir_;
};

TEST_F(FsTest, WriteFileAtomicReplacesWholeFileWithItsMode) {
  write_file_atomic(dir_ / "a-key.pem", "old", 0600);
  write_file_atomic(dir_ / "a-key.pem", "new contents", 0600);
  EXPECT_EQ(read_file(dir_ / "a-key.pem"), "new contents");
  EXPECT_EQ(mode_of(dir_ / "a-key.pem"), 0600u);
  EXPECT_EQ(names(dir_), (std::set<std::string>{"a-key.pem"}));
}

// The output rule: a FIFO, a socket, a folder or a symlink to one is refused and stays.
TEST_F(FsTest, WriteFileAtomicRefusesWhatIsNotARegularFile) {
  const fs::path fifo = dir_ / "fifo", link = dir_ / "link", folder = dir_ / "folder";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  fs::create_symlink(fifo, link);
  fs::create_directory(folder);
  for (const auto& p : {fifo, link, folder}) {
    EXPECT_THROW(write_file_atomic(p, "data", 0644), InputError) << p;
    EXPECT_THROW(write_output("--out", p, "data", 0644, true), InputError) << p;
  }
  EXPECT_EQ(fs::status(fifo).type(), fs::file_type::fifo);
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_TRUE(fs::is_directory(folder));
  EXPECT_EQ(names(dir_), (std::set<std::string>{"fifo", "link", "folder"}));
  EXPECT_THROW(check_output_dir("--dir", fifo), InputError);
  EXPECT_NO_THROW(check_output_dir("--dir", folder));
  EXPECT_NO_THROW(check_output_dir("--dir", dir_ / "absent"));
}

TEST_F(FsTest, WriteOutputReplacesOtherContentOnlyWithForce) {
  const fs::path p = dir_ / "admin.conf";
  EXPECT_TRUE(write_output("--out", p, "one", 0600, false));
  EXPECT_EQ(mode_of(p), 0600u);
  EXPECT_FALSE(write_output("--out", p, "one", 0600, false));  // the same: left as it is
  EXPECT_THROW(write_output("--out", p, "two", 0600, false), InputError);
  EXPECT_EQ(read_file(p), "one");
  EXPECT_TRUE(write_output("--out", p, "two", 0600, true));
  EXPECT_EQ(read_file(p), "two");
  EXPECT_TRUE(is_stdout("-"));
  EXPECT_FALSE(is_stdout("./-"));
}

TEST_F(FsTest, WriteFilesAtomicWritesEveryGroupWithModes) {
  std::vector<std::vector<FileWrite>> groups(2);
  for (int i = 0; i < 50; ++i) {
    groups[0].push_back(
        {dir_ / ("n" + std::to_string(i) + "-key.pem"), "key " + std::to_string(i), 0600});
    groups[1].push_back(
        {dir_ / ("n" + std::to_string(i) + ".pem"), "cert " + std::to_string(i), 0644});
  }
  groups[1].push_back({dir_ / "etcd" / "ca.pem", "etcd ca", 0644});  // a folder made on the way
  write_files_atomic(groups);

  for (int i = 0; i < 50; ++i) {
    const fs::path key = dir_ / ("n" + std::to_string(i) + "-key.pem");
    const fs::path cert = dir_ / ("n" + std::to_string(i) + ".pem");
    EXPECT_EQ(read_file(key), "key " + std::to_string(i));
    EXPECT_EQ(read_file(cert), "cert " + std::to_string(i));
    EXPECT_EQ(mode_of(key), 0600u);
    EXPECT_EQ(mode_of(cert), 0644u);
  }
  EXPECT_EQ(read_file(dir_ / "etcd" / "ca.pem"), "etcd ca");
  EXPECT_EQ(names(dir_).size(), 102u);  // 100 files, etcd/ and etcd/ca.pem: no temporaries
}

TEST_F(FsTest, WriteFilesAtomicReplacesExistingFiles) {
  write_file_atomic(dir_ / "admin.conf", "old", 0600);
  write_files_atomic({{{dir_ / "admin.conf", "new", 0600}}});
  EXPECT_EQ(read_file(dir_ / "admin.conf"), "new");
  EXPECT_EQ(names(dir_), (std::set<std::string>{"admin.conf"}));
}

TEST_F(FsTest, WriteFilesAtomicFailureLeavesNothingBehind) {
  // The second group's file cannot be made (its folder would be under a regular file): the
  // first group's files must not appear either, and no temporary may stay.
  write_file_atomic(dir_ / "blocker", "a file, not a folder", 0644);
  write_file_atomic(dir_ / "ca.pem", "the CA as it was", 0644);
  const std::set<std::string> before = names(dir_);
  std::vector<std::vector<FileWrite>> groups = {
      {{dir_ / "ca-key.pem", "key", 0600}, {dir_ / "ca.pem", "a new CA", 0644}},
      {{dir_ / "blocker" / "x.pem", "cert", 0644}}};
  EXPECT_ANY_THROW(write_files_atomic(groups));
  EXPECT_EQ(names(dir_), before);
  EXPECT_EQ(read_file(dir_ / "ca.pem"), "the CA as it was");
}

TEST_F(FsTest, WriteFilesAtomicClearsTemporariesOfAKilledWriter) {
  write_file_atomic(dir_ / ".ca-key.pem.tmp123456", "from a killed run", 0600);
  write_file_atomic(dir_ / ".w9-key.pem.tmp42", "a worker since dropped from the config", 0600);
  write_file_atomic(dir_ / ".ca-key.pem.tmpx", "not a temporary's name", 0600);
  write_file_atomic(dir_ / "notes.tmp1", "not a dot file", 0600);
  write_files_atomic({{{dir_ / "ca-key.pem", "key", 0600}}});
  EXPECT_EQ(names(dir_), (std::set<std::string>{"ca-key.pem", ".ca-key.pem.tmpx", "notes.tmp1"}));
}

TEST_F(FsTest, FolderLockIsExclusiveAndReleased) {
  const fs::path pki = dir_ / "pki";
  {
    FolderLock first(pki);  // makes the folder
    EXPECT_TRUE(fs::is_directory(pki));
    try {
      FolderLock second(pki);
      ADD_FAILURE() << "a second lock on the same folder was granted";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("another kubeca is writing " + pki.string()),
                std::string::npos)
          << e.what();
    }
  }
  EXPECT_NO_THROW(FolderLock again(pki));
}

TEST_F(FsTest, WriteFilesAtomicOfNothingIsNothing) {
  write_files_atomic({});
  write_files_atomic({{}});
  EXPECT_TRUE(names(dir_).empty());
}

}  // namespace
}  // namespace kubeca
