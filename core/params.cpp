#include "core/params.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <exception>
#include <sstream>
#include <utility>

namespace ratelab {

std::string trim(std::string_view text) {
  std::size_t b = 0, e = text.size();
  while (b < e && std::isspace(static_cast<unsigned char>(text[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(text[e - 1]))) --e;
  return std::string(text.substr(b, e - b));
}

namespace {
std::string join_lines(const std::vector<std::string>& lines) {
  std::string out;
  for (std::size_t i = 0; i < lines.size(); ++i) out += (i ? "\n" : "") + lines[i];
  return out;
}

std::vector<std::string> split_list(std::string_view text) {
  std::vector<std::string> items;
  std::string t = trim(text);
  if (t.empty()) return items;
  std::size_t start = 0;
  while (true) {
    std::size_t comma = t.find(',', start);
    items.push_back(trim(std::string_view(t).substr(start, comma - start)));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return items;
}

std::string format_real(double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (std::isnan(v)) return "nan";
  char buf[40];
  // Shortest text that round-trips; std::to_chars gives exactly that.
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, res.ptr);
}

std::optional<double> parse_real(std::string_view text) {
  std::string t = trim(text);
  if (t == "inf" || t == "+inf") return std::numeric_limits<double>::infinity();
  if (t == "-inf") return -std::numeric_limits<double>::infinity();
  if (t.empty()) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(t.c_str(), &end);
  if (end != t.c_str() + t.size() || errno == ERANGE || std::isnan(v)) return std::nullopt;
  return v;
}

std::optional<std::int64_t> parse_int(std::string_view text) {
  std::string t = trim(text);
  std::int64_t v = 0;
  auto res = std::from_chars(t.data(), t.data() + t.size(), v);
  if (res.ec == std::errc() && res.ptr == t.data() + t.size() && !t.empty()) return v;
  // Accept integral reals written as 1e5, which researchers type for step counts.
  if (auto r = parse_real(t); r && std::floor(*r) == *r && std::abs(*r) < 9.0e15) return std::int64_t(*r);
  return std::nullopt;
}
}  // namespace

namespace {
// One per thread: a bad_alloc in a worker thread is rethrown in the caller, whose own contexts then unwind
// (the outermost wins only if nothing inner recorded one).
thread_local std::string g_left_context;
}  // namespace

AllocationContext::AllocationContext(std::string what) : what_(std::move(what)), uncaught_(std::uncaught_exceptions()) {
  g_left_context.clear();  // a context entered since means the exception that left the last one was handled
}

AllocationContext::~AllocationContext() {
  if (std::uncaught_exceptions() > uncaught_ && g_left_context.empty()) g_left_context = std::move(what_);
}

std::string take_allocation_context() { return std::exchange(g_left_context, std::string()); }

ConfigError::ConfigError(std::vector<std::string> problems)
    : std::runtime_error(join_lines(problems)), problems_(std::move(problems)) {}

const char* type_name(ParamType type) {
  switch (type) {
    case ParamType::real: return "real";
    case ParamType::integer: return "int";
    case ParamType::boolean: return "bool";
    case ParamType::choice: return "choice";
    case ParamType::real_list: return "list of reals";
    case ParamType::choice_list: return "list of choices";
    case ParamType::text_list: return "repeatable text";
  }
  return "?";
}

const char* type_name(const ParamSpec& spec) {
  return spec.type == ParamType::choice && spec.constraint.choices.empty() ? "text" : type_name(spec.type);
}

std::string format_value(const ParamValue& value) {
  struct Visitor {
    std::string operator()(double v) const { return format_real(v); }
    std::string operator()(std::int64_t v) const { return std::to_string(v); }
    std::string operator()(bool v) const { return v ? "true" : "false"; }
    std::string operator()(const std::string& v) const { return v; }
    std::string operator()(const std::vector<double>& v) const {
      std::string s;
      for (std::size_t i = 0; i < v.size(); ++i) {
        if (i) s += ',';
        s += format_real(v[i]);
      }
      return s;
    }
    std::string operator()(const std::vector<std::string>& v) const {
      std::string s;
      for (std::size_t i = 0; i < v.size(); ++i) {
        if (i) s += ',';
        s += v[i];
      }
      return s;
    }
  };
  return std::visit(Visitor{}, value);
}

std::string Constraint::describe(std::string_view key) const {
  if (!choices.empty()) {
    std::string s = "one of ";
    for (std::size_t i = 0; i < choices.size(); ++i) s += (i ? ", " : "") + choices[i];
    return s;
  }
  std::string k(key);
  if (lo && hi) {
    return format_real(*lo) + (lo_open ? " < " : " <= ") + k + (hi_open ? " < " : " <= ") + format_real(*hi);
  }
  if (lo) return k + (lo_open ? " > " : " >= ") + format_real(*lo);
  if (hi) return k + (hi_open ? " < " : " <= ") + format_real(*hi);
  return "";
}

Constraint unconstrained() { return {}; }
Constraint positive() { return {0.0, std::nullopt, true, false, {}, false}; }
Constraint nonnegative() { return {0.0, std::nullopt, false, false, {}, false}; }
Constraint at_least(double lo) { return {lo, std::nullopt, false, false, {}, false}; }
Constraint in_closed(double lo, double hi) { return {lo, hi, false, false, {}, false}; }
Constraint in_open(double lo, double hi) { return {lo, hi, true, true, {}, false}; }
Constraint in_closed_open(double lo, double hi) { return {lo, hi, false, true, {}, false}; }
Constraint in_open_closed(double lo, double hi) { return {lo, hi, true, false, {}, false}; }
Constraint one_of(std::vector<std::string> choices) {
  Constraint c;
  c.choices = std::move(choices);
  return c;
}

ParamValue parse_value(const ParamSpec& spec, std::string_view text, std::string_view qualified_key) {
  auto malformed = [&](std::string_view expected) {
    return ConfigError(std::string(qualified_key) + " = '" + trim(text) + "' is malformed: expected " +
                       std::string(expected));
  };
  switch (spec.type) {
    case ParamType::real: {
      auto v = parse_real(text);
      if (!v) throw malformed("a real number such as 0.5 or 1e-3");
      return *v;
    }
    case ParamType::integer: {
      auto v = parse_int(text);
      if (!v) throw malformed("an integer such as 100 or 1e5");
      return *v;
    }
    case ParamType::boolean: {
      std::string t = trim(text);
      if (t == "true" || t == "1" || t == "yes" || t == "on") return true;
      if (t == "false" || t == "0" || t == "no" || t == "off") return false;
      throw malformed("true or false");
    }
    case ParamType::choice: return trim(text);
    case ParamType::real_list: {
      std::vector<double> out;
      for (const auto& item : split_list(text)) {
        auto v = parse_real(item);
        if (!v) throw malformed("a comma-separated list of real numbers");
        out.push_back(*v);
      }
      return out;
    }
    case ParamType::choice_list: return split_list(text);
    case ParamType::text_list: return std::vector<std::string>{trim(text)};
  }
  throw malformed("a value");
}

std::optional<std::string> violation(const ParamSpec& spec, const ParamValue& value,
                                     std::string_view qualified_key) {
  const Constraint& c = spec.constraint;
  std::string key(qualified_key);
  auto check_real = [&](double v) -> bool {
    if (c.lo && (c.lo_open ? !(v > *c.lo) : !(v >= *c.lo))) return false;
    if (c.hi && (c.hi_open ? !(v < *c.hi) : !(v <= *c.hi))) return false;
    return !std::isnan(v);
  };
  auto not_finite = [&](double v) { return !std::isfinite(v) && !(std::isinf(v) && c.infinite_ok); };
  auto finite_text = [&](const std::string& what, double v) {
    return what + format_real(v) + " is not a finite number; " + key + " takes a finite real" +
           (c.describe(key).empty() ? std::string() : " with " + c.describe(key));
  };
  auto in_choices = [&](const std::string& s) {
    return c.choices.empty() || std::find(c.choices.begin(), c.choices.end(), s) != c.choices.end();
  };
  auto fail = [&]() { return key + " = " + format_value(value) + " violates " + c.describe(key); };
  if (auto* d = std::get_if<double>(&value)) {
    if (not_finite(*d)) return finite_text(key + " = ", *d);
    if (!check_real(*d)) return fail();
  } else if (auto* i = std::get_if<std::int64_t>(&value)) {
    if (!check_real(double(*i))) return fail();
  } else if (auto* s = std::get_if<std::string>(&value)) {
    if (!in_choices(*s)) {
      std::string msg = key + " = '" + *s + "' is not " + c.describe(key);
      auto close = close_matches(*s, c.choices, 1);
      if (!close.empty()) msg += " (did you mean '" + close.front() + "'?)";
      return msg;
    }
  } else if (auto* l = std::get_if<std::vector<double>>(&value)) {
    for (double v : *l) {
      if (not_finite(v)) return finite_text(key + " contains ", v);
      if (!check_real(v)) return key + " contains " + format_real(v) + ", which violates " + c.describe("each entry");
    }
  } else if (auto* ls = std::get_if<std::vector<std::string>>(&value)) {
    for (const auto& s : *ls)
      if (!in_choices(s)) return key + " contains '" + s + "', which is not " + c.describe(key);
  }
  return std::nullopt;
}

bool AppliesWhen::holds(const ParamSet& set) const {
  const ParamValue* v = set.find(key);
  if (!v) return true;  // the condition's parameter is not there: nothing says it does not apply
  const bool in = std::find(values.begin(), values.end(), format_value(*v)) != values.end();
  return in != negate;
}

std::string AppliesWhen::describe() const {
  std::string list;
  for (std::size_t i = 0; i < values.size(); ++i) list += (i ? ", " : "") + values[i];
  if (values.size() == 1) return key + (negate ? " != " : " = ") + list;
  return key + (negate ? " is none of " : " is one of ") + list;
}

bool applies(const ParamSpec& spec, const ParamSet& values) { return !spec.applies || spec.applies->holds(values); }

void ParamSet::set(std::string key, ParamValue value) {
  for (auto& [k, v] : entries_)
    if (k == key) {
      v = std::move(value);
      return;
    }
  entries_.emplace_back(std::move(key), std::move(value));
}

const ParamValue* ParamSet::find(std::string_view key) const {
  for (const auto& [k, v] : entries_)
    if (k == key) return &v;
  return nullptr;
}

const ParamValue& ParamSet::at(std::string_view key) const {
  if (const ParamValue* v = find(key)) return *v;
  throw std::logic_error("ParamSet has no key " + std::string(key));
}

std::string ParamSet::canonical() const {
  std::string s;
  for (std::size_t i = 0; i < entries_.size(); ++i)
    s += (i ? ";" : "") + entries_[i].first + "=" + format_value(entries_[i].second);
  return s;
}

ParamSet resolve_params(const std::vector<ParamSpec>& specs, const std::map<std::string, std::string>& raw,
                        std::string_view scope, std::vector<std::string>& errors) {
  std::vector<std::string> known;
  for (const auto& s : specs) known.push_back(s.key);
  for (const auto& [key, text] : raw) {
    if (std::find(known.begin(), known.end(), key) == known.end())
      errors.push_back(unknown_key_message(std::string(scope) + " parameter", key, known));
  }
  ParamSet out;
  for (const auto& spec : specs) {
    std::string qualified = std::string(scope) + (scope.empty() ? "" : ".") + spec.key;
    ParamValue value = spec.default_value;
    if (auto it = raw.find(spec.key); it != raw.end()) {
      try {
        value = parse_value(spec, it->second, qualified);
      } catch (const ConfigError& e) {
        errors.insert(errors.end(), e.problems().begin(), e.problems().end());
        continue;
      }
    }
    if (auto v = violation(spec, value, qualified)) errors.push_back(*v);
    out.set(spec.key, std::move(value));
  }
  return out;
}

namespace {
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}
}  // namespace

std::vector<std::string> close_matches(std::string_view key, const std::vector<std::string>& candidates,
                                       std::size_t max_results) {
  std::vector<std::pair<std::size_t, std::string>> scored;
  for (const auto& c : candidates) {
    std::size_t d = edit_distance(key, c);
    bool prefix = !key.empty() && (c.find(key) != std::string::npos || key.find(c) != std::string_view::npos);
    std::size_t limit = std::max<std::size_t>(2, std::max(key.size(), c.size()) / 2);
    // A prefix or substring makes a candidate eligible; the ranking is by edit distance alone, so a
    // one-letter slip beats a mere prefix ("schedule.c" before "schedule" for "schedule.cc").
    if (d <= limit || prefix) scored.emplace_back(d, c);
  }
  std::stable_sort(scored.begin(), scored.end(), [](auto& x, auto& y) { return x.first < y.first; });
  std::vector<std::string> out;
  for (std::size_t i = 0; i < scored.size() && i < max_results; ++i) out.push_back(scored[i].second);
  return out;
}

std::string unknown_key_message(std::string_view what, std::string_view key,
                                const std::vector<std::string>& available) {
  std::string msg = "unknown " + std::string(what) + " '" + std::string(key) + "'";
  auto close = close_matches(key, available);
  if (!close.empty()) msg += "; did you mean '" + close.front() + "'?";
  msg += " Available: ";
  for (std::size_t i = 0; i < available.size(); ++i) msg += (i ? ", " : "") + available[i];
  return msg;
}

}  // namespace ratelab
