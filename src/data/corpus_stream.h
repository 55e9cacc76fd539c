// A corpus read piece by piece, for corpora larger than memory (hippo tokenize --shards): the
// same documents, splits and order as load_corpus (data/corpus.h), without holding them.
#pragma once
#include <functional>
#include <string>
#include <string_view>

#include "data/corpus.h"

namespace hippo {

// Called with each document (or piece of one) in load_corpus order: its split, its text (valid
// only during the call) and whether a document ends with it (end-of-text follows).
using CorpusPieceFn = std::function<void(Split split, std::string_view text, bool ends_document)>;

// Streams the corpus at `path` and returns true, or returns false having called nothing when
// this corpus is not streamed (then load_corpus it). Streamed: a single text or .jsonl file
// (memory-mapped and read in passes: its size, the two split cuts, then the pieces; the pages
// read are dropped as it goes), and a folder whose documents the name hash splits (each file
// read in turn, so memory is bounded by its largest file). Not streamed: the Brown corpus
// (6 MB), a folder of so few documents that it is split by position, a folder with a ':' in a
// file name (JSONL records are named "file:line", and the order of load_corpus would then
// interleave files).
bool stream_corpus(const std::string& path, const CorpusPieceFn& piece);

}  // namespace hippo
