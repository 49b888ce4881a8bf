/* cli: semctr generate answers with the default SmolLM2 model, is
 * deterministic, and rejects bad arguments and bad model files with an
 * exit code and a message. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "test_gguf_util.h"

Test(gguf_cli, generate_greedy, .timeout = 90) {
    static char a[8192], b[8192];
    const char *args = "--prompt \"$(printf '<|im_start|>user\\nName a fruit that is yellow.<|im_end|>\\n<|im_start|>assistant\\n')\" --max-tokens 8";
    cr_assert_eq(ggt_run_generate(args, a, sizeof a), 0, "%s", a);
    cr_assert(strlen(a) > 1, "empty output");
    cr_assert_eq(ggt_run_generate(args, b, sizeof b), 0, "%s", b);
    cr_assert_str_eq(a, b, "greedy generation is not deterministic");
}

Test(gguf_cli, bad_arguments) {
    static char out[8192];
    cr_assert_eq(ggt_run_generate("--prompt hi --max-tokens 0", out, sizeof out), 2, "%s", out);
    cr_assert(strstr(out, "--max-tokens"), "%s", out);
    cr_assert_eq(ggt_run_generate("--max-tokens 3", out, sizeof out), 2, "%s", out);
    cr_assert_eq(ggt_run_generate("--prompt hi --model /nonexistent/y.gguf", out, sizeof out), 1, "%s", out);
    cr_assert(strstr(out, "y.gguf"), "%s", out);
}
