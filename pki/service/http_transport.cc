#include "http_transport.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <iostream>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "http_support.h"

namespace kubeca::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;
using Steady = std::chrono::steady_clock;

namespace {

// Where a connection is; read from other threads to pick one to shed.
enum class Phase : int { kHandshake, kFresh, kReading, kWorking, kWriting, kIdle, kClosing };

}  // namespace

class Connection;

struct Transport::Impl : std::enable_shared_from_this<Transport::Impl> {
  TransportOptions options;
  Routes routes;
  mutable std::mutex mu;  // guards what follows, up to the event loop
  std::shared_ptr<ssl::context> tls;
  std::map<uint64_t, std::weak_ptr<Connection>> conns;
  uint64_t next_id = 0;
  std::atomic<bool> stopping{false};
  std::atomic<bool> running{false};
  net::io_context ioc;
  tcp::acceptor acceptor{net::make_strand(ioc)};
  net::steady_timer retry{acceptor.get_executor()};
  std::unique_ptr<net::thread_pool> pool;
  std::vector<std::thread> threads;

  Impl(const TransportOptions& o, Routes r) : options(o), routes(std::move(r)) {}

  void accept();
  void admit(tcp::socket socket);
  void shed_one();  // with mu held
  // Closed connections leave the table here, with mu held: a destructor must not lock mu,
  // since the last reference may be dropped while it is held.
  void forget_closed() {
    for (auto it = conns.begin(); it != conns.end();) {
      it = it->second.expired() ? conns.erase(it) : std::next(it);
    }
  }
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(std::shared_ptr<Transport::Impl> t, tcp::socket socket,
             std::shared_ptr<ssl::context> tls)
      : t_(std::move(t)),
        o_(t_->options),
        tls_(std::move(tls)),
        ex_(socket.get_executor()),
        socket_(std::move(socket)),
        first_byte_(ex_),
        buffer_(o_.max_header + o_.max_body + 16 * 1024) {
    boost::system::error_code ec;
    const auto ep = socket_.remote_endpoint(ec);
    if (!ec) {
      const auto a = ep.address();
      remote_ = a.is_v6() && a.to_v6().is_v4_mapped()
                    ? net::ip::make_address_v4(net::ip::v4_mapped, a.to_v6()).to_string()
                    : a.to_string();
    }
  }

  Phase phase() const { return phase_.load(); }
  Steady::time_point since() const { return Steady::time_point(Steady::duration(since_.load())); }

  void run() {
    net::dispatch(ex_, [self = shared_from_this()] { self->await_hello(); });
  }

  // Closes the connection unless it holds a request being answered. `reading`: also when a
  // request is only partly read (to shed it); otherwise only when nothing is pending (to stop).
  void close_from_outside(bool reading) {
    net::post(ex_, [self = shared_from_this(), reading] {
      const Phase p = self->phase();
      const bool partial = p == Phase::kReading;
      if (p == Phase::kHandshake || p == Phase::kFresh || p == Phase::kIdle ||
          p == Phase::kClosing || (partial && reading)) {
        self->close();
      }
    });
  }

 private:
  beast::tcp_stream& lowest() { return beast::get_lowest_layer(*stream_); }
  void close() {
    beast::error_code ignored;
    if (stream_) return lowest().close();
    first_byte_.cancel();
    socket_.close(ignored);
  }
  void enter(Phase p, Steady::time_point at = Steady::now()) {
    since_ = at.time_since_epoch().count();
    phase_ = p;
  }
  bool stopping() const { return t_->stopping; }

  // A silent connection costs a socket and a timer: the TLS state (some 80 KiB with
  // OpenSSL 3 and Asio's buffers) is made when the client's hello arrives.
  void await_hello() {
    accepted_ = Steady::now();
    enter(Phase::kHandshake, accepted_);
    first_byte_.expires_after(std::min(o_.handshake_timeout, o_.request_deadline));
    first_byte_.async_wait([self = shared_from_this()](beast::error_code ec) {
      beast::error_code ignored;
      if (!ec && !self->stream_) self->socket_.close(ignored);
    });
    socket_.async_wait(tcp::socket::wait_read, [self = shared_from_this()](beast::error_code ec) {
      self->first_byte_.cancel();
      if (ec || !self->socket_.is_open()) return;
      self->stream_.emplace(std::move(self->socket_), *self->tls_);
      self->handshake();
    });
  }

