// Pieces of the HTTPS transport that need no connection: request paths, TLS contexts,
// peer certificates, bind errors (http_transport.cc).
#pragma once

#include <openssl/ssl.h>

#include <boost/asio/ssl/context.hpp>
#include <boost/system/error_code.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kubeca::http {

bool valid_utf8(const std::string& s);
// The path of a request target, percent-decoded; nullopt when it is not a clean UTF-8
// absolute path (such a path cannot name an endpoint, and must not reach a JSON writer).
std::optional<std::string> decode_path(std::string_view target);
// The client's certificate (DER), or empty.
std::vector<uint8_t> peer_der(SSL* ssl);
// A server context: TLS 1.2+, this chain and key, a client certificate asked for but judged
// by the handler. Throws std::runtime_error when the PEMs do not make one.
std::shared_ptr<boost::asio::ssl::context> make_tls(const std::string& cert_pem,
                                                    const std::string& key_pem);
// "address in use", "not an address of this host", ...
std::string listen_error(const boost::system::error_code& ec);

}  // namespace kubeca::http
