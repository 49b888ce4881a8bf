/* The dataset folder as one unit (see datadir.h). */
#include "data/datadir.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/file.h"
#include "base/util.h"

static const char *const dataset_files[] = {"schema.scs", SC_META_FILE, "train.scd", "valid.scd", "test.scd", NULL};

int sc_datadir_is_dataset_file(const char *name) {
    for (int i = 0; dataset_files[i]; i++) {
        size_t n = strlen(dataset_files[i]);
        if (!strncmp(name, dataset_files[i], n) && (name[n] == 0 || !strncmp(name + n, ".tmp.", 5))) return 1;
    }
    return 0;
}

void sc_fault_point(const char *point) {
    const char *f = getenv("SEMCTR_FAULT");
    if (f && !strcmp(f, point)) raise(SIGKILL);
}

/* fsync a folder, so that the renames in it survive a power cut. */
static void sync_dir(const char *path) {
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

static void parent_of(const char *path, char *out, size_t cap) {
    snprintf(out, cap, "%s", path);
    char *slash = strrchr(out, '/');
    if (slash == out) out[1] = 0;
    else if (slash) *slash = 0;
    else snprintf(out, cap, ".");
}

/* ------------------------------------------------------------- discard */

void sc_datadir_discard(const char *stage, const char *final) {
    DIR *d = opendir(stage);
    if (!d) return;
    char kept[300] = "";
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char from[PATH_MAX + 256], to[PATH_MAX + 256];
        snprintf(from, sizeof from, "%s/%s", stage, e->d_name);
        snprintf(to, sizeof to, "%s/%s", final, e->d_name);
        if (sc_datadir_is_dataset_file(e->d_name)) {
            unlink(from);
            continue;
        }
        /* an extra: the same file in final (a link carry_extras made) goes; one final lacks moves there */
        struct stat a, b;
        int in_final = lstat(to, &b) == 0, absent = !in_final && errno == ENOENT;
        if (in_final && lstat(from, &a) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) unlink(from);
        else if (absent && rename(from, to) == 0) continue;
        else snprintf(kept + strlen(kept), sizeof kept - strlen(kept), "%s%s", kept[0] ? ", " : "", e->d_name);
    }
    closedir(d);
    if (rmdir(stage) != 0 && kept[0])
        sc_info("prepare: left %s: it holds %s, which %s also has; remove it when you no longer need it", stage, kept,
                final);
}

/* ------------------------------------------------------------- begin */

/* The run that made a stage folder "<base>.tmp-<pid>" is dead. */
static int stage_is_stale(const char *name, const char *base) {
    size_t bl = strlen(base);
    if (strncmp(name, base, bl) || strncmp(name + bl, ".tmp-", 5)) return 0;
    const char *digits = name + bl + 5;
    char *end;
    long pid = strtol(digits, &end, 10);
    if (!*digits || *end || pid <= 0 || pid == (long)getpid()) return 0;
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

int sc_datadir_begin(const char *dir, char *final, char *stage, size_t cap, sc_error *err) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s", dir);
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') path[--n] = 0;
    if (!n || !strcmp(path, "/")) return sc_fail(err, SC_EINVAL, "prepare: '%s' cannot hold a dataset; give a folder", dir);
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
        /* a link to the dataset elsewhere: replace the folder it points to, keep the link */
        char target[PATH_MAX];
        if (!realpath(path, target)) return sc_fail(err, SC_EIO, "%s: cannot follow the link: %s", dir, strerror(errno));
        snprintf(path, sizeof path, "%s", target);
    }
    if (stat(path, &st) == 0 && !S_ISDIR(st.st_mode))
        return sc_fail(err, SC_EINVAL, "prepare: --out %s exists and is not a folder", dir);
    /* an absolute path with a real parent: the stage goes beside it, on the same file system */
    char parent[PATH_MAX], rparent[PATH_MAX];
    parent_of(path, parent, sizeof parent);
    int rc = sc_mkdirs(parent, err);
    if (rc) return rc;
    if (!realpath(parent, rparent)) return sc_fail(err, SC_EIO, "%s: %s", parent, strerror(errno));
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    if (!strcmp(base, ".") || !strcmp(base, ".."))
        return sc_fail(err, SC_EINVAL, "prepare: --out %s: name the folder (prepare replaces it as a whole)", dir);
    if ((size_t)snprintf(final, cap, "%s%s%s", rparent, strcmp(rparent, "/") ? "/" : "", base) >= cap ||
        (size_t)snprintf(stage, cap, "%s.tmp-%ld", final, (long)getpid()) >= cap)
        return sc_fail(err, SC_EINVAL, "prepare: --out %s: path too long", dir);
    char cwd[PATH_MAX];
    size_t fl = strlen(final);
    if (getcwd(cwd, sizeof cwd) && !strncmp(cwd, final, fl) && (cwd[fl] == 0 || cwd[fl] == '/'))
        return sc_fail(err, SC_EINVAL,
                       "prepare: --out %s is the current folder or holds it; prepare replaces the folder as a whole, "
                       "so run it from elsewhere",
                       dir);
    /* stages of killed runs */
    DIR *d = opendir(rparent);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!stage_is_stale(e->d_name, base)) continue;
            char old[PATH_MAX + 256];
            snprintf(old, sizeof old, "%s/%s", rparent, e->d_name);
            sc_info("prepare: removing %s, left by a run that was killed", old);
            sc_datadir_discard(old, final);
        }
        closedir(d);
    }
    if (mkdir(stage, 0755) != 0) return sc_fail(err, SC_EIO, "%s: cannot create: %s", stage, strerror(errno));
    if (stat(final, &st) == 0) (void)chmod(stage, st.st_mode & 07777); /* the folder keeps its permissions */
    return SC_OK;
}