  void handshake() {
    lowest().expires_at(accepted_ + std::min(o_.handshake_timeout, o_.request_deadline));
    stream_->async_handshake(
        ssl::stream_base::server, [self = shared_from_this()](beast::error_code ec) {
          if (ec) return;
          self->peer_ = peer_der(self->stream_->native_handle());
          // The first request's deadline counts from the accept.
          self->enter(Phase::kFresh, self->accepted_);
          self->lowest().expires_at(self->accepted_ + self->o_.request_deadline);
          self->await_request(true);
        });
  }

  // Waits for the first byte of the next request: a keep-alive connection is idle until then.
  void await_request(bool first) {
    if (stopping()) return shutdown();
    if (!first) {
      enter(Phase::kIdle);
      lowest().expires_after(o_.keep_alive_timeout);
    }
    if (buffer_.size() > 0) return read_header(first);
    stream_->async_read_some(buffer_.prepare(4096),
                             [self = shared_from_this(), first](beast::error_code ec, size_t n) {
                               if (ec) return;
                               self->buffer_.commit(n);
                               self->read_header(first);
                             });
  }

  void read_header(bool first) {
    if (first) {
      enter(Phase::kReading, accepted_);
    } else {
      enter(Phase::kReading);
      lowest().expires_after(o_.request_deadline);
    }
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(o_.max_header));
    // The routes refuse a large Content-Length first, with a JSON 413.
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    bhttp::async_read_header(
        *stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
  }

  void on_header(beast::error_code ec) {
    if (ec) {
      // A timeout or a closed connection ends it; malformed HTTP gets a 400 first.
      if (ec.category() != bhttp::make_error_code(bhttp::error::bad_target).category() ||
          ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message) {
        return;
      }
      const bool big = ec == bhttp::error::header_limit;
      return respond(t_->routes.refuse(big ? 431 : 400, big ? "the request headers are too large"
                                                            : "the request is not valid HTTP/1.1"),
                     true);
    }
    const auto& msg = parser_->get();
    req_ = Request{};
    req_.method = std::string(msg.method_string());
    req_.target = std::string(msg.target());
    if (auto path = decode_path({msg.target().data(), msg.target().size()})) {
      req_.path = std::move(*path);
    } else {
      req_.bad_path = true;
    }
    for (const auto& f : msg) {
      std::string name(f.name_string());
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      auto [it, fresh] = req_.headers.emplace(name, std::string(f.value()));
      if (!fresh) it->second += ", " + std::string(f.value());
    }
    req_.remote = remote_;
    req_.peer_certificate = peer_;
    version_ = msg.version();
    keep_alive_ = msg.keep_alive();
    if (auto refusal = t_->routes.check(req_)) {
      return respond(std::move(*refusal), !parser_->is_done());
    }
    if (parser_->is_done()) return dispatch();
    parser_->body_limit(o_.max_body);
    auto read_body = [self = shared_from_this()] {
      bhttp::async_read(
          *self->stream_, self->buffer_, *self->parser_, [self](beast::error_code ec, size_t) {
            if (ec == bhttp::error::body_limit) {
              return self->respond(self->t_->routes.refuse(413, "the body is too large"), true);
            }
            if (ec) return;
            self->req_.body = std::move(self->parser_->get().body());
            self->dispatch();
          });
    };
    if (!beast::iequals(msg[bhttp::field::expect], "100-continue")) return read_body();
    // curl waits a second for this before it sends a body of more than 1 KiB.
    continue_ = bhttp::response<bhttp::empty_body>{bhttp::status::continue_, version_};
    bhttp::async_write(*stream_, continue_, [read_body](beast::error_code ec, size_t) {
      if (!ec) read_body();
    });
  }

