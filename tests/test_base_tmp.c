/* Atomic writes killed before their rename: the temporary "<path>.tmp.<pid>"
 * they leave is removed by the next write of the same path once its process
 * is gone, and only then (a writer still running keeps its file). */
#include <criterion/criterion.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/file.h"

/* Fork a writer of path that gets as far as writing its temporary, then
 * either is killed (SIGKILL, as by the OOM killer or kill -9) or waits to
 * be. Returns its pid once the temporary exists. */
static pid_t writer(const char *path, int die) {
    int pipefd[2];
    cr_assert_eq(pipe(pipefd), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        sc_atomic_file f;
        if (sc_atomic_open(&f, path, NULL) || sc_atomic_write(&f, "partial", 7, NULL) || fflush(f.fp)) _exit(1);
        if (write(pipefd[1], "x", 1) != 1) _exit(1);
        if (die) raise(SIGKILL);
        pause();
        _exit(0);
    }
    char c;
    close(pipefd[1]);
    cr_assert_eq(read(pipefd[0], &c, 1), 1, "the writer did not start");
    close(pipefd[0]);
    return pid;
}

static int exists(const char *dir, const char *name, long pid) {
    char p[700];
    snprintf(p, sizeof p, "%s/%s.tmp.%ld", dir, name, pid);
    return access(p, F_OK) == 0;
}

Test(base_tmp, a_killed_writers_temporary_is_removed_once_its_process_is_gone) {
    char dir[] = "/tmp/sc_test_tmpXXXXXX";
    cr_assert(mkdtemp(dir));
    char path[600], other[600];
    snprintf(path, sizeof path, "%s/out.csv", dir);
    snprintf(other, sizeof other, "%s/out.csv.bak", dir);
    pid_t dead = writer(path, 1), dead_other = writer(other, 1), alive = writer(path, 0);
    int st;
    cr_assert_eq(waitpid(dead, &st, 0), dead);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    cr_assert_eq(waitpid(dead_other, &st, 0), dead_other);
    cr_assert(exists(dir, "out.csv", dead) && exists(dir, "out.csv", alive) && exists(dir, "out.csv.bak", dead_other));
    sc_atomic_file f;
    sc_error e;
    cr_assert_eq(sc_atomic_open(&f, path, &e), SC_OK, "%s", e.msg);
    cr_assert_eq(sc_atomic_write(&f, "whole", 5, &e), SC_OK);
    cr_assert_eq(sc_atomic_commit(&f, &e), SC_OK, "%s", e.msg);
    cr_assert(!exists(dir, "out.csv", dead), "the dead writer's temporary is still there");
    cr_assert(exists(dir, "out.csv", alive), "a running writer's temporary was removed");
    cr_assert(exists(dir, "out.csv.bak", dead_other), "another file's temporary was removed");
    kill(alive, SIGKILL);
    waitpid(alive, &st, 0);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}
