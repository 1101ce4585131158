// Mustache templates rendered strictly: a tag the data lacks is an error, never "".
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace kubeca {

// The tags of `text` that `data` cannot resolve ("{{name}}" at line N), section scopes
// followed; empty when the template renders strictly. Partials and delimiter changes count
// as unresolved: kubeca's templates use neither.
std::vector<std::string> unresolved_tags(const std::string& text, const nlohmann::json& data);

// Renders without HTML escaping (these are config files, not web pages). Throws
// std::runtime_error naming `name` when a tag is unresolved or the template does not parse.
std::string render_template(const std::string& name, const std::string& text,
                            const nlohmann::json& data);

}  // namespace kubeca
