// Moving a signer's records from one store to another (`kubeca store migrate`).
#pragma once

#include <cstddef>
#include <functional>
#include <string>

#include "kubeca/store.h"

namespace kubeca {

struct CopyCounts {
  size_t certificates = 0, revoked = 0, tokens = 0;
  int64_t crl_number = 0;  // the last CRL Number the source handed out; the target goes on above it
};

// Copies every certificate (with its status and revocation), every token (with its uses
// and revocation), the published CRL and the CRL Number from `from` into `to`, then reads `to` back
// and checks each record is there unchanged. `to` must be empty: throws InputError otherwise,
// before writing. `progress` hears (done, total) as records are written. Throws std::runtime_error
// naming the first record that differs.
CopyCounts copy_store(Store& from, Store& to,
                      const std::function<void(size_t, size_t)>& progress = {});

}  // namespace kubeca