  void dispatch() {
    enter(Phase::kWorking);
    lowest().expires_never();
    auto answer = [](Transport::Impl& t, const Request& req) {
      try {
        return t.routes.handle(req);
      } catch (const std::exception& e) {
        std::cerr << "kubeca: " << e.what() << "\n";
        return t.routes.refuse(500, "internal error");
      }
    };
    if (t_->routes.cheap(req_)) return respond(answer(*t_, req_), false);
    // The work guard keeps the event loop alive until the answer is written.
    net::post(*t_->pool,
              [self = shared_from_this(), answer, guard = net::make_work_guard(t_->ioc)]() mutable {
                Response r = answer(*self->t_, self->req_);
                net::post(self->ex_, [self, r = std::move(r)]() mutable {
                  self->respond(std::move(r), false);
                });
              });
  }

  void respond(Response r, bool close) {
    enter(Phase::kWriting);
    res_ = {};
    res_.result(r.status);
    res_.version(version_ == 10 ? 10 : 11);
    res_.set(bhttp::field::content_type, r.content_type);
    for (const auto& [name, value] : r.headers) res_.set(name, value);
    res_.body() = std::move(r.body);
    res_.keep_alive(keep_alive_ && !close && ++served_ < o_.keep_alive_max && !stopping());
    res_.prepare_payload();
    lowest().expires_after(o_.write_timeout);
    bhttp::async_write(*stream_, res_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return;
      if (!self->res_.keep_alive()) return self->shutdown();
      self->await_request(false);
    });
  }

  void shutdown() {
    enter(Phase::kClosing);
    lowest().expires_after(std::chrono::seconds(1));
    stream_->async_shutdown([self = shared_from_this()](beast::error_code) {
      beast::error_code ignored;
      self->lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
      self->lowest().close();
    });
  }

  std::shared_ptr<Transport::Impl> t_;
  const TransportOptions& o_;
  std::shared_ptr<ssl::context> tls_;  // outlives the stream: it may be swapped meanwhile
  net::any_io_executor ex_;            // the connection's strand
  tcp::socket socket_;                 // until the client's first byte; then in stream_
  net::steady_timer first_byte_;
  std::optional<beast::ssl_stream<beast::tcp_stream>> stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  bhttp::response<bhttp::empty_body> continue_;
  bhttp::response<bhttp::string_body> res_;
  Request req_;
  std::string remote_;
  std::vector<uint8_t> peer_;
  unsigned version_ = 11;
  bool keep_alive_ = true;
  size_t served_ = 0;
  Steady::time_point accepted_;
  std::atomic<Phase> phase_{Phase::kHandshake};
  std::atomic<Steady::rep> since_{0};
};

void Transport::Impl::accept() {
  acceptor.async_accept(net::make_strand(ioc),
                        [self = shared_from_this()](beast::error_code ec, tcp::socket s) {
                          if (ec == net::error::operation_aborted || !self->acceptor.is_open())
                            return;
                          if (ec) {
                            // Out of descriptors: make room, and try again shortly instead of
                            // spinning.
                            {
                              std::lock_guard<std::mutex> lock(self->mu);
                              if (self->stopping) return;
                              self->forget_closed();
                              self->shed_one();
                            }
                            self->retry.expires_after(std::chrono::milliseconds(50));
                            self->retry.async_wait([self](beast::error_code e) {
                              if (!e) self->accept();
                            });
                            return;
                          }
                          self->admit(std::move(s));
                          self->accept();
                        });
}

void Transport::Impl::admit(tcp::socket socket) {
  beast::error_code ec;
  // Answers go out as two writes (headers, body): without TCP_NODELAY the second waits
  // for the client's delayed ACK, about 40 ms on Linux, on every keep-alive request.
  socket.set_option(tcp::no_delay(true), ec);
  std::shared_ptr<Connection> c;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (stopping) return;
    if (conns.size() >= options.max_connections) forget_closed();
    if (conns.size() >= options.max_connections) shed_one();
    const uint64_t id = next_id++;
    c = std::make_shared<Connection>(shared_from_this(), std::move(socket), tls);
    conns.emplace(id, c);
  }
  c->run();
}

