/* Chat templates for instruction models. A GGUF file's
 * tokenizer.chat_template is Jinja; instead of a Jinja engine, the family is
 * recognised by its markers and the prompt is written as that family's
 * template writes it for [system,] user + the assistant prefix
 * (add_generation_prompt):
 *
 *   ChatML (SmolLM2, Qwen): <|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n
 *     with no system message, the template's default system prompt when it
 *     has one (SmolLM2: "You are a helpful AI assistant named SmolLM, ...")
 *   Gemma: <bos><start_of_turn>user\nS\n\nU<end_of_turn>\n<start_of_turn>model\n
 *     (the system prompt is folded into the first user turn; contents trimmed)
 *   Llama 3: <|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>
 *     <|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n
 *     (contents trimmed) */
#ifndef SC_TEXT_CHAT_H
#define SC_TEXT_CHAT_H

#include "base/error.h"

enum sc_chat_family { SC_CHAT_CHATML = 0, SC_CHAT_GEMMA = 1, SC_CHAT_LLAMA3 = 2 };

/* Family of a Jinja chat template by its markers; SC_ENOTFOUND with a
 * message suggesting --raw for an unknown one. */
int sc_chat_family(const char *tmpl, int *family, sc_error *err);
const char *sc_chat_family_name(int family);

/* Format one exchange: system (NULL or "" for none) and user, followed by
 * the assistant prefix, as the template would. *out: sc_free. */
int sc_chat_format(const char *tmpl, const char *system, const char *user, char **out, sc_error *err);

/* tokenizer.chat_template of a GGUF file into *out (sc_free); *out = NULL
 * (and SC_OK) when the file has none. */
int sc_chat_template_from_gguf(const char *path, char **out, sc_error *err);

#endif
