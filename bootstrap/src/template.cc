#include "kubeca/template.h"

#include <algorithm>
#include <kainjow/mustache.hpp>
#include <stdexcept>

namespace kubeca {

namespace {

using nlohmann::json;
namespace mu = kainjow::mustache;

// Where a name is looked up: an object, or a list element that is not one ("{{.}}").
struct Scope {
  const json* value = nullptr;  // nullptr: an inverted section, which adds no names
  std::string section;
};

const json* lookup(const std::vector<Scope>& stack, const std::string& name) {
  if (name == ".") {
    for (auto it = stack.rbegin(); it != stack.rend(); ++it) {
      if (it->value) return it->value->is_object() ? nullptr : it->value;
    }
    return nullptr;
  }
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t dot; (dot = name.find('.', start)) != std::string::npos; start = dot + 1) {
    parts.push_back(name.substr(start, dot - start));
  }
  parts.push_back(name.substr(start));
  for (auto it = stack.rbegin(); it != stack.rend(); ++it) {
    if (!it->value || !it->value->is_object() || !it->value->contains(parts[0])) continue;
    const json* v = &(*it->value)[parts[0]];
    for (size_t i = 1; i < parts.size(); ++i) {
      if (!v->is_object() || !v->contains(parts[i])) return nullptr;
      v = &(*v)[parts[i]];
    }
    return v;
  }
  return nullptr;
}

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

mu::data to_data(const json& j) {
  switch (j.type()) {
    case json::value_t::object: {
      mu::data d{mu::data::type::object};
      for (const auto& [k, v] : j.items()) d.set(k, to_data(v));
      return d;
    }
    case json::value_t::array: {
      mu::data d{mu::data::type::list};
      for (const auto& v : j) d.push_back(to_data(v));
      return d;
    }
    case json::value_t::boolean:
      return mu::data{j.get<bool>()};
    case json::value_t::string:
      return mu::data{j.get<std::string>()};
    case json::value_t::null:
      return mu::data{false};
    default:
      return mu::data{j.dump()};
  }
}

}  // namespace

std::vector<std::string> unresolved_tags(const std::string& text, const json& data) {
  std::vector<std::string> bad;
  std::vector<Scope> stack{{&data, ""}};
  static const json kEmpty = json::object();
  size_t pos = 0;
  while ((pos = text.find("{{", pos)) != std::string::npos) {
    const size_t line = 1 + std::count(text.begin(), text.begin() + pos, '\n');
    const bool triple = text.compare(pos, 3, "{{{") == 0;
    const size_t open = pos + (triple ? 3 : 2);
    const size_t close = text.find(triple ? "}}}" : "}}", open);
    auto report = [&](const std::string& tag, const std::string& why) {
      bad.push_back("{{" + tag + "}} at line " + std::to_string(line) + ": " + why);
    };
    if (close == std::string::npos) {
      report(trim(text.substr(open, 20)), "not closed");
      break;
    }
    const std::string raw = trim(text.substr(open, close - open));
    pos = close + (triple ? 3 : 2);
    if (raw.empty()) {
      report(raw, "empty tag");
      continue;
    }
    const char sigil = triple ? '&' : raw[0];
    const std::string name =
        triple
            ? raw
            : (std::string("#^/!&>=").find(sigil) != std::string::npos ? trim(raw.substr(1)) : raw);
    switch (triple ? '&' : sigil) {
      case '!':
        break;
      case '>':
      case '=':
        report(raw, "partials and delimiter changes are not used by kubeca templates");
        break;
      case '#': {
        const json* v = lookup(stack, name);
        if (!v || v->is_null()) {
          report(raw, "the data has no \"" + name + "\"");
          stack.push_back({&kEmpty, name});
        } else if (v->is_array()) {
          stack.push_back({v->empty() ? &kEmpty : &(*v)[0], name});
        } else {
          stack.push_back({v, name});
        }
        break;
      }
      case '^': {
        const json* v = lookup(stack, name);
        if (!v) report(raw, "the data has no \"" + name + "\"");
        stack.push_back({nullptr, name});
        break;
      }
      case '/':
        if (stack.size() < 2 || stack.back().section != name) {
          report(raw, "closes a section that is not open");
        } else {
          stack.pop_back();
        }
        break;
      default: {
        const json* v = lookup(stack, name);
        if (!v || v->is_null()) {
          report(raw, "the data has no \"" + name + "\"");
        } else if (v->is_string() && v->get<std::string>().empty()) {
          report(raw, "\"" + name + "\" is empty");
        } else if (v->is_object() || v->is_array()) {
          report(raw, "\"" + name + "\" is not a single value");
        }
      }
    }
  }
  if (stack.size() > 1) bad.push_back("{{#" + stack.back().section + "}} is never closed");
  return bad;
}

std::string render_template(const std::string& name, const std::string& text, const json& data) {
  const auto bad = unresolved_tags(text, data);
  if (!bad.empty()) {
    std::string msg = "template " + name + ": " + bad.front();
    if (bad.size() > 1) msg += " (and " + std::to_string(bad.size() - 1) + " more)";
    throw std::runtime_error(msg);
  }
  mu::mustache tmpl{text};
  if (!tmpl.is_valid()) throw std::runtime_error("template " + name + ": " + tmpl.error_message());
  tmpl.set_custom_escape([](const std::string& s) { return s; });
  return tmpl.render(to_data(data));
}

}  // namespace kubeca
