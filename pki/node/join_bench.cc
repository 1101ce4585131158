#include "kubeca/join_bench.h"

#include <botan/pkcs10.h>
#include <botan/x509self.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "kubeca/ca.h"
#include "kubeca/client.h"
#include "kubeca/config.h"
#include "kubeca/keys.h"
#include "kubeca/net.h"
#include "kubeca/parallel.h"
#include "kubeca/pki.h"
#include "kubeca/token.h"

namespace kubeca {

namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;
using json = nlohmann::json;
using Steady = std::chrono::steady_clock;

constexpr auto kJoinDeadline = std::chrono::seconds(30);

struct Server {
  std::string url, host;
  tcp::resolver::results_type endpoints;  // resolved once, before the clock starts
};

struct Node {
  std::string name, ip, token, body;
  std::unique_ptr<Botan::Private_Key> key;
  int status = 0;
  std::string answer;  // the body, or the transport error when status is 0
  double ms = 0;
};

// Runs one asynchronous operation to its end on this thread: the tcp_stream's deadline
// applies, which blocking calls would not honour.
template <class Start>
beast::error_code await(net::io_context& ioc, Start start) {
  beast::error_code result = net::error::would_block;
  start([&result](beast::error_code ec, auto&&...) { result = ec; });
  ioc.restart();
  ioc.run();
  return result;
}

// One join: a fresh TCP connection, a TLS handshake that checks the server against the CA
// and its name, one POST /v1/sign. No retry.
void join_once(ssl::context& tls, const Server& server, Node& node) {
  net::io_context ioc;
  beast::ssl_stream<beast::tcp_stream> stream(ioc, tls);
  SSL* ssl = stream.native_handle();
  beast::error_code ec;
  const auto ip = net::ip::make_address(server.host, ec);
  if (ec) {
    SSL_set_tlsext_host_name(ssl, server.host.c_str());
    SSL_set1_host(ssl, server.host.c_str());
  } else {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), ip.to_string().c_str());
  }
  auto& tcp_layer = beast::get_lowest_layer(stream);
  tcp_layer.expires_after(kJoinDeadline);
  const auto fail = [&](const char* step, const beast::error_code& e) {
    node.status = 0;
    node.answer = std::string(step) + ": " + e.message();
  };
  if ((ec = await(ioc, [&](auto h) { tcp_layer.async_connect(server.endpoints, h); }))) {
    return fail("connect", ec);
  }
  tcp_layer.socket().set_option(tcp::no_delay(true), ec);
  if ((ec = await(ioc, [&](auto h) { stream.async_handshake(ssl::stream_base::client, h); }))) {
    return fail("TLS handshake", ec);
  }
  bhttp::request<bhttp::string_body> req{bhttp::verb::post, "/v1/sign", 11};
  req.set(bhttp::field::host, server.host);
  req.set(bhttp::field::authorization, "Bearer " + node.token);
  req.set(bhttp::field::content_type, "application/json");
  req.set(bhttp::field::connection, "close");
  req.body() = node.body;
  req.prepare_payload();
  if ((ec = await(ioc, [&](auto h) { bhttp::async_write(stream, req, h); }))) {
    return fail("sending", ec);
  }
  beast::flat_buffer buffer;
  bhttp::response<bhttp::string_body> res;
  if ((ec = await(ioc, [&](auto h) { bhttp::async_read(stream, buffer, res, h); }))) {
    return fail("reading the answer", ec);
  }
  node.status = static_cast<int>(res.result_int());
  node.answer = std::move(res.body());
  tcp_layer.socket().close(ec);
}

std::string run_id() {
  static const char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string id;
  for (int i = 0; i < 6; ++i) id += kAlphabet[thread_rng().next_byte() % 36];
  return id;
}

