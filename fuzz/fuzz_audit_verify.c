/*
 * fuzz_audit_verify.c - libFuzzer target for the audit-log reader and
 * verifier: audit_verify_dir() (src/audit_verify.c) over a directory whose
 * files hold the fuzzer's bytes, read through audit_line_read()
 * (src/audit_line.c).
 *
 * Input layout: the input is cut into at most MAX_FILES parts at each
 * two-byte separator FF FF (no line notesd writes holds a byte 0xFF, so any
 * single FF still reaches the parser). Each part becomes one file:
 *  - a part that begins with a rotated file's name and a newline
 *    ("audit-YYYYMMDDTHHMMSSZ-<20 digits>.log\n") is that file, the rest of
 *    the part its contents;
 *  - otherwise the last part is audit.log and every other part is a rotated
 *    file named audit-20240101T000000Z-<its index + 1, 20 digits>.log;
 *  - a part whose name was already taken is dropped.
 * Inside a part, the three bytes FE L X stand for (L + 1) * 512 copies of X
 * (no written line holds FE either), so short inputs can make the lines
 * longer than the verifier's 64 KiB read buffer; a file is capped at
 * FILE_MAX bytes.
 *
 * The chain key is derived from a fixed pattern used only here (the same
 * generator as fuzz_field_decrypt's, another seed). The target aborts when:
 *  1. audit_verify_dir() returns anything but 0 or ERR_INVALID (the files
 *     are regular and readable, so ERR_IO would be a bug);
 *  2. the report is not printable ASCII lines, or says "OK:" on failure, or
 *     lacks it on success (nothing of a hostile file may reach a terminal);
 *  3. a directory that verified still verifies after one byte of a line is
 *     changed, tried for every line (up to MAX_EDITS; the offset in each is
 *     chosen from the input): the chain must notice every edit;
 *  4. audit_read_tail() / audit_read_first(), which audit_open() uses on the
 *     same files at start-up, fail other than documented, or the torn tail
 *     they report is not exactly the bytes after the last newline.
 *
 * Files go to a fresh directory in /dev/shm (else $TMPDIR), removed at exit;
 * a run that stops on a finding leaves it behind (notesd-fuzz-audit-*).
 * NOTESD_FUZZ_REPORT=1 prints each report to stderr (to replay one input).
 *
 * Seeds: with NOTESD_FUZZ_MAKE_SEEDS=DIR in the environment,
 * LLVMFuzzerInitialize writes real signed logs, made by audit.c under the
 * same key, in the layout above to DIR (fuzz/README.md).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit.h"
#include "audit_int.h"
#include "config.h"
#include "crypto.h"
#include "err.h"

#define MAX_FILES 6
#define FILE_MAX (1u << 20)
#define RUN_MAX 512u
#define MAX_EDITS 64                  /* lines edited per verified input */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct crypto *crypto;
static char dir[4096];
static bool show_report;              /* NOTESD_FUZZ_REPORT=1 */

struct part {
    char name[AUDIT_NAME_MAX + 1];
    uint8_t *data;
    size_t len;
};

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_audit_verify: invariant broken: %s\n", what);
        abort();
    }
}

/* The generator of fuzz_field_decrypt.c: fixed, fuzz-only, and given to
 * crypto_new() directly (config.c refuses counters as keys). */
static void fill(struct config_secret *s, unsigned seed, size_t len)
{
    for (size_t i = 0; i < len; i++)
        s->bytes[i] = (uint8_t)(seed * 53u + i * 7u + 3u);
    s->len = len;
}

static void base_config(struct config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    fill(&cfg->data_key, 10, 32);
    fill(&cfg->token_key, 11, 32);
    fill(&cfg->audit_key, 12, 48);
    cfg->argon2_m_kib = CRYPTO_ARGON2_M_MIN;
    cfg->argon2_t = CRYPTO_ARGON2_T_MIN;
    cfg->argon2_p = CRYPTO_ARGON2_P_MIN;
    cfg->audit_max_bytes = 10485760;
    cfg->audit_max_files = 10;
    cfg->audit_retention_days = 3650;
    cfg->audit_sync = CONFIG_AUDIT_SYNC_OFF;
    cfg->audit_ip = CONFIG_AUDIT_IP_FULL;
}

