// pipit-gguf: writes synthetic models and shows what is inside a GGUF file.
//   pipit-gguf synth --out PATH [--n-vocab N ...]   (see usage())
//   pipit-gguf split IN.gguf --parts N [--out PREFIX]
//   pipit-gguf dump PATH
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "gguf/gguf.h"
#include "gguf_writer.h"
#include "synthetic.h"

namespace {

using pipit::Error;
using pipit::ErrorKind;
namespace gguf = pipit::gguf;

const char kUsage[] =
    "usage:\n"
    "  pipit-gguf synth --out PATH [--arch llama|qwen2] [--n-vocab N] [--n-embd N]\n"
    "                   [--n-layer N] [--n-head N] [--n-head-kv N] [--n-ff N] [--n-ctx N]\n"
    "                   [--type F32|F16|Q8_0|Q4_0|Q4_K_M] [--tied] [--seed S]\n"
    "                   [--rope-base F] [--rms-eps F] [--name TEXT] [--vocab-from VOCAB.gguf]\n"
    "                   [--split N]\n"
    "      writes a llama (or qwen2: q/k/v biases) GGUF with random weights (a generated\n"
    "      3+256+pieces vocab, or the tokenizer of VOCAB.gguf, whose size then sets n_vocab);\n"
    "      Q4_K_M is llama-quantize's mix of Q4_K and Q6_K (Q5_0/Q8_0 for rows that are not\n"
    "      whole 256-value super-blocks); --split N writes it as N files named like\n"
    "      llama.cpp's gguf-split does (PATH without .gguf + -00001-of-0000N.gguf, ...)\n"
    "  pipit-gguf split IN.gguf --parts N [--out PREFIX]\n"
    "      rewrites IN.gguf as a split set PREFIX-00001-of-0000N.gguf ... (PREFIX defaults\n"
    "      to IN without .gguf)\n"
    "  pipit-gguf dump PATH\n"
    "      prints the header, metadata (long arrays abbreviated) and tensors of a GGUF file\n";

[[noreturn]] void bad_args(const std::string& message) {
  throw Error(ErrorKind::kInvalidArgument, message);
}

template <typename T>
T parse_number(std::string_view flag, std::string_view text) {
  T v{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) {
    bad_args(std::string(flag) + " expects a number, got '" + std::string(text) + "'");
  }
  return v;
}

void parse_type(std::string_view text, gguf::SyntheticConfig& c) {
  if (text == "Q4_K_M") {
    c.mix = gguf::QuantMix::kQ4_K_M;
    return;
  }
  static const std::map<std::string_view, pipit::TensorType> kTypes = {
      {"F32", pipit::TensorType::F32},
      {"F16", pipit::TensorType::F16},
      {"Q8_0", pipit::TensorType::Q8_0},
      {"Q4_0", pipit::TensorType::Q4_0}};
  auto it = kTypes.find(text);
  if (it == kTypes.end()) {
    bad_args("--type must be one of F32, F16, Q8_0, Q4_0, Q4_K_M, not '" + std::string(text) + "'");
  }
  c.matrix_type = it->second;
  c.mix = gguf::QuantMix::kUniform;
}

std::string without_gguf_extension(std::string path) {
  constexpr std::string_view kExt = ".gguf";
  if (path.size() > kExt.size() && path.ends_with(kExt)) path.resize(path.size() - kExt.size());
  return path;
}

// Writes `writer` whole to `out`, or split into `parts` files next to it.
void write_model(const gguf::Writer& writer, const std::string& out, uint32_t parts) {
  if (parts == 0) {
    writer.write_file(out);
    std::cout << "wrote " << out << "\n";
    return;
  }
  for (const std::string& path : writer.write_split_files(without_gguf_extension(out), parts)) {
    std::cout << "wrote " << path << "\n";
  }
}

int split(const std::vector<std::string_view>& args) {
  std::string in, prefix;
  uint32_t parts = 0;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string_view flag = args[i];
    if (!flag.starts_with("--")) {
      if (!in.empty()) bad_args("split takes one input file");
      in = flag;
      continue;
    }
    if (i + 1 >= args.size()) bad_args(std::string(flag) + " needs a value");
    const std::string_view v = args[++i];
    if (flag == "--parts") {
      parts = parse_number<uint32_t>(flag, v);
    } else if (flag == "--out") {
      prefix = v;
    } else {
      bad_args("unknown option '" + std::string(flag) + "' for split");
    }
  }
  if (in.empty()) bad_args("split needs an input file");
  if (parts == 0) bad_args("split needs --parts N (1 or more)");
  const std::vector<uint8_t> bytes = gguf::read_file(in);
  const gguf::Writer whole = gguf::Writer::copy_of(gguf::File::parse(bytes));
  write_model(whole, (prefix.empty() ? without_gguf_extension(in) : prefix) + ".gguf", parts);
  return 0;
}