// At the cap: the connection idle the longest goes first, else the one that has taken the
// longest over an unfinished handshake or request. One being answered is never shed.
void Transport::Impl::shed_one() {
  std::shared_ptr<Connection> idle, slow;
  for (const auto& [id, weak] : conns) {
    auto c = weak.lock();
    if (!c) continue;
    const Phase p = c->phase();
    if (p == Phase::kIdle || p == Phase::kClosing) {
      if (!idle || c->since() < idle->since()) idle = c;
    } else if (p == Phase::kHandshake || p == Phase::kFresh || p == Phase::kReading) {
      if (!slow || c->since() < slow->since()) slow = c;
    }
  }
  if (auto victim = idle ? idle : slow) {
    conns.erase(std::find_if(conns.begin(), conns.end(),
                             [&](const auto& e) { return e.second.lock() == victim; }));
    victim->close_from_outside(true);
  }
}

Transport::Transport(const TransportOptions& options, Routes routes)
    : impl_(std::make_shared<Impl>(options, std::move(routes))) {}

Transport::~Transport() {
  stop();
  wait();
}

void Transport::set_credentials(const std::string& cert_pem, const std::string& key_pem) {
  auto ctx = make_tls(cert_pem, key_pem);
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->tls = std::move(ctx);
}

int Transport::listen() {
  Impl& m = *impl_;
  const std::string where = m.options.host + ":" + std::to_string(m.options.port);
  beast::error_code ec;
  auto address = net::ip::make_address(m.options.host, ec);
  if (ec) {
    tcp::resolver resolver(m.ioc);
    auto results = resolver.resolve(m.options.host, std::to_string(m.options.port), ec);
    if (ec || results.empty()) {
      throw std::runtime_error("cannot listen on " + where + ": no such address");
    }
    address = results.begin()->endpoint().address();
  }
  const tcp::endpoint endpoint(address, static_cast<uint16_t>(m.options.port));
  // Connections are descriptors: allow as many as the hard limit does.
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
  auto fail = [&](const beast::error_code& e) {
    throw std::runtime_error("cannot listen on " + where + ": " + listen_error(e));
  };
  m.acceptor.open(endpoint.protocol(), ec);
  if (ec) fail(ec);
  // SO_REUSEADDR lets a restart bind past TIME_WAIT; without SO_REUSEPORT, a second server
  // on a held port fails here instead of taking half the handshakes.
  m.acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) m.acceptor.bind(endpoint, ec);
  if (ec) fail(ec);
  m.acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) fail(ec);
  return m.acceptor.local_endpoint().port();
}

void Transport::start() {
  Impl& m = *impl_;
  {
    std::lock_guard<std::mutex> lock(m.mu);
    if (!m.tls) throw std::logic_error("Transport::start before set_credentials");
  }
  m.pool = std::make_unique<net::thread_pool>(std::max<size_t>(1, m.options.workers));
  m.accept();
  m.running = true;
  for (size_t i = 0; i < std::max<size_t>(1, m.options.io_threads); ++i) {
    m.threads.emplace_back([&m] { m.ioc.run(); });
  }
}

void Transport::stop() {
  Impl& m = *impl_;
  std::vector<std::shared_ptr<Connection>> open;
  {
    std::lock_guard<std::mutex> lock(m.mu);
    if (m.stopping) return;
    m.stopping = true;
    for (const auto& [id, weak] : m.conns) {
      if (auto c = weak.lock()) open.push_back(std::move(c));
    }
  }
  m.running = false;
  net::post(m.acceptor.get_executor(), [&m] {
    beast::error_code ec;
    m.acceptor.close(ec);
    m.retry.cancel();
  });
  for (auto& c : open) c->close_from_outside(false);
}

void Transport::wait() {
  Impl& m = *impl_;
  for (auto& t : m.threads) {
    if (t.joinable()) t.join();
  }
  if (m.pool) m.pool->join();
}

bool Transport::running() const { return impl_->running; }

size_t Transport::connections() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return std::count_if(impl_->conns.begin(), impl_->conns.end(),
                       [](const auto& e) { return !e.second.expired(); });
}

}  // namespace kubeca::http
