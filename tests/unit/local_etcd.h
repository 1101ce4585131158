// A real etcd on 127.0.0.1 for tests of the etcd store (Debian's etcd-server).
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>

#include "kubeca/store.h"
#include "test_support.h"

namespace kubeca::test {

// A real etcd on 127.0.0.1 for the whole test binary, started on first use; each test
// keeps its data under a prefix of its own.
class LocalEtcd {
 public:
  static LocalEtcd& get() {
    static LocalEtcd etcd;
    return etcd;
  }
  bool available() const { return pid_ > 0; }
  const std::string& endpoint() const { return endpoint_; }
  ~LocalEtcd() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

 private:
  LocalEtcd() {
    if (std::system("command -v etcd >/dev/null 2>&1") != 0) return;
    const int client = free_port(), peer = free_port();
    endpoint_ = "127.0.0.1:" + std::to_string(client);
    const std::string c = "http://" + endpoint_, p = "http://127.0.0.1:" + std::to_string(peer);
    const std::string data = (dir_ / "etcd").string(), log = (dir_ / "log").string();
    pid_ = ::fork();
    if (pid_ == 0) {
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::execlp("etcd", "etcd", "--data-dir", data.c_str(), "--listen-client-urls", c.c_str(),
               "--advertise-client-urls", c.c_str(), "--listen-peer-urls", p.c_str(),
               "--initial-advertise-peer-urls", p.c_str(), "--initial-cluster",
               ("default=" + p).c_str(), nullptr);
      ::_exit(127);
    }
    auto probe = open_store("etcd+http://" + endpoint_ + "?prefix=/probe/");
    for (int i = 0; i < 100 && !probe->healthy(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (!probe->healthy()) throw std::runtime_error("etcd did not start; see " + log);
  }
  static int free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
  }
  std::filesystem::path dir_ = make_temp_dir("kubeca-etcd");
  pid_t pid_ = -1;
  std::string endpoint_;
};

}  // namespace kubeca::test