/* Remove every file in `path` (the directory stays). */
static void empty_dir(const char *path)
{
    DIR *d = opendir(path);
    check(d != NULL, "opendir");
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            char p[8192];
            snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
            unlink(p);
        }
    closedir(d);
}

static void remove_dir(void)
{
    if (dir[0]) {
        empty_dir(dir);
        rmdir(dir);
    }
}

static void write_file(const char *path, const uint8_t *p, size_t n)
{
    /* p may be NULL only when n is 0. */
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    check(fd >= 0, "create a file in the temporary directory");
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        check(w > 0, "write a file in the temporary directory");
        p += w, n -= (size_t)w;
    }
    check(close(fd) == 0, "close");
}

/* ---- seeds --------------------------------------------------------------- */

static const uint8_t seed_ip[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 7 };

static void seed_events(struct audit *a, int n)
{
    static const char *events[] = { "auth.login", "note.create", "note.read", "note.update",
                                    "note.delete", "admin.note.read" };
    for (int i = 0; i < n; i++) {
        struct audit_event ev = {
            .event = events[i % 6], .actor_id = 1 + i % 3, .role = i % 5 ? "user" : "admin",
            .request_id = "fuzz-seed", .resource_type = "note", .resource_id = i + 1,
            .result = i % 4 ? AUDIT_SUCCESS : AUDIT_DENY, .status = i % 4 ? 200 : 403,
            .reason = i % 4 ? NULL : "forbidden", .ip = seed_ip,
            .detail = i % 7 == 3 ? "title\t\"\\\xc3\xa9" : NULL,
        };
        check(audit_record(a, &ev) == 0, "seed audit_record");
    }
}

static struct audit *seed_open(const struct config *cfg)
{
    struct audit *a = NULL;
    char err[CONFIG_ERR_MAX] = "";
    if (audit_open(&a, cfg, crypto, err, sizeof(err)) != 0) {
        fprintf(stderr, "seed audit_open: %s\n", err);
        abort();
    }
    return a;
}

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    check(f != NULL, "seed: read back a log file");
    uint8_t *p = malloc(FILE_MAX);
    check(p != NULL, "malloc");
    *n = fread(p, 1, FILE_MAX, f);
    fclose(f);
    return p;
}

static int by_name(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

/* Pack the files of `dir` into one input: rotated files by seq (their names
 * sort that way), then audit.log, each behind its name; `skip_current`
 * leaves audit.log out. */
static void seed_pack(const char *out_dir, const char *name, bool skip_current)
{
    char *names[64];
    size_t n = 0;
    DIR *d = opendir(dir);
    check(d != NULL, "opendir");
    struct dirent *e;
    uint64_t seq;
    while ((e = readdir(d)) != NULL)
        if (audit_name_parse(e->d_name, &seq) && n < 64)
            names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, n, sizeof(names[0]), by_name);
    char path[8192];
    snprintf(path, sizeof(path), "%s/%s", out_dir, name);
    FILE *f = fopen(path, "wb");
    check(f != NULL, "seed: create the seed file");
    for (size_t i = 0; i <= n; i++) {
        const char *fname = i < n ? names[i] : AUDIT_CURRENT;
        if (i == n && skip_current)
            break;
        char p[8192];
        snprintf(p, sizeof(p), "%s/%s", dir, fname);
        size_t len;
        uint8_t *c = slurp(p, &len);
        if (i > 0)
            fwrite("\xff\xff", 1, 2, f);
        if (i < n)
            fprintf(f, "%s\n", fname);
        fwrite(c, 1, len, f);
        free(c);
        if (i < n)
            free(names[i]);
    }
    check(fclose(f) == 0, "seed: write the seed file");
}