// Keys, CSRs and tokens for every node, before the clock starts.
std::vector<Node> prepare(const JoinBenchOptions& o) {
  const auto log = [&](const std::string& s) {
    if (o.log) o.log(s);
  };
  const auto algorithm = parse_key_algorithm(o.key_algorithm);
  if (!algorithm) throw InputError("--key-algorithm: unknown \"" + o.key_algorithm + "\"");
  std::vector<Node> nodes(o.nodes);
  const std::string id = run_id();
  log("making " + std::to_string(o.nodes) + " " + o.key_algorithm + " keys and CSRs");
  auto keys = generate_keys(*algorithm, o.nodes);
  parallel_for(o.nodes, cpu_threads(), [&](size_t i) {
    Node& n = nodes[i];
    n.name = "bench-" + id + "-" + std::to_string(i);
    // A kubelet certificate names its node's address: 10.0.0.1 onwards, one per node.
    const size_t a = i + 1;
    n.ip = "10." + std::to_string(a >> 16 & 255) + "." + std::to_string(a >> 8 & 255) + "." +
           std::to_string(a & 255);
    n.key = std::move(keys[i]);
    Botan::X509_Cert_Options opts;
    opts.common_name = "system:node:" + n.name;
    const auto csr =
        Botan::X509::create_cert_req(opts, *n.key, signature_hash(*n.key), thread_rng());
    n.body = json{{"csr", csr.PEM_encode()}, {"profile", "kubelet"}}.dump();
  });
  log("creating " + std::to_string(o.nodes) + " single-use tokens" +
      (o.store ? " in the store" : " over the admin API"));
  // A few connections in parallel: token creation is not what is measured.
  const unsigned threads = static_cast<unsigned>(std::min<size_t>(8, o.nodes));
  std::atomic<size_t> next{0};
  parallel_for(threads, threads, [&](size_t t) {
    std::unique_ptr<ApiClient> api;
    if (!o.store) {
      api = std::make_unique<ApiClient>(o.servers[t % o.servers.size()], o.ca_pem, o.admin_cert_pem,
                                        o.admin_key_pem);
    }
    for (size_t i; (i = next++) < o.nodes;) {
      Node& n = nodes[i];
      if (o.store) {
        TokenRequest r;
        r.node = n.name;
        r.ips = {n.ip};
        n.token = create_token(*o.store, r, unix_now()).first;
        continue;
      }
      const HttpResult r = with_retries(
          [&] {
            return api->post("/v1/tokens",
                             json{{"node", n.name}, {"ips", {n.ip}}, {"uses", 1}, {"ttl", "1h"}});
          },
          4, std::chrono::milliseconds(2000));
      if (r.status != 201) throw std::runtime_error("creating a token: " + r.describe());
      n.token = r.json().value("token", "");
    }
  });
  return nodes;
}

// Every node at once, `concurrency` at a time; the latencies, sorted.
std::vector<double> join_all(const JoinBenchOptions& o, std::vector<Node>& nodes, double& seconds) {
  ssl::context tls(ssl::context::tls_client);
  tls.set_verify_mode(ssl::verify_peer);
  tls.add_certificate_authority(net::buffer(o.ca_pem));
  std::vector<Server> servers;
  for (const auto& url : o.servers) {
    const auto parts = parse_url(url);
    if (!parts) throw InputError("--server: " + url + " is not a URL");
    net::io_context ioc;
    tcp::resolver resolver(ioc);
    beast::error_code ec;
    Server s{url, parts->host, {}};
    s.endpoints = resolver.resolve(parts->host, parts->port.empty() ? "443" : parts->port, ec);
    if (ec) throw std::runtime_error("resolving " + url + ": " + ec.message());
    servers.push_back(std::move(s));
  }
  std::mutex mu;
  std::condition_variable cv;
  bool go = false;
  std::atomic<size_t> next{0};
  std::vector<std::thread> threads;
  for (size_t t = 0; t < std::min(o.concurrency, nodes.size()); ++t) {
    threads.emplace_back([&] {
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return go; });
      }
      for (size_t i; (i = next++) < nodes.size();) {
        const auto start = Steady::now();
        join_once(tls, servers[i % servers.size()], nodes[i]);
        nodes[i].ms = std::chrono::duration<double, std::milli>(Steady::now() - start).count();
      }
    });
  }
  const auto start = Steady::now();
  {
    std::lock_guard<std::mutex> lock(mu);
    go = true;
  }
  cv.notify_all();
  for (auto& t : threads) t.join();
  seconds = std::chrono::duration<double>(Steady::now() - start).count();
  std::vector<double> ms;
  for (const auto& n : nodes) ms.push_back(n.ms);
  std::sort(ms.begin(), ms.end());
  return ms;
}

