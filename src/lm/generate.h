/* Text generation with a decoder LLM (lm/llama.h): greedy decoding or
 * temperature / top-k / top-p sampling with a seed, stop strings matched on
 * the decoded text (also across token boundaries), a token limit, and the
 * end-of-sequence / end-of-turn tokens of the common instruction families
 * (<|im_end|>, <end_of_turn>, <|eot_id|>). Streaming: an optional callback
 * gets the text as it is produced, held back while it could still be the
 * beginning of a stop string, so a stop string is never printed.
 *
 * Determinism: one sc_rng seeded with params.seed draws one uniform number
 * per sampled token, and candidates are ordered by (logit, id), so the same
 * model, prompt and parameters give the same text on every run. */
#ifndef SC_LM_GENERATE_H
#define SC_LM_GENERATE_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "base/util.h"
#include "lm/llama.h"

#define SC_GEN_MAX_STOPS 16
/* prompts run in chunks of this many positions (aligned), with or without a cache */
#define SC_GEN_CHUNK 64

typedef struct sc_gen_params {
    int max_tokens;      /* >= 1 */
    float temperature;   /* 0: greedy (argmax, lowest id on ties) */
    float top_p;         /* (0, 1]; 1: off */
    int top_k;           /* 0: off */
    uint64_t seed;
    const char *stops[SC_GEN_MAX_STOPS]; /* stop strings (non-empty), matched on the decoded text */
    int n_stops;
} sc_gen_params;

/* Defaults: 64 tokens, greedy, top_p 1, top_k 0, seed 0, no stop strings. */
void sc_gen_params_default(sc_gen_params *p);

/* Why generation ended. */
enum { SC_GEN_END_EOS = 0, SC_GEN_END_STOP = 1, SC_GEN_END_LENGTH = 2, SC_GEN_END_CONTEXT = 3 };

typedef struct sc_gen_result {
    char *text;          /* generated text (no prompt, no stop string), sc_free */
    size_t len;
    int n_prompt;        /* prompt tokens */
    int n_generated;     /* tokens sampled (the end token included) */
    int end;             /* SC_GEN_END_* */
    double prompt_s, gen_s; /* seconds in prompt processing and in the generation loop */
} sc_gen_result;

/* Streaming callback: bytes of text, final (never a stop-string prefix that
 * later turns into a stop). Return non-zero to stop early. */
typedef int (*sc_gen_emit)(void *ctx, const char *text, size_t len);

/* Prompt cache: the tokens whose keys and values are in the model's KV
 * cache. Given to sc_generate, the longest common prefix of the new prompt's
 * tokens and these is kept and only the rest is computed (llama.cpp's
 * prompt cache): a shared system prompt, or a transcript that grows field by
 * field, costs its new tokens only. The result is the same as without it.
 * Zero-initialise; sc_gen_cache_free releases it. Valid only with the model
 * it was used with, and only while nothing else runs that model. */
typedef struct sc_gen_cache {
    int32_t *toks;
    int n, cap;
    int n_canon;  /* leading positions computed as prompt chunks (the rest: generated one by one) */
    int extend;   /* set by the caller: 1 reuses every matching cached position, also those
                     generated one by one: cheaper, but the text then depends on what ran
                     before (a transcript extended turn by turn is the same in every run) */
} sc_gen_cache;
void sc_gen_cache_free(sc_gen_cache *c);

/* Check p: errors name the parameter (max_tokens, temperature, top_p,
 * top_k, stop). */
int sc_gen_params_check(const sc_gen_params *p, sc_error *err);

/* Generate a continuation of prompt (tokenised with special tokens parsed,
 * no BOS added: chat templates write it) on a fresh KV cache. emit may be
 * NULL. res->text is set on success (free with sc_gen_result_free). Errors:
 * bad parameters, an empty prompt, a prompt longer than the KV cache. */
int sc_generate(sc_llama *m, const char *prompt, const sc_gen_params *p, sc_gen_emit emit, void *ctx,
                sc_gen_result *res, sc_error *err);
/* The same with a prompt cache (NULL: none). */
int sc_generate_cached(sc_llama *m, sc_gen_cache *cache, const char *prompt, const sc_gen_params *p, sc_gen_emit emit,
                       void *ctx, sc_gen_result *res, sc_error *err);
void sc_gen_result_free(sc_gen_result *res);

/* One generation of a batch (sc_generate_batch). */
typedef struct sc_gen_job {
    const char *prompt;
    const sc_gen_params *params;
    sc_llama_kv *kv;       /* its sequence (sc_llama_kv_new); NULL: the model's own. One job per cache. */
    sc_gen_cache *cache;   /* its prompt cache, for that kv; may be NULL */
    sc_gen_emit emit;      /* may be NULL */
    void *ctx;
    sc_gen_result res;     /* out: free with sc_gen_result_free */
} sc_gen_job;

/* Run n generations together: the prompts in one forward pass, then one
 * token of every unfinished job per pass (sc_llama_forward_batch), so the
 * weights are read once per step for all of them. Each job's result is
 * exactly what sc_generate_cached gives for it alone on its own sequence
 * (same text; prompt_s is the shared prompt pass, gen_s the time until the
 * job ended). On an error every result is freed and *failed (may be NULL)
 * names the job at fault, -1 when none in particular. */
int sc_generate_batch(sc_llama *m, sc_gen_job *jobs, int n, int *failed, sc_error *err);

/* One sampling step over logits[V] (modified in place: scaled and turned
 * into probabilities). order is scratch of V ints. Greedy when
 * temperature <= 0. Stateless apart from rng. */
int32_t sc_sample_token(float *logits, int V, const sc_gen_params *p, sc_rng *rng, int32_t *order);

/* Length of the longest suffix of text[0..len) that is a proper prefix of a
 * stop string (text that must be held back while streaming); and the first
 * position >= from where a stop string starts, or -1. */
size_t sc_stop_holdback(const char *text, size_t len, const char *const *stops, int n_stops);
long sc_stop_find(const char *text, size_t len, size_t from, const char *const *stops, int n_stops);

#endif