int synth(const std::vector<std::string_view>& args) {
  gguf::SyntheticConfig c;
  std::string out;
  uint32_t split_parts = 0;
  bool vocab_size_given = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string_view flag = args[i];
    if (flag == "--help" || flag == "-h") {
      std::cout << kUsage;
      return 0;
    }
    if (flag == "--tied") {
      c.tied_output = true;
      continue;
    }
    if (i + 1 >= args.size()) bad_args(std::string(flag) + " needs a value");
    const std::string_view v = args[++i];
    if (flag == "--out") {
      out = v;
    } else if (flag == "--n-vocab") {
      c.n_vocab = parse_number<uint32_t>(flag, v);
      vocab_size_given = true;
    } else if (flag == "--n-embd") {
      c.n_embd = parse_number<uint32_t>(flag, v);
    } else if (flag == "--n-layer") {
      c.n_layer = parse_number<uint32_t>(flag, v);
    } else if (flag == "--n-head") {
      c.n_head = parse_number<uint32_t>(flag, v);
    } else if (flag == "--n-head-kv") {
      c.n_head_kv = parse_number<uint32_t>(flag, v);
    } else if (flag == "--n-ff") {
      c.n_ff = parse_number<uint32_t>(flag, v);
    } else if (flag == "--n-ctx") {
      c.n_ctx = parse_number<uint32_t>(flag, v);
    } else if (flag == "--seed") {
      c.seed = parse_number<uint64_t>(flag, v);
    } else if (flag == "--rope-base") {
      c.rope_base = parse_number<float>(flag, v);
    } else if (flag == "--rms-eps") {
      c.rms_eps = parse_number<float>(flag, v);
    } else if (flag == "--type") {
      parse_type(v, c);
    } else if (flag == "--arch") {
      c.architecture = v;
    } else if (flag == "--vocab-from") {
      c.vocab_from = v;
    } else if (flag == "--name") {
      c.name = v;
    } else if (flag == "--split") {
      split_parts = parse_number<uint32_t>(flag, v);
      if (split_parts == 0) bad_args("--split expects 1 or more parts");
    } else {
      bad_args("unknown option '" + std::string(flag) + "' for synth");
    }
  }
  if (out.empty()) bad_args("synth needs --out PATH");
  if (vocab_size_given && !c.vocab_from.empty()) {
    bad_args("--n-vocab and --vocab-from conflict: the vocab file decides the vocab size");
  }
  write_model(gguf::synthetic_llama(c), out, split_parts);
  return 0;
}

std::string quote(std::string_view s) {
  constexpr size_t kMax = 60;
  std::string q = "\"";
  for (size_t i = 0; i < s.size() && i < kMax; ++i) {
    const unsigned char ch = static_cast<unsigned char>(s[i]);
    if (ch == '"' || ch == '\\') {
      q += '\\';
      q += static_cast<char>(ch);
    } else if (ch < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", ch);
      q += buf;
    } else {
      q += static_cast<char>(ch);
    }
  }
  q += s.size() > kMax ? "\"..." : "\"";
  return q;
}

std::string show(const gguf::Value& v) {
  using gguf::ValueType;
  switch (v.type()) {
    case ValueType::kString:
      return quote(v.as_string());
    case ValueType::kBool:
      return v.as_bool() ? "true" : "false";
    case ValueType::kFloat32:
    case ValueType::kFloat64: {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.9g", v.as_f64());
      return buf;
    }
    case ValueType::kArray: {
      constexpr uint64_t kShown = 6;
      std::string s = "[";
      for (uint64_t i = 0; i < v.size() && i < kShown; ++i) s += (i ? ", " : "") + show(v.at(i));
      if (v.size() > kShown) s += ", ... (" + std::to_string(v.size()) + " in all)";
      return s + "]";
    }
    case ValueType::kInt8:
    case ValueType::kInt16:
    case ValueType::kInt32:
    case ValueType::kInt64:
      return std::to_string(v.as_i64());
    default:
      return std::to_string(v.as_u64());
  }
}

std::string type_text(const gguf::Value& v) {
  if (v.type() != gguf::ValueType::kArray) return gguf::value_type_name(v.type());
  return std::string("array<") + gguf::value_type_name(v.element_type()) + ">";
}

int dump(const std::string& path) {
  const std::vector<uint8_t> bytes = gguf::read_file(path);
  // Lenient about duplicate keys, so a file llama.cpp accepts can still be inspected; the
  // duplicates are listed as warnings.
  const gguf::File f = gguf::File::parse(bytes, {.allow_duplicate_keys = true});
  std::cout << path << ": GGUF v" << f.version() << ", " << bytes.size() << " bytes\n"
            << "  alignment " << f.alignment() << ", data at " << f.data_offset() << "\n"
            << "metadata (" << f.metadata().size() << "):\n";
  for (const auto& [key, value] : f.metadata()) {
    std::cout << "  " << key << " (" << type_text(value) << ") = " << show(value) << "\n";
  }
  for (const std::string& w : f.warnings()) std::cout << "warning: " << w << "\n";
  std::cout << "tensors (" << f.tensors().size() << "):\n";
  for (const gguf::TensorInfo& t : f.tensors()) {
    std::string shape;
    for (size_t i = 0; i < t.dims.size(); ++i)
      shape += (i ? " x " : "") + std::to_string(t.dims[i]);
    std::cout << "  " << t.name << "  " << pipit::type_name(t.type_id) << "  [" << shape
              << "]  offset " << t.offset << " (file " << f.data_offset() + t.offset << "), "
              << t.nbytes << " bytes\n";
  }
  return 0;
}

int run(int argc, char** argv) {
  if (argc < 2) bad_args("no command given");
  const std::string_view command = argv[1];
  std::vector<std::string_view> args(argv + 2, argv + argc);
  if (command == "synth") return synth(args);
  if (command == "split") return split(args);
  if (command == "dump") {
    if (args.size() != 1) bad_args("dump takes exactly one file");
    return dump(std::string(args[0]));
  }
  if (command == "--help" || command == "-h" || command == "help") {
    std::cout << kUsage;
    return 0;
  }
  bad_args("unknown command '" + std::string(command) + "'");
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const Error& e) {
    std::cerr << "pipit-gguf: " << e.what() << "\n";
    if (e.kind() == ErrorKind::kInvalidArgument) std::cerr << kUsage;
    return e.kind() == ErrorKind::kInvalidArgument ? 2 : 1;
  } catch (const std::exception& e) {
    std::cerr << "pipit-gguf: " << e.what() << "\n";
    return 1;
  }
}