// The answer's certificate chains to the CA, names the node and holds its key.
std::string check_answer(const Node& n, const Botan::X509_Certificate& ca,
                         const Botan::Public_Key& ca_key, std::string& serial) {
  const json j = json::parse(n.answer, nullptr, false);
  if (!j.is_object() || !j.contains("certificate") || !j["certificate"].is_string()) {
    return "the answer holds no certificate";
  }
  const auto cert = parse_certificate_pem(j["certificate"].get<std::string>());
  if (cert.issuer_dn() != ca.subject_dn() || !cert.check_signature(ca_key)) {
    return "the certificate does not verify against the CA";
  }
  if (cert.subject_info("X520.CommonName") != std::vector<std::string>{"system:node:" + n.name}) {
    return "the certificate names another subject";
  }
  if (!key_matches(cert, *n.key)) return "the certificate holds another key";
  const auto now = std::chrono::system_clock::now();
  if (now < cert.not_before().to_std_timepoint() || now > cert.not_after().to_std_timepoint()) {
    return "the certificate is not valid now";
  }
  serial = serial_hex(cert);
  return "";
}

}  // namespace

double percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  const double rank = std::ceil(q / 100.0 * static_cast<double>(sorted.size()));
  const size_t i = static_cast<size_t>(std::max(1.0, rank)) - 1;
  return sorted[std::min(i, sorted.size() - 1)];
}

JoinBenchResult run_join_bench(const JoinBenchOptions& o) {
  if (o.servers.empty()) throw InputError("--server: give at least one https:// URL");
  if (o.nodes == 0) throw InputError("--nodes: must be at least 1");
  if (o.concurrency == 0) throw InputError("--concurrency: must be at least 1");
  std::vector<Node> nodes = prepare(o);
  if (o.log) {
    o.log("joining " + std::to_string(o.nodes) + " nodes, " + std::to_string(o.concurrency) +
          " at a time, each over a fresh TLS connection");
  }
  JoinBenchResult r;
  r.nodes = o.nodes;
  const std::vector<double> ms = join_all(o, nodes, r.seconds);
  r.p50_ms = percentile(ms, 50);
  r.p95_ms = percentile(ms, 95);
  r.p99_ms = percentile(ms, 99);
  r.max_ms = ms.back();
  const auto ca = parse_certificate_pem(o.ca_pem);
  std::unique_ptr<Botan::Public_Key> ca_key(ca.subject_public_key());
  std::vector<std::string> why(nodes.size()), serials(nodes.size());
  parallel_for(nodes.size(), cpu_threads(), [&](size_t i) {
    const Node& n = nodes[i];
    if (n.status != 201) {
      why[i] = n.status == 0 ? n.answer
                             : "HTTP " + std::to_string(n.status) + ": " + n.answer.substr(0, 200);
      return;
    }
    try {
      why[i] = check_answer(n, ca, *ca_key, serials[i]);
    } catch (const std::exception& e) {
      why[i] = std::string("the certificate cannot be read: ") + e.what();
    }
  });
  std::set<std::string> unique;
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (nodes[i].status == 201) ++r.successes;
    if (why[i].empty()) {
      ++r.verified;
      unique.insert(serials[i]);
    } else {
      ++r.failure_count;
      if (r.failures.size() < 5) r.failures.push_back("node " + nodes[i].name + ": " + why[i]);
    }
  }
  r.unique_serials = unique.size();
  r.joins_per_second = r.seconds > 0 ? static_cast<double>(r.successes) / r.seconds : 0;
  return r;
}

}  // namespace kubeca
