#include "base/file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/util.h"

int sc_mmap_open(sc_mmap *m, const char *path, sc_error *err) {
    m->data = NULL;
    m->size = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return sc_fail(err, errno == ENOENT ? SC_ENOTFOUND : SC_EIO,
                               "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return sc_fail(err, SC_EIO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return sc_fail(err, SC_EINVAL, "%s: is a directory, expected a file", path);
    }
    if (st.st_size > 0) {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            return sc_fail(err, SC_EIO, "%s: cannot mmap: %s", path, strerror(e));
        }
        m->data = p;
        m->size = (size_t)st.st_size;
    }
    close(fd);
    return SC_OK;
}

void sc_mmap_close(sc_mmap *m) {
    if (m->data) munmap((void *)m->data, m->size);
    m->data = NULL;
    m->size = 0;
}

int sc_read_file(const char *path, char **out, size_t *out_len, sc_error *err) {
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) return sc_fail(err, errno == ENOENT ? SC_ENOTFOUND : SC_EIO,
                            "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, len = 0;
    char *buf = sc_malloc(cap);
    if (!buf) {
        fclose(fp);
        return sc_fail(err, SC_ENOMEM, "%s: out of memory", path);
    }
    for (;;) {
        if (len + 1 >= cap) {
            char *nb = sc_realloc(buf, cap * 2);
            if (!nb) {
                sc_free(buf);
                fclose(fp);
                return sc_fail(err, SC_ENOMEM, "%s: out of memory", path);
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + len, 1, cap - len - 1, fp);
        len += got;
        if (got == 0) break;
    }
    int bad = ferror(fp);
    fclose(fp);
    if (bad) {
        sc_free(buf);
        return sc_fail(err, SC_EIO, "%s: read error", path);
    }
    buf[len] = '\0';
    *out = buf;
    if (out_len) *out_len = len;
    return SC_OK;
}

/* Remove the "<path>.tmp.<pid>" files of writers that were killed before
 * they renamed or removed them: only those whose process no longer runs
 * (kill(pid, 0) fails with ESRCH), so a write in progress is never touched.
 * A pid reused by an unrelated process keeps its file until that process
 * ends. (A writer in another pid namespace sharing the directory would look
 * gone: its commit then fails with an error, it never half-writes.) */
static void remove_stale_temporaries(const char *path) {
    char dir[4096];
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    if (slash) snprintf(dir, sizeof dir, "%.*s", (int)(slash == path ? 1 : slash - path), path);
    else snprintf(dir, sizeof dir, ".");
    size_t bl = strlen(base);
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        if (strncmp(n, base, bl) || strncmp(n + bl, ".tmp.", 5)) continue;
        const char *digits = n + bl + 5;
        char *end;
        errno = 0;
        long pid = strtol(digits, &end, 10);
        if (errno || end == digits || *end || pid <= 0 || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* alive, or not ours to ask: keep */
        char stale[sizeof dir + 260];
        snprintf(stale, sizeof stale, "%s/%s", dir, n);
        if (unlink(stale) == 0) sc_info("removed %s, left by process %ld, which no longer runs", stale, pid);
    }
    closedir(d);
}

int sc_atomic_open(sc_atomic_file *f, const char *path, sc_error *err) {
    f->fp = NULL;
    if (strlen(path) >= sizeof f->path)
        return sc_fail(err, SC_EINVAL, "path too long: %.100s...", path);
    remove_stale_temporaries(path);
    snprintf(f->path, sizeof f->path, "%s", path);
    snprintf(f->tmp, sizeof f->tmp, "%s.tmp.%ld", path, (long)getpid());
    f->fp = fopen(f->tmp, "wb");
    if (!f->fp) return sc_fail(err, SC_EIO, "%s: cannot create: %s", f->tmp, strerror(errno));
    return SC_OK;
}

int sc_atomic_write(sc_atomic_file *f, const void *buf, size_t n, sc_error *err) {
    if (n && fwrite(buf, 1, n, f->fp) != n)
        return sc_fail(err, SC_EIO, "%s: write failed: %s", f->path, strerror(errno));
    return SC_OK;
}

int sc_atomic_commit(sc_atomic_file *f, sc_error *err) {
    if (!f->fp) return sc_fail(err, SC_EINTERNAL, "%s: commit without open", f->path);
    int bad = fflush(f->fp) != 0 || ferror(f->fp) || fsync(fileno(f->fp)) != 0;
    int e = errno;
    if (fclose(f->fp) != 0) bad = 1;
    f->fp = NULL;
    if (bad) {
        unlink(f->tmp);
        return sc_fail(err, SC_EIO, "%s: write failed: %s", f->path, strerror(e));
    }
    if (rename(f->tmp, f->path) != 0) {
        e = errno;
        unlink(f->tmp);
        return sc_fail(err, SC_EIO, "%s: cannot rename into place: %s", f->path, strerror(e));
    }
    return SC_OK;
}

void sc_atomic_abort(sc_atomic_file *f) {
    if (f->fp) {
        fclose(f->fp);
        f->fp = NULL;
        unlink(f->tmp);
    }
}

int sc_mkdirs(const char *path, sc_error *err) {
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return sc_fail(err, SC_EINVAL, "path too long: %.100s...", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return sc_fail(err, SC_EIO, "%s: cannot create directory: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return sc_fail(err, SC_EIO, "%s: cannot create directory: %s", buf, strerror(errno));
    return SC_OK;
}

int sc_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}