static void make_seeds(const char *out_dir)
{
    struct config cfg;
    base_config(&cfg);
    cfg.audit_dir = dir;

    /* One file from the first line. */
    empty_dir(dir);
    struct audit *a = seed_open(&cfg);
    seed_events(a, 5);
    audit_close(a);
    seed_pack(out_dir, "single-file", false);

    /* Rotation: three small files and audit.log, chained by rotate records. */
    empty_dir(dir);
    cfg.audit_max_bytes = 1024;
    a = seed_open(&cfg);
    seed_events(a, 8);
    audit_close(a);
    seed_pack(out_dir, "rotated", false);
    seed_pack(out_dir, "rotated-no-current", true);

    /* Retention: the oldest files pruned, the head explained by a record. */
    empty_dir(dir);
    cfg.audit_max_files = 2;
    a = seed_open(&cfg);
    seed_events(a, 10);
    audit_close(a);
    seed_pack(out_dir, "pruned-head", false);

    /* A torn tail (a crash inside a write), explained on reopen. */
    empty_dir(dir);
    cfg.audit_max_bytes = 10485760;
    cfg.audit_max_files = 10;
    a = seed_open(&cfg);
    seed_events(a, 3);
    audit_close(a);
    char p[8192];
    snprintf(p, sizeof(p), "%s/%s", dir, AUDIT_CURRENT);
    size_t len;
    uint8_t *c = slurp(p, &len);
    check(len > 40, "seed: a log to tear");
    write_file(p, c, len - 40);
    free(c);
    a = seed_open(&cfg);
    seed_events(a, 2);
    audit_close(a);
    seed_pack(out_dir, "torn-tail-explained", false);
    empty_dir(dir);
}

/* ---- the target ---------------------------------------------------------- */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    check(crypto_init() == 0, "crypto_init");
    struct config cfg;
    base_config(&cfg);
    char err[CONFIG_ERR_MAX] = "";
    if (crypto_new(&crypto, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "crypto_new: %s\n", err);
        abort();
    }
    config_free(&cfg);
    /* Every input writes and removes files: in memory when /dev/shm is
     * there (a third of the time on ext4 goes to the journal). */
    const char *tmp = getenv("TMPDIR");
    if (access("/dev/shm", W_OK) == 0)
        tmp = "/dev/shm";
    snprintf(dir, sizeof(dir), "%s/notesd-fuzz-audit-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    check(mkdtemp(dir) != NULL, "mkdtemp");
    atexit(remove_dir);
    const char *show = getenv("NOTESD_FUZZ_REPORT");
    show_report = show && strcmp(show, "1") == 0;
    const char *seeds = getenv("NOTESD_FUZZ_MAKE_SEEDS");
    if (seeds && *seeds)
        make_seeds(seeds);
    /* A lock file, as a writer leaves it: verify takes it shared. */
    char lock[8192];
    snprintf(lock, sizeof(lock), "%s/%s", dir, AUDIT_LOCK);
    write_file(lock, NULL, 0);
    return 0;
}

/* Part `p` of the input, bytes [0, n): its name and its expanded contents. */
static void make_part(struct part *out, size_t index, bool last, const uint8_t *p, size_t n)
{
    const uint8_t *nl = memchr(p, '\n', n < AUDIT_NAME_MAX + 1 ? n : AUDIT_NAME_MAX + 1);
    uint64_t seq;
    out->name[0] = '\0';
    if (nl && (size_t)(nl - p) == AUDIT_NAME_MAX) {
        memcpy(out->name, p, AUDIT_NAME_MAX);
        out->name[AUDIT_NAME_MAX] = '\0';
        if (audit_name_parse(out->name, &seq)) {
            n -= AUDIT_NAME_MAX + 1;
            p += AUDIT_NAME_MAX + 1;
        } else {
            out->name[0] = '\0';
        }
    }
    if (!out->name[0] && last)
        memcpy(out->name, AUDIT_CURRENT, sizeof(AUDIT_CURRENT));
    else if (!out->name[0])
        snprintf(out->name, sizeof(out->name), "audit-20240101T000000Z-%020zu.log", index + 1);
    /* Twice: to size the file, then to fill it. */
    out->data = NULL;
    for (int pass = 0; pass < 2; pass++) {
        size_t len = 0;
        for (size_t i = 0; i < n && len < FILE_MAX;) {
            size_t run = 1;
            uint8_t byte = p[i];
            if (p[i] == 0xfe && i + 2 < n) {
                run = ((size_t)p[i + 1] + 1) * RUN_MAX;
                byte = p[i + 2];
                i += 3;
            } else {
                i++;
            }
            if (run > FILE_MAX - len)
                run = FILE_MAX - len;
            if (out->data)
                memset(out->data + len, byte, run);
            len += run;
        }
        out->len = len;
        if (pass == 0) {
            out->data = malloc(len ? len : 1);
            check(out->data != NULL, "malloc");
        }
    }
}

