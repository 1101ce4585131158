// Moving a signer's records from one store to another (`kubeca store migrate`).
#pragma once

#include <cstddef>
#include <functional>
#include <string>

#include "kubeca/store.h"

namespace kubeca {

struct CopyCounts {
  size_t certificates = 0, revoked = 0, tokens = 0;
};

// Copies every certificate (with its status and revocation), every token (with its uses
// and revocation) from `from` into `to`, then reads `to` back and checks each record is
// there unchanged. `to` must be empty: throws InputError otherwise, before writing.
// `progress` hears (done, total) as records are written. Throws std::runtime_error naming
// the first record that differs.
CopyCounts copy_store(Store& from, Store& to,
                      const std::function<void(size_t, size_t)>& progress = {});

}  // namespace kubeca
