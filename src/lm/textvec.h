/* Text vectors from either kind of language model semctr runs: a BERT-family
 * encoder (a Hugging Face model directory; pooling and normalisation as its
 * sentence-transformers config says) or a Llama-family decoder (a .gguf file;
 * the mean of the last hidden states over the text's tokens). ELEC and
 * `semctr embed` take either through this one interface. */
#ifndef SC_LM_TEXTVEC_H
#define SC_LM_TEXTVEC_H

#include "base/error.h"
#include "lm/encoder.h"
#include "lm/llama.h"

typedef struct sc_textvec {
    sc_encoder *enc; /* set for an encoder ... */
    sc_llama *llm;   /* ... or for a decoder */
    int dim;
    int normalize;   /* L2-normalise each vector */
    char name[256];  /* the model's base name */
} sc_textvec;

/* path: a model directory (encoder) or a file ending in .gguf (decoder).
 * normalize starts as the encoder's config says, off for a decoder. */
int sc_textvec_open(sc_textvec *t, const char *path, int n_threads, sc_error *err);
void sc_textvec_set_normalize(sc_textvec *t, int on);
/* out (n, dim), row i for texts[i]. */
int sc_textvec_encode(sc_textvec *t, const char *const *texts, int n, float *out, sc_error *err);
void sc_textvec_close(sc_textvec *t);

#endif
