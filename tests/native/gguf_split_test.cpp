// Split GGUF sets (gguf-split's layout): the writer lays a model out as N files, the model
// loads from them with the same logits bit for bit, and a set that is incomplete, out of order
// or mixed from two sets is refused with an error naming the part.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"
#include "gguf/split.h"
#include "gguf_writer.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "synthetic.h"

namespace pipit {
namespace {

using Bytes = std::vector<uint8_t>;

gguf::Writer small_llama() {
  gguf::SyntheticConfig c;
  c.n_vocab = 300;
  c.n_embd = 64;
  c.n_layer = 2;
  c.n_head = 4;
  c.n_head_kv = 2;
  c.n_ff = 128;
  c.n_ctx = 64;
  c.matrix_type = TensorType::Q8_0;
  c.seed = 11;
  return gguf::synthetic_llama(c);
}

std::vector<Bytes> split_bytes(const gguf::Writer& whole, uint32_t parts) {
  std::vector<Bytes> out;
  for (const gguf::Writer& w : whole.split(parts)) out.push_back(w.bytes());
  return out;
}

std::unique_ptr<Model> load_parts(const std::vector<Bytes>& parts) {
  std::vector<ModelBuffer> buffers;
  for (const Bytes& b : parts) {
    ModelBuffer& buffer = buffers.emplace_back();
    buffer.bytes.reset(static_cast<uint8_t*>(std::malloc(b.size())));
    std::memcpy(buffer.bytes.get(), b.data(), b.size());
    buffer.size = b.size();
  }
  return Model::load(std::move(buffers), {});
}

std::vector<float> logits_of(const Model& model) {
  const auto kv = model.new_kv_cache(16);
  std::vector<float> logits(model.config().n_vocab);
  const std::vector<int32_t> tokens = {1, 100, 260, 7};
  model.forward(tokens, 0, *kv, logits.data());
  return logits;
}

// The error loading `parts` gives (kFormat expected by every caller); fails the test when the
// load succeeds.
std::string format_error(const std::vector<Bytes>& parts) {
  try {
    load_parts(parts);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kFormat) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "the set loaded without error";
  return "";
}

// `part` rewritten with `edit` applied to a writer holding all of it.
Bytes edited(const Bytes& part, const std::function<void(gguf::Writer&)>& edit) {
  gguf::Writer w = gguf::Writer::copy_of(gguf::File::parse(part));
  edit(w);
  return w.bytes();
}

#define EXPECT_HAS(text, fragment) EXPECT_NE((text).find(fragment), std::string::npos) << (text)

TEST(GgufSplit, PartNamesFollowGgufSplit) {
  EXPECT_EQ(gguf::split_path("m", 0, 3), "m-00001-of-00003.gguf");
  EXPECT_EQ(gguf::split_path("dir/m", 11, 12), "dir/m-00012-of-00012.gguf");
}

TEST(GgufSplit, WriterPutsMetadataFirstAndEveryTensorOnce) {
  const gguf::Writer whole = small_llama();
  const Bytes whole_bytes = whole.bytes();
  const gguf::File original = gguf::File::parse(whole_bytes);
  const std::vector<Bytes> parts = split_bytes(whole, 3);
  ASSERT_EQ(parts.size(), 3u);
  size_t tensors = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    const gguf::File f = gguf::File::parse(parts[i]);
    EXPECT_EQ(f.require(gguf::kSplitNo).type(), gguf::ValueType::kUInt16);
    EXPECT_EQ(f.get_u64(gguf::kSplitNo, 99), i);
    EXPECT_EQ(f.get_u64(gguf::kSplitCount, 0), 3u);
    EXPECT_FALSE(f.tensors().empty());
    for (const gguf::TensorInfo& t : f.tensors()) {
      const gguf::TensorInfo* o = original.find_tensor(t.name);
      ASSERT_NE(o, nullptr) << t.name;
      EXPECT_EQ(std::memcmp(o->data, t.data, t.nbytes), 0) << t.name;
    }
    tensors += f.tensors().size();
    if (i == 0) {
      EXPECT_EQ(f.require(gguf::kSplitTensorsCount).type(), gguf::ValueType::kInt32);
      EXPECT_EQ(f.get_u64(gguf::kSplitTensorsCount, 0), original.tensors().size());
      EXPECT_EQ(f.metadata().size(), original.metadata().size() + 3);
    } else {
      EXPECT_EQ(f.metadata().size(), 2u) << "later parts carry only split.no and split.count";
    }
  }
  EXPECT_EQ(tensors, original.tensors().size());
  EXPECT_THROW(whole.split(static_cast<uint32_t>(original.tensors().size() + 1)), Error);
  EXPECT_THROW(whole.split(0), Error);
}

TEST(GgufSplit, ThreePartsGiveTheLogitsOfTheWholeFileBitForBit) {
  const gguf::Writer whole = small_llama();
  const auto single = load_parts({whole.bytes()});
  const auto split = load_parts(split_bytes(whole, 3));
  size_t part_bytes = 0;
  for (const Bytes& b : split_bytes(whole, 3)) part_bytes += b.size();
  EXPECT_EQ(split->file_size(), part_bytes);
  EXPECT_EQ(split->file().tensors().size(), single->file().tensors().size());
  const std::vector<float> a = logits_of(*single);
  const std::vector<float> b = logits_of(*split);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
}

TEST(GgufSplit, AMissingPartIsNamed) {
  std::vector<Bytes> parts = split_bytes(small_llama(), 3);
  parts.pop_back();
  const std::string e = format_error(parts);
  EXPECT_HAS(e, "part 3 of 3 is missing");
  EXPECT_HAS(e, "NAME-00001-of-00003.gguf to NAME-00003-of-00003.gguf");
  EXPECT_HAS(format_error({parts[0]}), "part 2 of 3 is missing");
}

TEST(GgufSplit, PartsOutOfOrderAreNamed) {
  const std::vector<Bytes> parts = split_bytes(small_llama(), 3);
  EXPECT_HAS(format_error({parts[0], parts[2], parts[1]}), "part 2 of 3 has split.no 2");
  EXPECT_HAS(format_error({parts[1], parts[0], parts[2]}), "part 1 of 3 has split.no 1");
}

TEST(GgufSplit, TooManyFilesOrAnUnsplitFirstFileAreRefused) {
  const gguf::Writer whole = small_llama();
  const std::vector<Bytes> parts = split_bytes(whole, 2);
  EXPECT_HAS(format_error({parts[0], parts[1], parts[1]}),
             "3 files were given but the model is split into 2");
  EXPECT_HAS(format_error({whole.bytes(), parts[1]}), "the first has no 'split.count'");
}

TEST(GgufSplit, PartsOfDifferentSetsAreRefused) {
  const gguf::Writer whole = small_llama();
  const std::vector<Bytes> three = split_bytes(whole, 3);
  const std::vector<Bytes> two = split_bytes(whole, 2);
  // Second part of a 2-part set in a 3-part set: split.no fits, split.count does not.
  EXPECT_HAS(format_error({three[0], two[1], three[2]}),
             "part 2 of 3 says split.count is 2, but the first part says 3");
  // A tensor of part 2 repeated in part 3.
  const gguf::File second = gguf::File::parse(three[1]);
  const gguf::TensorInfo& t = second.tensors().front();
  const Bytes third = edited(three[2], [&](gguf::Writer& w) {
    w.add_tensor(t.name, static_cast<TensorType>(t.type_id), t.dims,
                 std::vector<uint8_t>(t.data, t.data + t.nbytes));
  });
  EXPECT_HAS(format_error({three[0], three[1], third}),
             "tensor '" + t.name + "' is in both part 2 of 3 and part 3 of 3");
}

TEST(GgufSplit, ATensorCountThatDisagreesIsRefused) {
  const std::vector<Bytes> parts = split_bytes(small_llama(), 3);
  const size_t tensors = gguf::File::parse(small_llama().bytes()).tensors().size();
  const Bytes first = edited(parts[0], [&](gguf::Writer& w) {
    w.set(std::string(gguf::kSplitTensorsCount),
          gguf::MetaValue::i32(static_cast<int32_t>(tensors + 1)));
  });
  EXPECT_HAS(format_error({first, parts[1], parts[2]}),
             "says the set holds " + std::to_string(tensors + 1) + " tensors");
}

TEST(GgufSplit, APartWithoutSplitKeysOrNotAGgufIsNamed) {
  const gguf::Writer whole = small_llama();
  const std::vector<Bytes> parts = split_bytes(whole, 3);
  EXPECT_HAS(format_error({parts[0], whole.bytes(), parts[2]}), "part 2 of 3 has no 'split.no'");
  Bytes corrupt = parts[2];
  corrupt[0] = 'X';
  EXPECT_HAS(format_error({parts[0], parts[1], corrupt}), "part 3 of 3: not a GGUF file");
}

}  // namespace
}  // namespace pipit