/* Verify `dir`; the report must be printable ASCII lines. Returns rc. */
static int verify(void)
{
    char *report = NULL;
    size_t report_len = 0;
    FILE *f = open_memstream(&report, &report_len);
    check(f != NULL, "open_memstream");
    int rc = audit_verify_dir(dir, crypto, NULL, f);
    check(fclose(f) == 0, "fclose report");
    check(rc == 0 || rc == ERR_INVALID, "audit_verify_dir returned other than 0 or ERR_INVALID");
    check(report_len > 0 && report[report_len - 1] == '\n', "the report does not end a line");
    for (size_t i = 0; i < report_len; i++)
        check(report[i] == '\n' || (report[i] >= 0x20 && report[i] < 0x7f),
              "the report holds a byte that is not printable ASCII");
    bool ok_line = strncmp(report, "OK: ", 4) == 0 || strstr(report, "\nOK: ") != NULL;
    check(rc == 0 ? ok_line : !ok_line, "the report's OK line disagrees with the result");
    if (show_report)
        fprintf(stderr, "audit_verify_dir: %d\n%s", rc, report);
    free(report);
    return rc;
}

/* Change byte `at` of file `f` by `x`, check that the chain no longer
 * verifies, and put the byte back. */
static void edit(struct part *f, size_t at, uint8_t x)
{
    char p[8192];
    snprintf(p, sizeof(p), "%s/%s", dir, f->name);
    f->data[at] ^= x;
    write_file(p, f->data, f->len);
    check(verify() == ERR_INVALID, "a directory with one byte changed still verifies");
    f->data[at] ^= x;
    write_file(p, f->data, f->len);
}

/* Whether the line data[a..b) (no newline) is what a crash leaves of one:
 * not empty, and the start of a line (audit_cut_shape()). */
static bool crash_cut(const uint8_t *data, size_t a, size_t b)
{
    struct audit_cut c;
    audit_cut_shape(data + a, b - a, &c);
    return b > a && c.shape;
}

/* The torn span audit_read_tail() reports is the bytes after its last
 * record: what follows the last newline, and before it only whole lines a
 * crash could have cut (a second crash cutting the record meant to explain
 * the first); the line before the span is none of those, unless what
 * follows the last newline is a signed record (the one that explained
 * them, cut before its newline): then that alone is the span. */
