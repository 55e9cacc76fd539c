// Tokenizers turn text (bytes, normally UTF-8) into token ids and back. The interface is public
// (include/hippo/tokenizer.hpp); the implementations live beside this file.
#pragma once
#include "hippo/tokenizer.hpp"
