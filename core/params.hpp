// Parameters declared once per component.
//
// A component (optimizer, problem, schedule, the experiment itself) has an options struct with in-class
// defaults and one static table that binds each field to a key, a constraint and a one-line doc:
//
//   struct HeavyBallOptions {
//     double beta = 0.9;
//     static ParamTable<HeavyBallOptions> params() {
//       return {param(&HeavyBallOptions::beta, "beta", in_closed_open(0, 1), "momentum coefficient")};
//     }
//   };
//
// From that one table come parsing (CLI, experiment files), validation that lists every violation,
// `ratelab describe`, sweep axes and the HDF5 attributes. Strings are resolved into the typed struct once,
// before a run starts; the hot loop reads plain fields.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace ratelab {

// Bad user input (configuration, parameters, files). Carries every violation found, one per line.
class ConfigError : public std::runtime_error {
 public:
  explicit ConfigError(std::vector<std::string> problems);
  explicit ConfigError(const std::string& problem) : ConfigError(std::vector<std::string>{problem}) {}
  const std::vector<std::string>& problems() const { return problems_; }

 private:
  std::vector<std::string> problems_;
};

// What the process was doing when memory ran out, for the message of an unexpected std::bad_alloc ("the
// grid has 1000000000 configurations" says more than "std::bad_alloc"). Put one around each allocation
// whose size the user controls; when an exception leaves its scope, the description is kept for
// take_allocation_context() (the scope itself is gone by the time the handler runs).
class AllocationContext {
 public:
  explicit AllocationContext(std::string what);
  ~AllocationContext();
  AllocationContext(const AllocationContext&) = delete;
  AllocationContext& operator=(const AllocationContext&) = delete;

 private:
  std::string what_;
  int uncaught_ = 0;
};
// The description of the innermost context an exception last left (empty if none), then forgets it.
std::string take_allocation_context();

// text_list: free-text items, one per occurrence, never split on commas (repeatable command-line options
// such as `--set section.key=a,b`); the other lists are comma-separated.
enum class ParamType { real, integer, boolean, choice, real_list, choice_list, text_list };
const char* type_name(ParamType type);

using ParamValue =
    std::variant<double, std::int64_t, bool, std::string, std::vector<double>, std::vector<std::string>>;

// Canonical text of a value: reals with 17 significant digits, lists comma-separated. The same text is
// used for configuration ids, HDF5 attributes and `describe`, so it must round-trip exactly.
std::string format_value(const ParamValue& value);

// A real value must be finite (inf or nan is refused for every real parameter and list entry) unless the
// constraint says `infinite_ok`: a step size, a noise scale or a radius of inf means nothing, and the run it
// would start only diverges or yields NaN.
struct Constraint {
  std::optional<double> lo, hi;
  bool lo_open = false, hi_open = false;
  std::vector<std::string> choices;  // for choice and choice_list
  bool infinite_ok = false;          // reals only: +-inf passes (if within lo, hi)
  // "0 <= beta < 1", "eta > 0", "one of manual, polyak"; empty when unconstrained.
  std::string describe(std::string_view key) const;
};

Constraint unconstrained();
Constraint positive();        // (0, inf)
Constraint nonnegative();     // [0, inf)
Constraint at_least(double lo);
Constraint in_closed(double lo, double hi);
Constraint in_open(double lo, double hi);
Constraint in_closed_open(double lo, double hi);
Constraint in_open_closed(double lo, double hi);
Constraint one_of(std::vector<std::string> choices);

class ParamSet;

// When a parameter applies: another parameter of the same component (`key`) has one of `values` (or, with
// `negate`, none of them), compared as format_value writes them. A parameter that does not apply does
// nothing, so it is left out of a configuration's record and label, written at its default in the
// fingerprint (which keeps the ids of configurations made before conditions existed), refused when a section
// sets it for no configuration it applies to, and `describe` states the condition.
struct AppliesWhen {
  std::string key;
  std::vector<std::string> values;
  bool negate = false;
  bool holds(const ParamSet& values) const;
  std::string describe() const;  // "tuning = manual", "activation is one of staircase", "noise is not none"
};

struct ParamSpec {
  std::string key;
  ParamType type;
  ParamValue default_value;
  Constraint constraint;
  std::string doc;
  std::optional<AppliesWhen> applies;  // empty: always
};

// `text` without leading and trailing white space.
std::string trim(std::string_view text);

// The type as `describe` names it: a string parameter without a list of choices is free `text` (a name, a
// description, a path), not a `choice`.
const char* type_name(const ParamSpec& spec);

// Parses text into a value of the spec's type; throws ConfigError naming the key and the expected form.
ParamValue parse_value(const ParamSpec& spec, std::string_view text, std::string_view qualified_key);
// The constraint violation, phrased as "beta = 1 violates 0 <= beta < 1", or nothing.
std::optional<std::string> violation(const ParamSpec& spec, const ParamValue& value,
                                     std::string_view qualified_key);

// The fully resolved values of one component, in declaration order.
class ParamSet {
 public:
  ParamSet() = default;
  void set(std::string key, ParamValue value);
  const ParamValue* find(std::string_view key) const;
  const ParamValue& at(std::string_view key) const;
  const std::vector<std::pair<std::string, ParamValue>>& entries() const { return entries_; }
  // "key=value;key=value" in declaration order: the canonical serialization behind configuration ids.
  std::string canonical() const;
  bool operator==(const ParamSet&) const = default;

 private:
  std::vector<std::pair<std::string, ParamValue>> entries_;
};

// Whether `spec` applies given the component's resolved `values` (always, without a condition).
bool applies(const ParamSpec& spec, const ParamSet& values);

