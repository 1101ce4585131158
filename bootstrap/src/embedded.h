// The manifests/ tree compiled into the binary (see bootstrap/cmake/embed.cmake).
#pragma once

#include <cstddef>

namespace kubeca::internal {

struct EmbeddedFile {
  const char* path;  // relative to manifests/, "coreos-2016/master/files.yaml"
  const unsigned char* data;
  std::size_t size;
};

// Ends with an entry whose path is nullptr.
extern const EmbeddedFile kEmbeddedManifests[];

}  // namespace kubeca::internal