static void check_torn_span(const struct part *f, const struct audit_tail *t)
{
    const uint8_t *d = (const uint8_t *)f->data;
    size_t span = t->torn ? (size_t)t->torn_bytes + t->torn_ended : 0;
    check(span <= f->len, "audit_read_tail's torn span is longer than the file");
    check(!t->torn || span > 0, "audit_read_tail reported an empty torn span");
    size_t from = f->len - span;
    check(from == 0 || d[from - 1] == '\n', "audit_read_tail's torn span does not begin a line");
    check(!t->torn || t->torn_ended == (d[f->len - 1] == '\n'), "audit_read_tail's torn_ended is wrong");
    check(t->torn || f->len == 0 || d[f->len - 1] == '\n', "audit_read_tail missed a torn tail");
    for (size_t a = from, b; a < f->len; a = b + 1) {
        const uint8_t *nl = memchr(d + a, '\n', f->len - a);
        if (!nl)
            break;                             /* the bytes after the last newline: anything */
        b = (size_t)(nl - d);
        check(crash_cut(d, a, b), "audit_read_tail's torn span holds a line no crash leaves");
    }
    struct audit_line tail;
    bool tail_signed = t->torn && !t->torn_ended && memchr(d + from, '\n', span) == NULL &&
                       audit_line_read(crypto, d + from, span, &tail) == 0 && tail.mac_ok && tail.parsed;
    if (from > 0 && !tail_signed) {
        size_t a = from - 1;
        while (a > 0 && d[a - 1] != '\n')
            a--;
        check(!crash_cut(d, a, from - 1), "audit_read_tail stopped its torn span before a crash's line");
    }
    check(t->has_line == (from > 0), "audit_read_tail's last line");
}

/* audit_read_tail() and audit_read_first() on one file. */
static void read_ends(const struct part *f)
{
    char p[8192];
    snprintf(p, sizeof(p), "%s/%s", dir, f->name);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    check(fd >= 0, "open a written file");
    struct audit_tail t;
    int rc = audit_read_tail(crypto, fd, f->len, &t);
    check(rc == 0 || rc == ERR_LIMIT, "audit_read_tail returned other than 0 or ERR_LIMIT");
    if (rc == 0)
        check_torn_span(f, &t);
    struct audit_line l;
    check(audit_read_first(fd, f->len, &l) == 0, "audit_read_first failed on a readable file");
    check(!l.mac_ok, "audit_read_first checked a MAC it was not asked to");
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct part parts[MAX_FILES];
    size_t n = 0, start = 0;
    while (n < MAX_FILES) {
        size_t end = size;
        if (n + 1 < MAX_FILES)
            for (size_t i = start; i + 1 < size; i++)
                if (data[i] == 0xff && data[i + 1] == 0xff) {
                    end = i;
                    break;
                }
        bool last = end == size;
        make_part(&parts[n], n, last, data + start, end - start);
        bool taken = false;
        for (size_t j = 0; j < n; j++)
            taken = taken || strcmp(parts[j].name, parts[n].name) == 0;
        if (taken) {
            free(parts[n].data);
        } else {
            char p[8192];
            snprintf(p, sizeof(p), "%s/%s", dir, parts[n].name);
            write_file(p, parts[n].data, parts[n].len);
            n++;
        }
        if (last)
            break;
        start = end + 2;
    }

    /* The writer reads the same files back at start-up (audit_open): the
     * end of the newest one for the chain head, the first line of a rotated
     * one for its seq. */
    for (size_t i = 0; i < n; i++)
        read_ends(&parts[i]);
    if (verify() == 0) {
        /* One changed byte in any line must break the chain: one edit per
         * line (newline included), at an offset chosen from the input. */
        size_t total = 0, edits = 0;
        for (size_t i = 0; i < n; i++)
            total += parts[i].len;
        check(total > 0, "an empty directory verified");
        uint32_t h = 2166136261u;
        for (size_t i = 0; i < size; i++)
            h = (h ^ data[i]) * 16777619u;
        for (size_t i = 0; i < n && edits < MAX_EDITS; i++)
            for (size_t at = 0; at < parts[i].len && edits < MAX_EDITS; edits++) {
                const uint8_t *nl = memchr(parts[i].data + at, '\n', parts[i].len - at);
                size_t line = nl ? (size_t)(nl - (parts[i].data + at)) + 1 : parts[i].len - at;
                h = (h ^ (uint32_t)edits) * 16777619u;
                edit(&parts[i], at + h % line, (uint8_t)(1u + (h >> 24) % 255u));
                at += line;
            }
    }

    for (size_t i = 0; i < n; i++) {
        char p[8192];
        snprintf(p, sizeof(p), "%s/%s", dir, parts[i].name);
        unlink(p);
        free(parts[i].data);
    }
    return 0;
}