// Resolves raw text overrides against specs. Unknown keys, malformed values and constraint violations are
// appended to `errors` (all of them, not the first); `scope` prefixes keys in messages ("optimizer.").
ParamSet resolve_params(const std::vector<ParamSpec>& specs, const std::map<std::string, std::string>& raw,
                        std::string_view scope, std::vector<std::string>& errors);

// Closest strings to `key` among `candidates` (edit distance), for "did you mean" messages.
std::vector<std::string> close_matches(std::string_view key, const std::vector<std::string>& candidates,
                                       std::size_t max_results = 3);
std::string unknown_key_message(std::string_view what, std::string_view key,
                                const std::vector<std::string>& available);

// ---- typed binding ---------------------------------------------------------------------------------

template <class Options>
struct Field {
  ParamSpec spec;
  std::function<void(Options&, const ParamValue&)> assign;
};

template <class Options>
class ParamTable {
 public:
  ParamTable() = default;
  ParamTable(std::initializer_list<Field<Options>> fields) : fields_(fields) {}
  ParamTable(std::vector<Field<Options>> fields) : fields_(std::move(fields)) {}
  const std::vector<Field<Options>>& fields() const { return fields_; }
  // Appends the parameters of a sub-struct (shared option groups such as the gradient-noise model).
  template <class Sub>
  ParamTable with(Sub Options::*member, const ParamTable<Sub>& sub) const {
    ParamTable out = *this;
    for (const auto& f : sub.fields()) {
      out.fields_.push_back({f.spec, [member, assign = f.assign](Options& o, const ParamValue& v) {
                               assign(o.*member, v);
                             }});
    }
    return out;
  }
  std::vector<ParamSpec> specs() const {
    std::vector<ParamSpec> out;
    for (const auto& f : fields_) out.push_back(f.spec);
    return out;
  }
  Options bind(const ParamSet& values) const {
    Options options{};
    for (const auto& f : fields_) {
      if (const ParamValue* v = values.find(f.spec.key)) f.assign(options, *v);
    }
    return options;
  }

 private:
  std::vector<Field<Options>> fields_;
};

namespace detail {
template <class T>
constexpr ParamType param_type_of() {
  if constexpr (std::is_same_v<T, double>) return ParamType::real;
  else if constexpr (std::is_same_v<T, bool>) return ParamType::boolean;
  else if constexpr (std::is_integral_v<T>) return ParamType::integer;
  else if constexpr (std::is_same_v<T, std::string>) return ParamType::choice;
  else if constexpr (std::is_same_v<T, std::vector<double>>) return ParamType::real_list;
  else if constexpr (std::is_same_v<T, std::vector<std::string>>) return ParamType::choice_list;
  else static_assert(sizeof(T) == 0, "unsupported parameter type");
}
template <class T>
ParamValue to_value(const T& v) {
  if constexpr (std::is_same_v<T, bool>) return v;
  else if constexpr (std::is_integral_v<T>) return static_cast<std::int64_t>(v);
  else return v;
}
template <class T>
T from_value(const ParamValue& v) {
  if constexpr (std::is_same_v<T, bool>) return std::get<bool>(v);
  else if constexpr (std::is_integral_v<T>) return static_cast<T>(std::get<std::int64_t>(v));
  else return std::get<T>(v);
}
}  // namespace detail

// A field of a plain type: real, integer, bool, string (choice: pass one_of), list of reals or choices.
template <class Options, class T>
Field<Options> param(T Options::*member, std::string key, Constraint constraint, std::string doc) {
  Options defaults{};
  ParamSpec spec{std::move(key), detail::param_type_of<T>(), detail::to_value(defaults.*member),
                 std::move(constraint), std::move(doc), std::nullopt};
  return {std::move(spec),
          [member](Options& o, const ParamValue& v) { o.*member = detail::from_value<T>(v); }};
}

// A repeatable free-text field (ParamType::text_list): each occurrence is one item, kept verbatim.
template <class Options>
Field<Options> text_list(std::vector<std::string> Options::*member, std::string key, std::string doc) {
  Options defaults{};
  ParamSpec spec{std::move(key), ParamType::text_list, defaults.*member, unconstrained(), std::move(doc), std::nullopt};
  return {std::move(spec), [member](Options& o, const ParamValue& v) {
            o.*member = std::get<std::vector<std::string>>(v);
          }};
}

// The field, applying only when parameter `key` of the same component has one of `values`:
//   applies_when(param(&O::beta, "beta", ...), "tuning", {"manual"})
template <class Options>
Field<Options> applies_when(Field<Options> field, std::string key, std::vector<std::string> values,
                            bool negate = false) {
  field.spec.applies = AppliesWhen{std::move(key), std::move(values), negate};
  return field;
}

// A field of enum type, spelled by name: choice(&O::tuning, "tuning", {{"manual", T::manual}, ...}, doc).
template <class Options, class Enum>
Field<Options> choice(Enum Options::*member, std::string key,
                      std::vector<std::pair<std::string, Enum>> names, std::string doc) {
  Options defaults{};
  std::vector<std::string> labels;
  std::string default_label;
  for (const auto& [label, value] : names) {
    labels.push_back(label);
    if (value == defaults.*member) default_label = label;
  }
  ParamSpec spec{std::move(key), ParamType::choice, default_label, one_of(labels), std::move(doc), std::nullopt};
  return {std::move(spec), [member, names](Options& o, const ParamValue& v) {
            const auto& label = std::get<std::string>(v);
            for (const auto& [l, value] : names)
              if (l == label) o.*member = value;
          }};
}

}  // namespace ratelab
