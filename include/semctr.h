/* semctr — the public C API: load a model file written by `semctr train`
 * (or `semctr export`), score rows of raw feature values, free.
 *
 * The model file carries the dataset schema: the raw columns it reads, the
 * vocabularies, the join tables and the numeric transforms. So a caller
 * passes values exactly as they appear in the click log ("196", "242", ...),
 * keyed by column name, and gets one click probability per row.
 *
 *   semctr_model *m;
 *   semctr_error err;
 *   if (semctr_load(&m, "deepfm.model", NULL, &err)) { puts(err.message); ... }
 *   const char *cols[] = {"user_id", "item_id"};
 *   const char *cells[] = {"196", "242",   "186", "302"};   // 2 rows
 *   float p[2];
 *   if (semctr_score(m, 2, 2, cols, cells, p, &err)) { ... }
 *   semctr_free(m);
 *
 * Rules that hold for every function here:
 * - Every fallible call returns 0 (SEMCTR_OK) or a negative status, and when
 *   err is not NULL leaves a message there naming the file, row, column or
 *   tensor at fault. Nothing here exits, aborts or prints.
 * - There is no global state: two models are independent.
 * - A loaded model is immutable; semctr_score may be called on one model
 *   from any number of threads at once. Each concurrent call uses its own
 *   scoring context (activations, input buffers) from a pool of at most
 *   options.max_concurrency contexts; a call that finds every context busy
 *   waits for one. Each context holds a copy of the weights (see docs/api.md).
 * - Pointers passed in stay the caller's; nothing is kept after a call
 *   returns except what semctr_load documents.
 *
 * Link: `pkg-config --cflags --libs semctr` (a static library). */
#ifndef SEMCTR_H
#define SEMCTR_H

