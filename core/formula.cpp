#include "core/formula.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <optional>
#include <set>

#include "core/params.hpp"

namespace ratelab {

struct Formula::Node {
  enum class Op { number, name, neg, add, sub, mul, div, pow, call, sum };
  Op op = Op::number;
  double number = 0;
  std::string name;  // variable, function, or summation variable
  std::vector<std::shared_ptr<const Node>> args;
};

namespace {

using NodePtr = std::shared_ptr<const Formula::Node>;
using Op = Formula::Node::Op;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// Recursive descent: expr := term (('+'|'-') term)*; term := unary (('*'|'/') unary)*;
// unary := ('-'|'+') unary | power; power := primary ('^' unary)?; primary := number | name | name(args) |
// (expr).
class FormulaParser {
 public:
  FormulaParser(const std::string& text, const std::string& what) : s_(text), what_(what) {}
  NodePtr parse() {
    auto node = expression();
    skip();
    if (i_ != s_.size()) fail("unexpected '" + s_.substr(i_) + "'");
    return node;
  }

 private:
  [[noreturn]] void fail(const std::string& message) const {
    throw ConfigError(what_ + ": formula '" + s_ + "': " + message);
  }
  void skip() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  bool accept(char c) {
    skip();
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  static NodePtr binary(Op op, NodePtr a, NodePtr b) {
    auto n = std::make_shared<Formula::Node>();
    n->op = op;
    n->args = {std::move(a), std::move(b)};
    return n;
  }
  NodePtr expression() {
    auto left = term();
    for (;;) {
      if (accept('+'))
        left = binary(Op::add, left, term());
      else if (accept('-'))
        left = binary(Op::sub, left, term());
      else
        return left;
    }
  }
  NodePtr term() {
    auto left = unary();
    for (;;) {
      if (accept('*'))
        left = binary(Op::mul, left, unary());
      else if (accept('/'))
        left = binary(Op::div, left, unary());
      else
        return left;
    }
  }
  // Unary minus binds looser than ^ (-2^2 = -4); ^ is right associative and takes a signed exponent.
  NodePtr unary() {
    if (accept('-')) {
      auto n = std::make_shared<Formula::Node>();
      n->op = Op::neg;
      n->args = {unary()};
      return n;
    }
    if (accept('+')) return unary();
    return power();
  }
  NodePtr power() {
    auto base = primary();
    if (accept('^')) return binary(Op::pow, base, unary());
    return base;
  }
  NodePtr primary() {
    skip();
    if (i_ >= s_.size()) fail("ends where a number, a name or '(' was expected");
    if (accept('(')) {
      auto inner = expression();
      if (!accept(')')) fail("missing ')'");
      return inner;
    }
    const char c = s_[i_];
    if (std::isdigit(static_cast<unsigned char>(c)) || c == '.') {
      const char* begin = s_.c_str() + i_;
      char* end = nullptr;
      const double v = std::strtod(begin, &end);
      if (end == begin) fail("malformed number at '" + s_.substr(i_) + "'");
      i_ += std::size_t(end - begin);
      auto n = std::make_shared<Formula::Node>();
      n->number = v;
      return n;
    }
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      std::size_t start = i_;
      while (i_ < s_.size() &&
             (std::isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '_' || s_[i_] == '.'))
        ++i_;
      const std::string name = s_.substr(start, i_ - start);
      auto n = std::make_shared<Formula::Node>();
      if (!accept('(')) {
        if (name == "inf")
          n->number = kInf;
        else if (name == "pi")
          n->number = 3.14159265358979323846;
        else {
          n->op = Op::name;
          n->name = name;
        }
        return n;
      }
      static const std::map<std::string, std::pair<int, int>> arity{
          {"sqrt", {1, 1}}, {"log", {1, 1}},  {"exp", {1, 1}},  {"abs", {1, 1}}, {"sin", {1, 1}},
          {"cos", {1, 1}},  {"min", {2, 99}}, {"max", {2, 99}}, {"sum", {4, 4}},
          {"floor", {1, 1}}, {"ceil", {1, 1}}, {"round", {1, 1}}};
      auto fn = arity.find(name);
      if (fn == arity.end())
        fail("unknown function '" + name + "' (sqrt, log, exp, abs, sin, cos, floor, ceil, round, min, max, sum)");
      n->op = name == "sum" ? Op::sum : Op::call;
      n->name = name;
      if (n->op == Op::sum) {
        skip();
        std::size_t v0 = i_;
        while (i_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '_')) ++i_;
        auto var = std::make_shared<Formula::Node>();
        var->op = Op::name;
        var->name = s_.substr(v0, i_ - v0);
        if (var->name.empty() || !accept(',')) fail("sum takes (variable, from, to, expression)");
        n->args.push_back(var);
      }
      if (!accept(')')) {
        do n->args.push_back(expression());
        while (accept(','));
        if (!accept(')')) fail("missing ')' after the arguments of " + name);
      }
      const int count = int(n->args.size());
      if (count < fn->second.first || count > fn->second.second)
        fail(name + " takes " + std::to_string(fn->second.first) +
             (fn->second.first == fn->second.second ? "" : " or more") + " arguments, got " +
             std::to_string(count));
      return n;
    }
    fail("unexpected '" + std::string(1, c) + "'");
  }

