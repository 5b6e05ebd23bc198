// Loading refuses what it cannot run with an error that names the problem: an unknown
// architecture, a missing key or tensor, a wrong shape, a type without kernels, absurd sizes.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "core/error.h"
#include "gguf_writer.h"
#include "model/model.h"
#include "session/session.h"
#include "synthetic.h"

namespace pipit {
namespace {

std::vector<uint8_t> small_llama_bytes(TensorType type = TensorType::F32) {
  gguf::SyntheticConfig config;
  config.n_vocab = 300;
  config.n_embd = 64;
  config.n_layer = 2;
  config.n_head = 4;
  config.n_head_kv = 2;
  config.n_ff = 128;
  config.n_ctx = 64;
  config.matrix_type = type;
  config.seed = 7;
  return gguf::synthetic_llama(config).bytes();
}

// Rewrites a file: metadata edited by `edit_metadata` (returning false drops the key), tensors
// edited by `edit_tensor` (returning false drops it; it may change type id, dims and data).
struct TensorCopy {
  std::string name;
  uint32_t type_id;
  std::vector<uint64_t> dims;
  std::vector<uint8_t> data;
};
std::vector<uint8_t> rewrite(
    const std::vector<uint8_t>& bytes,
    const std::function<bool(const std::string&, gguf::MetaValue&)>& edit_metadata,
    const std::function<bool(TensorCopy&)>& edit_tensor) {
  const gguf::File file = gguf::File::parse(bytes);
  gguf::Writer writer;
  for (const auto& [key, value] : file.metadata()) {
    gguf::MetaValue v = gguf::MetaValue::from(value);
    if (edit_metadata(key, v)) writer.add(key, v);
  }
  for (const gguf::TensorInfo& t : file.tensors()) {
    TensorCopy copy{t.name, t.type_id, t.dims, std::vector<uint8_t>(t.data, t.data + t.nbytes)};
    if (!edit_tensor(copy)) continue;
    writer.add_tensor(copy.name, static_cast<TensorType>(copy.type_id), copy.dims, copy.data);
  }
  return writer.bytes();
}

const auto keep_key = [](const std::string&, gguf::MetaValue&) { return true; };
const auto keep_tensor = [](TensorCopy&) { return true; };

struct LoadFailure {
  ErrorKind kind;
  std::string message;
};

LoadFailure load_failure(const std::vector<uint8_t>& bytes) {
  OwnedBytes owned(static_cast<uint8_t*>(std::malloc(bytes.size())));
  std::copy(bytes.begin(), bytes.end(), owned.get());
  try {
    Model::load(std::move(owned), bytes.size(), {});
  } catch (const Error& e) {
    return {e.kind(), e.what()};
  }
  return {ErrorKind::kInternal, "loaded without error"};
}

std::unique_ptr<Model> load(const std::vector<uint8_t>& bytes) {
  OwnedBytes owned(static_cast<uint8_t*>(std::malloc(bytes.size())));
  std::copy(bytes.begin(), bytes.end(), owned.get());
  return Model::load(std::move(owned), bytes.size(), {});
}

TEST(ModelLoad, WriterModelsLoadAndGenerateDeterministically) {
  for (TensorType type : {TensorType::F32, TensorType::F16, TensorType::Q8_0, TensorType::Q4_0}) {
    SCOPED_TRACE(type_name(static_cast<uint32_t>(type)));
    auto model = load(small_llama_bytes(type));
    EXPECT_EQ(model->config().n_vocab, 300);
    EXPECT_EQ(model->config().n_layer, 2);
    auto generate = [&] {
      Session session(*model, 32);
      GenerateOptions options;
      options.max_tokens = 10;
      options.ignore_eos = true;
      options.sampling.temperature = 0.0f;
      session.begin(std::vector<TokenId>{1, 100, 200}, options);
      std::vector<TokenId> ids;
      for (Step s = session.next();; s = session.next()) {
        ids.push_back(s.token);
        if (s.finish != FinishReason::kNone) break;
      }
      return ids;
    };
    const auto ids = generate();
    EXPECT_EQ(ids.size(), 10u);
    EXPECT_EQ(ids, generate());
  }
}

TEST(ModelLoad, UnknownArchitectureIsNamedWithTheSupportedOnes) {
  const auto bytes = rewrite(
      small_llama_bytes(),
      [](const std::string& key, gguf::MetaValue& v) {
        if (key == "general.architecture") v = gguf::MetaValue::string("mamba");
        return true;
      },
      keep_tensor);
  const LoadFailure f = load_failure(bytes);
  EXPECT_EQ(f.kind, ErrorKind::kUnsupported);
  EXPECT_NE(f.message.find("'mamba'"), std::string::npos) << f.message;
  EXPECT_NE(f.message.find("llama, qwen2, phi3, gemma2, gpt2"), std::string::npos) << f.message;
}

TEST(ModelLoad, MissingKeyIsNamed) {
  const auto bytes = rewrite(
      small_llama_bytes(),
      [](const std::string& key, gguf::MetaValue&) { return key != "llama.block_count"; },
      keep_tensor);
  const LoadFailure f = load_failure(bytes);
  EXPECT_EQ(f.kind, ErrorKind::kFormat);
  EXPECT_NE(f.message.find("'llama.block_count'"), std::string::npos) << f.message;
}

TEST(ModelLoad, MissingTensorIsNamed) {
  const auto bytes = rewrite(small_llama_bytes(), keep_key,
                             [](TensorCopy& t) { return t.name != "blk.1.ffn_up.weight"; });
  const LoadFailure f = load_failure(bytes);
  EXPECT_EQ(f.kind, ErrorKind::kFormat);
  EXPECT_NE(f.message.find("'blk.1.ffn_up.weight'"), std::string::npos) << f.message;
}

TEST(ModelLoad, WrongShapeIsNamedWithBothShapes) {
  const auto bytes = rewrite(small_llama_bytes(), keep_key, [](TensorCopy& t) {
    if (t.name == "blk.0.attn_k.weight") t.dims = {t.dims[1], t.dims[0]};
    return true;
  });
  const LoadFailure f = load_failure(bytes);
  EXPECT_EQ(f.kind, ErrorKind::kFormat);
  EXPECT_NE(f.message.find("'blk.0.attn_k.weight' has shape [32, 64], expected [64, 32]"),
            std::string::npos)
      << f.message;
}

TEST(ModelLoad, TensorTypeWithoutKernelsIsNamed) {
  // IQ4_NL: a real ggml type with 32-value blocks of 18 bytes, which pipit has no kernel for.
  const auto bytes = rewrite(small_llama_bytes(), keep_key, [](TensorCopy& t) {
    if (t.name == "blk.0.attn_q.weight") {
      t.type_id = static_cast<uint32_t>(TensorType::IQ4_NL);
      t.data.assign(t.dims[0] / 32 * 18 * t.dims[1], 0);
    }
    return true;
  });
  const LoadFailure f = load_failure(bytes);
  EXPECT_EQ(f.kind, ErrorKind::kUnsupported);
  EXPECT_NE(f.message.find("'blk.0.attn_q.weight' uses type IQ4_NL"), std::string::npos)
      << f.message;
}

TEST(ModelLoad, AbsurdHyperParametersAreRefusedBeforeAllocating) {
  const auto bytes = rewrite(
      small_llama_bytes(),
      [](const std::string& key, gguf::MetaValue& v) {
        if (key == "llama.block_count") v = gguf::MetaValue::u32(4000000);
        return true;
      },
      keep_tensor);
  const LoadFailure f = load_failure(bytes);
  EXPECT_EQ(f.kind, ErrorKind::kFormat);
  EXPECT_NE(f.message.find("'llama.block_count' is 4000000"), std::string::npos) << f.message;
}

TEST(ModelLoad, HeadCountsThatDoNotDivideAreRefused) {
  const auto bytes = rewrite(
      small_llama_bytes(),
      [](const std::string& key, gguf::MetaValue& v) {
        if (key == "llama.attention.head_count_kv") v = gguf::MetaValue::u32(3);
        return true;
      },
      keep_tensor);
  const LoadFailure f = load_failure(bytes);
  EXPECT_EQ(f.kind, ErrorKind::kFormat);
  EXPECT_NE(f.message.find("head_count_kv 3"), std::string::npos) << f.message;
}

TEST(ModelLoad, VocabularyAndEmbeddingMustAgree) {
  const auto bytes = rewrite(small_llama_bytes(), keep_key, [](TensorCopy& t) {
    if (t.name == "token_embd.weight" || t.name == "output.weight") {
      t.dims[1] -= 1;
      t.data.resize(t.data.size() - t.dims[0] * 4);
    }
    return true;
  });
  const LoadFailure f = load_failure(bytes);
  EXPECT_EQ(f.kind, ErrorKind::kFormat);
  EXPECT_NE(f.message.find("300 tokens but token_embd.weight has 299 rows"), std::string::npos)
      << f.message;
}

TEST(ModelLoad, NoArchitectureKeyIsAFormatError) {
  const auto bytes = rewrite(
      small_llama_bytes(),
      [](const std::string& key, gguf::MetaValue&) { return key != "general.architecture"; },
      keep_tensor);
  const LoadFailure f = load_failure(bytes);
  EXPECT_EQ(f.kind, ErrorKind::kFormat);
  EXPECT_NE(f.message.find("general.architecture"), std::string::npos) << f.message;
}

}  // namespace
}  // namespace pipit