/* ------------------------------------------------------------- commit */

/* Hard-link the regular files of final that are not dataset files into
 * stage, so both folders have them whenever the exchange happens. */
static void carry_extras(const char *stage, const char *final) {
    DIR *d = opendir(final);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || sc_datadir_is_dataset_file(e->d_name)) continue;
        char from[PATH_MAX + 256], to[PATH_MAX + 256];
        struct stat st;
        snprintf(from, sizeof from, "%s/%s", final, e->d_name);
        snprintf(to, sizeof to, "%s/%s", stage, e->d_name);
        if (lstat(from, &st) == 0 && S_ISREG(st.st_mode)) (void)link(from, to); /* else moved after the exchange */
    }
    closedir(d);
}

int sc_datadir_commit(const char *stage, const char *final, sc_error *err) {
    char parent[PATH_MAX];
    parent_of(final, parent, sizeof parent);
    sync_dir(stage);
    struct stat st;
    if (lstat(final, &st) != 0) {
        if (rename(stage, final) != 0)
            return sc_fail(err, SC_EIO, "%s: cannot rename %s into place: %s", final, stage, strerror(errno));
        sync_dir(parent);
        return SC_OK;
    }
    carry_extras(stage, final);
    sc_fault_point("prepare.exchange");
    if (renameat2(AT_FDCWD, stage, AT_FDCWD, final, RENAME_EXCHANGE) != 0) {
        int e = errno;
        if (e != EINVAL && e != ENOSYS && e != ENOTSUP)
            return sc_fail(err, SC_EIO, "%s: cannot exchange with %s: %s", final, stage, strerror(e));
        /* a file system without atomic exchange: two renames, with a moment between them without final */
        char old[PATH_MAX + 32];
        snprintf(old, sizeof old, "%s.old-%ld", final, (long)getpid());
        if (rename(final, old) != 0)
            return sc_fail(err, SC_EIO, "%s: cannot move aside: %s", final, strerror(errno));
        if (rename(stage, final) != 0) {
            e = errno;
            (void)rename(old, final);
            return sc_fail(err, SC_EIO, "%s: cannot rename %s into place: %s", final, stage, strerror(e));
        }
        sync_dir(parent);
        sc_datadir_discard(old, final);
        return SC_OK;
    }
    sync_dir(parent);
    sc_fault_point("prepare.exchanged");
    sc_datadir_discard(stage, final); /* stage now holds the previous dataset */
    return SC_OK;
}

/* ------------------------------------------------------------- check */

int sc_datadir_check_file(const char *path, uint64_t checksum, sc_error *err) {
    char dir[PATH_MAX], meta[PATH_MAX + 32];
    parent_of(path, dir, sizeof dir);
    const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    snprintf(meta, sizeof meta, "%s/%s", dir, SC_META_FILE);
    char *text = NULL;
    size_t len;
    sc_error e2 = {0};
    if (sc_read_file(meta, &text, &len, &e2))
        return sc_fail(err, SC_EFORMAT,
                       "%s: %s is missing, so nothing says which files of %s belong together (written by an "
                       "interrupted or older `semctr prepare`?); re-run `semctr prepare --config CONFIG --out %s`",
                       path, meta, dir, dir);
    cJSON *root = cJSON_ParseWithLength(text, len);
    sc_free(text);
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(root, "files");
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(root, "config");
    const cJSON *entry = cJSON_GetObjectItemCaseSensitive(files, name);
    const cJSON *sum = cJSON_GetObjectItemCaseSensitive(entry, "checksum");
    char want[17];
    snprintf(want, sizeof want, "%016llx", (unsigned long long)checksum);
    char rerun[PATH_MAX + 600];
    snprintf(rerun, sizeof rerun, "re-run `semctr prepare --config %s --out %s`",
             cJSON_IsString(cfg) ? cfg->valuestring : "CONFIG", dir);
    int rc = SC_OK;
    if (!cJSON_IsObject(files))
        rc = sc_fail(err, SC_EFORMAT, "%s: %s lists no files (written by an older semctr); %s", path, meta, rerun);
    else if (!cJSON_IsString(sum))
        rc = sc_fail(err, SC_EFORMAT, "%s: %s does not list this file, so it does not belong to the dataset; %s", path,
                     meta, rerun);
    else if (strcmp(sum->valuestring, want))
        rc = sc_fail(err, SC_EFORMAT,
                     "%s does not belong with the other files of %s (checksum %s, %s lists %.20s): the folder mixes "
                     "files of different `semctr prepare` runs; %s",
                     path, dir, want, meta, sum->valuestring, rerun);
    cJSON_Delete(root);
    return rc;
}