  std::string s_, what_;
  std::size_t i_ = 0;
};

void collect_names(const Formula::Node& n, std::set<std::string>& bound, std::vector<std::string>& out) {
  if (n.op == Op::name) {
    if (!bound.count(n.name) && std::find(out.begin(), out.end(), n.name) == out.end())
      out.push_back(n.name);
    return;
  }
  if (n.op == Op::sum) {
    collect_names(*n.args[1], bound, out);
    collect_names(*n.args[2], bound, out);
    const bool added = bound.insert(n.args[0]->name).second;
    collect_names(*n.args[3], bound, out);
    if (added) bound.erase(n.args[0]->name);
    return;
  }
  for (const auto& a : n.args) collect_names(*a, bound, out);
}

// `locals` holds the summation variables in scope; every other name goes to the lookup.
double eval_node(const Formula::Node& n, const Formula::Lookup& lookup, std::map<std::string, double>& locals) {
  auto arg = [&](std::size_t k) { return eval_node(*n.args[k], lookup, locals); };
  switch (n.op) {
    case Op::number:
      return n.number;
    case Op::name: {
      if (auto it = locals.find(n.name); it != locals.end()) return it->second;
      return lookup(n.name);
    }
    case Op::neg:
      return -arg(0);
    case Op::add:
      return arg(0) + arg(1);
    case Op::sub:
      return arg(0) - arg(1);
    case Op::mul:
      return arg(0) * arg(1);
    case Op::div:
      return arg(0) / arg(1);
    case Op::pow:
      return std::pow(arg(0), arg(1));
    case Op::call: {
      if (n.name == "sqrt") return std::sqrt(arg(0));
      if (n.name == "log") return std::log(arg(0));
      if (n.name == "exp") return std::exp(arg(0));
      if (n.name == "abs") return std::abs(arg(0));
      if (n.name == "sin") return std::sin(arg(0));
      if (n.name == "cos") return std::cos(arg(0));
      if (n.name == "floor") return std::floor(arg(0));
      if (n.name == "ceil") return std::ceil(arg(0));
      if (n.name == "round") return std::round(arg(0));
      double v = arg(0);
      for (std::size_t k = 1; k < n.args.size(); ++k)
        v = n.name == "min" ? std::min(v, arg(k)) : std::max(v, arg(k));
      return v;
    }
    case Op::sum: {
      const double from = std::ceil(arg(1)), to = std::floor(arg(2));
      if (!(to - from < 1e7)) throw ConfigError("sum over more than 1e7 terms");
      const std::string& var = n.args[0]->name;
      const auto saved = locals.count(var) ? std::optional<double>(locals[var]) : std::nullopt;
      double total = 0;
      for (double i = from; i <= to; i += 1) {
        locals[var] = i;
        total += arg(3);
      }
      if (saved)
        locals[var] = *saved;
      else
        locals.erase(var);
      return total;
    }
  }
  return kNaN;
}

}  // namespace

Formula Formula::parse(const std::string& text, const std::string& what) {
  Formula f;
  f.text_ = trim(text);
  if (f.text_.empty()) throw ConfigError(what + ": empty formula");
  f.root_ = FormulaParser(f.text_, what).parse();
  return f;
}

std::vector<std::string> Formula::names() const {
  std::vector<std::string> out;
  std::set<std::string> bound;
  if (root_) collect_names(*root_, bound, out);
  return out;
}

double Formula::evaluate(const Lookup& lookup) const {
  std::map<std::string, double> locals;
  try {
    return eval_node(*root_, lookup, locals);
  } catch (const ConfigError& e) {
    throw ConfigError("formula '" + text_ + "': " + e.what());
  }
}

}  // namespace ratelab
