#include "http_support.h"

#include <openssl/x509.h>

#include <boost/asio/buffer.hpp>
#include <cctype>
#include <stdexcept>

namespace kubeca::http {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;

bool valid_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xc2 && c <= 0xdf) {
      n = 1, cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2, cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;
    for (size_t k = 1; k <= n; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3f);
    }
    if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (n == 3 && (cp < 0x10000 || cp > 0x10ffff))) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

std::optional<std::string> decode_path(std::string_view target) {
  const std::string_view raw = target.substr(0, target.find('?'));
  if (raw.empty() || raw.front() != '/') return std::nullopt;
  std::string out;
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '%') {
      out += raw[i];
      continue;
    }
    if (i + 2 >= raw.size() || !std::isxdigit(static_cast<unsigned char>(raw[i + 1])) ||
        !std::isxdigit(static_cast<unsigned char>(raw[i + 2]))) {
      return std::nullopt;
    }
    out += static_cast<char>(std::stoi(std::string(raw.substr(i + 1, 2)), nullptr, 16));
    i += 2;
  }
  if (out.find('\0') != std::string::npos || !valid_utf8(out)) return std::nullopt;
  return out;
}

std::vector<uint8_t> peer_der(SSL* ssl) {
  X509* x = SSL_get1_peer_certificate(ssl);
  if (!x) return {};
  unsigned char* der = nullptr;
  const int len = i2d_X509(x, &der);
  X509_free(x);
  if (len <= 0) return {};
  std::vector<uint8_t> out(der, der + len);
  OPENSSL_free(der);
  return out;
}

std::shared_ptr<ssl::context> make_tls(const std::string& cert_pem, const std::string& key_pem) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::single_dh_use);
  // Idle connections give their read and write buffers back: 1024 of them stay small.
  SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS);
  boost::system::error_code ec;
  ctx->use_certificate_chain(net::buffer(cert_pem), ec);
  if (!ec) ctx->use_private_key(net::buffer(key_pem), ssl::context::pem, ec);
  if (ec || SSL_CTX_check_private_key(native) != 1) {
    throw std::runtime_error("cannot set up TLS with the signer certificate");
  }
  // Ask for a client certificate but let the handler judge it: a JSON 401 says more
  // than a failed handshake.
  SSL_CTX_set_verify(native, SSL_VERIFY_PEER, [](int, X509_STORE_CTX*) { return 1; });
  // No session resumption: nodes and the CLI open one connection per process, so tickets
  // (two made and sent per TLS 1.3 handshake) and the session cache were pure cost.
  SSL_CTX_set_num_tickets(native, 0);
  SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_OFF);
  static const unsigned char sid[] = "kubeca";
  SSL_CTX_set_session_id_context(native, sid, sizeof sid - 1);
  return ctx;
}

std::string listen_error(const boost::system::error_code& ec) {
  namespace errc = boost::system::errc;
  if (ec == errc::address_in_use) return "address in use";
  if (ec == errc::address_not_available) return "not an address of this host";
  if (ec == errc::permission_denied) return "permission denied";
  return ec.message();
}

}  // namespace kubeca::http
