// Request paths as the signing service reads them: percent-decoded, clean UTF-8 or refused.
#include "../../pki/service/http_support.h"

#include <gtest/gtest.h>

namespace kubeca::http {
namespace {

TEST(DecodePath, DecodesPercentEncodingAndDropsTheQuery) {
  EXPECT_EQ(decode_path("/v1/ca"), "/v1/ca");
  EXPECT_EQ(decode_path("/v1/%63a?x=%ff"), "/v1/ca");
  EXPECT_EQ(decode_path("/caf%C3%A9"), "/caf\xc3\xa9");
}

TEST(DecodePath, RefusesWhatCannotNameAnEndpoint) {
  EXPECT_EQ(decode_path("/%ff"), std::nullopt);           // not UTF-8
  EXPECT_EQ(decode_path("/%zz"), std::nullopt);           // not hex
  EXPECT_EQ(decode_path("/%f"), std::nullopt);            // cut short
  EXPECT_EQ(decode_path("/a%00b"), std::nullopt);         // NUL
  EXPECT_EQ(decode_path("/%c0%af"), std::nullopt);        // overlong '/'
  EXPECT_EQ(decode_path("/%ed%a0%80"), std::nullopt);     // a UTF-16 surrogate
  EXPECT_EQ(decode_path("/%f4%90%80%80"), std::nullopt);  // above U+10FFFF
  EXPECT_EQ(decode_path("/%e2%82"), std::nullopt);        // a sequence cut short
  EXPECT_EQ(decode_path("v1/ca"), std::nullopt);          // not absolute
  EXPECT_EQ(decode_path("https://h/v1/ca"), std::nullopt);
  EXPECT_EQ(decode_path(""), std::nullopt);
}

TEST(ValidUtf8, AcceptsEveryLengthOfSequence) {
  EXPECT_TRUE(valid_utf8("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x94\x92"));
  EXPECT_FALSE(valid_utf8("\x80"));
  EXPECT_FALSE(valid_utf8("\xf0\x9f\x94"));
}

TEST(ListenError, NamesTheCause) {
  EXPECT_EQ(listen_error(make_error_code(boost::system::errc::address_in_use)), "address in use");
  EXPECT_EQ(listen_error(make_error_code(boost::system::errc::address_not_available)),
            "not an address of this host");
}

}  // namespace
}  // namespace kubeca::http