#ifdef __cplusplus
extern "C" {
#endif

#define SEMCTR_VERSION_MAJOR 0
#define SEMCTR_VERSION_MINOR 1
#define SEMCTR_VERSION_PATCH 0

/* Status codes (the same values as the library's internal ones). */
enum semctr_status {
    SEMCTR_OK = 0,
    SEMCTR_EINVAL = -1,      /* bad argument or bad input data */
    SEMCTR_EIO = -2,         /* a read or open failed */
    SEMCTR_ENOMEM = -3,      /* out of memory */
    SEMCTR_EFORMAT = -4,     /* the model file is malformed */
    SEMCTR_ENOTFOUND = -5,   /* a file or network does not exist */
    SEMCTR_EVERSION = -6,    /* the file has a format version this build cannot read */
    SEMCTR_EINTERRUPTED = -7,
    SEMCTR_EINTERNAL = -8,   /* a bug in semctr */
};

typedef struct semctr_error {
    int code;           /* enum semctr_status */
    char message[1024]; /* NUL-terminated, "" when code is SEMCTR_OK */
} semctr_error;

typedef struct semctr_model semctr_model;

typedef struct semctr_options {
    /* Network to serve from a multi-network file. NULL: the only network
     * of a plain model, "vanilla" for an ELEC model. ELEC's "gain" network
     * needs language-model vectors at request time and is refused. */
    const char *network;
    /* Most concurrent semctr_score calls that run at once (contexts in the
     * pool); 0 = the number of online CPUs. Contexts are created on first
     * need, so an unused slot costs nothing. */
    int max_concurrency;
    /* Rows a context scores in one forward pass; longer calls are split.
     * 0 = 1024. */
    int max_batch_rows;
    /* Threads one call uses inside a forward pass; 0 = 1 (the right choice
     * when calls already run concurrently). */
    int threads_per_call;
    /* MSD models: directory of the small encoder (e.g. all-MiniLM-L6-v2) used
     * to encode a new item from its "item_text" column when its id is not in
     * the model's tables. NULL: no encoder is loaded, such items get zeros.
     * Known items and users are always table lookups. */
    const char *encoder;
    /* Arithmetic of the dense layers: NULL or "f32" (float: the same scores,
     * bit for bit, as `semctr predict`), "bf16" (weights and layer inputs
     * rounded to bfloat16, sums in float: about twice the multiply rate on
     * CPUs with AVX512_BF16, scores within the tolerance docs/serve.md
     * gives; refused on a build without that kernel). */
    const char *precision;
} semctr_options;

/* Fill o with the defaults (every field 0 / NULL). */
void semctr_options_init(semctr_options *o);

/* Load and check a model file. *out is NULL on failure; on success the
 * caller owns it (semctr_free). opts may be NULL (defaults). The file is
 * read once; it may be replaced or deleted afterwards. */
int semctr_load(semctr_model **out, const char *path, const semctr_options *opts, semctr_error *err);

/* Release a model; NULL is fine. No semctr_score call on it may be running. */
void semctr_free(semctr_model *m);

/* Score n_rows rows. cells is (n_rows, n_cols), row-major: cells[r*n_cols+c]
 * is the raw value of column columns[c] in row r as text, NULL when the
 * value is missing. Missing values and columns take the model's policy
 * (categorical: the out-of-vocabulary id; numeric: the training fill value;
 * multi-valued and sequence: empty). Columns the model does not read are
 * ignored (semctr_input_columns lists those it reads). scores (n_rows) get
 * click probabilities in [0, 1]: a row the network scores as NaN or
 * infinite fails the call (SEMCTR_EINVAL, the message names the row).
 * Thread-safe. n_rows == 0 is a no-op. */
int semctr_score(semctr_model *m, int n_rows, int n_cols, const char *const *columns,
                 const char *const *cells, float *scores, semctr_error *err);

/* A typed cell for semctr_score_values: numbers are turned into the text a
 * click log would hold (242 -> "242", 0.5 -> "0.5"; integers beyond 2^53
 * lose digits, so send large ids as strings). */
typedef enum semctr_value_type { SEMCTR_MISSING = 0, SEMCTR_STRING = 1, SEMCTR_NUMBER = 2 } semctr_value_type;
typedef struct semctr_value {
    semctr_value_type type;
    const char *str; /* SEMCTR_STRING */
    double num;      /* SEMCTR_NUMBER; must be finite */
} semctr_value;

/* semctr_score with typed cells (n_rows, n_cols). Thread-safe. */
int semctr_score_values(semctr_model *m, int n_rows, int n_cols, const char *const *columns,
                        const semctr_value *cells, float *scores, semctr_error *err);

/* The raw columns the model reads (field sources, join keys, the label),
 * valid while m lives. Returns their count; *names may be NULL. */
int semctr_input_columns(const semctr_model *m, const char *const **names);

/* The network scored ("main", "vanilla"), its backbone ("deepfm", ...) and
 * the number of model fields; valid while m lives. */
const char *semctr_model_network(const semctr_model *m);
const char *semctr_model_backbone(const semctr_model *m);
int semctr_model_n_fields(const semctr_model *m);

/* Short text of a status code ("invalid input", ...). Never NULL. */
const char *semctr_strerror(int code);

/* "0.1.0" */
const char *semctr_version(void);

/* Whole commands, for bindings (the Python package, python/): each runs the
 * `semctr` command of its name with the same options, checks and messages,
 * and is in the shared library (`make BUILD=DIR CFLAGS=-fPIC DIR/libsemctr.so`),
 * not in libsemctr.a. Options are (key, value) pairs mirroring the command's
 * flags: key "epochs" or "--epochs", value "2"; a NULL value is a flag
 * ("json"). The command's progress log still goes to stderr; on failure
 * err->message is its error line. These calls run one at a time per process
 * (they capture file descriptors 1 and 2 while they run); semctr_score is not
 * held up by them. */
int semctr_prepare(const char *config, const char *out, semctr_error *err);
/* `semctr train`: keys "data", "model", "out", "method", "epochs", ... */
int semctr_train(int n_opts, const char *const *keys, const char *const *values, semctr_error *err);
/* `semctr eval --json`: *json gets its one JSON object (semctr_buffer_free). */
int semctr_evaluate(int n_opts, const char *const *keys, const char *const *values, char **json, semctr_error *err);
/* `semctr embed --input`: *vecs gets n * *dim floats, text i's vector at
 * i * *dim (semctr_buffer_free). model_dir NULL: the default encoder
 * (SEMCTR_MODEL, else ~/.cache/semctr/models/all-MiniLM-L6-v2). A newline in
 * a text is read as a space. */
int semctr_embed(int n, const char *const *texts, const char *model_dir, float **vecs, int *dim, semctr_error *err);
void semctr_buffer_free(void *p);

#ifdef __cplusplus
}
#endif

#endif
