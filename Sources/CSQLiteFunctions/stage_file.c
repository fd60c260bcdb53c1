// A rotation's staged rows of one column group on SQLite, in a file of their own: each row's
// rowid, whether it is to be rotated, the triple the snapshot read and the triple the row is to
// hold, appended in ascending rowid. The write phase's UPDATE reads them through the functions
// registered here, which walk the file in step with the UPDATE's scan of the table (in rowid
// order: a forward read, no lookup).
//
// Why a file and not a temporary table (as before): 1M v2 values, three groups, measured on the
// 2-core machine: the staging INSERTs took about 1.2 s of the snapshot's reading thread (B-tree
// inserts, and the pages spilled from a 2 MiB cache written back), and the UPDATE's correlated
// lookups into the stage (two B-tree searches a row) made the write lock 1.9 s where the same
// UPDATE with the new values from a function took 1.4 s. Nothing else reads the file.
#define _GNU_SOURCE
#include "CSQLiteFunctions.h"
#include "digest_hash.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// A row: rowid (8 bytes), rotate (1), the six texts' lengths (4 each, native order), the texts.
enum { HEADER = 8 + 1 + 6 * 4, WRITE_BUFFER = 1 << 20, READ_BUFFER = 1 << 18 };

typedef struct {
    uint8_t *buffer;
    size_t capacity, filled;
    off_t window;  // the file's bytes [window, window + filled) are in buffer
    off_t next;    // where the row after `row` starts
    int have;      // `row` holds a row
    int has_sought;
    int64_t sought;
    int64_t rewinds;  // walks started again from the file's start for a lower rowid
    toolcfg_stage_row row;
} cursor;

struct toolcfg_stage_file {
    int fd;
    // The owner's reference and one per function registered over the file: SQLite drops a
    // function only when no statement is running, so the last of them frees the file.
    int references;
    int error;  // the first failed write: every later append and finish returns it
    uint8_t *pending;
    size_t pending_length, pending_capacity;
    off_t size;  // written and pending
    int64_t last_rowid;
    int has_rows, finished;
    uint64_t digest_rows, digest_sum;  // toolcfg_digest of every row appended, kept as they come
    cursor lookup;  // the SQL functions'
    cursor walk;    // next_from's, step's and the digest's
};

toolcfg_stage_file *toolcfg_stage_file_create(const char *directory, int *error) {
    int fd = open(directory, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
        // A file system without O_TMPFILE: a name, unlinked at once.
        size_t size = strlen(directory) + 32;
        char *path = malloc(size);
        if (!path) {
            *error = ENOMEM;
            return NULL;
        }
        snprintf(path, size, "%s/toolcfg-stage-XXXXXX", directory);
        fd = mkostemp(path, O_CLOEXEC);
        int made = errno;
        if (fd >= 0) unlink(path);
        free(path);
        errno = made;
    }
    if (fd < 0) {
        *error = errno;
        return NULL;
    }
    toolcfg_stage_file *file = calloc(1, sizeof *file);
    if (!file) {
        close(fd);
        *error = ENOMEM;
        return NULL;
    }
    file->fd = fd;
    file->references = 1;
    return file;
}

static void release(void *pointer) {
    toolcfg_stage_file *file = pointer;
    if (--file->references > 0) return;
    close(file->fd);
    free(file->pending);
    free(file->lookup.buffer);
    free(file->walk.buffer);
    free(file);
}

void toolcfg_stage_file_close(toolcfg_stage_file *file) {
    if (file) release(file);
}

int toolcfg_stage_file_result_code(int error) {
    switch (error) {
    case ENOSPC:
    case EDQUOT: return SQLITE_FULL;
    case ENOMEM: return SQLITE_NOMEM;
    case EACCES:
    case EPERM: return SQLITE_PERM;
    case EINVAL: return SQLITE_MISUSE;  // out of order, or after finish: toolcfg's own mistake
    default: return SQLITE_IOERR;
    }
}

static int fail(toolcfg_stage_file *file, int error) {
    if (!file->error) file->error = error;
    return file->error;
}

int64_t toolcfg_stage_file_rewinds(const toolcfg_stage_file *file) {
    return file->lookup.rewinds + file->walk.rewinds;
}

// A row's hash as toolcfg_digest(rid, new_key, new_salt, new_nonce) sees it: the rowid as SQLite's
// text of it, then the triple the row is to hold.
static uint64_t row_hash(int64_t rowid, const char *const texts[3], const size_t lengths[3]) {
    char number[24];
    int length = snprintf(number, sizeof number, "%lld", (long long)rowid);
    uint64_t h = toolcfg_digest_value(toolcfg_digest_start(), 0, (const unsigned char *)number, (size_t)length);
    for (int i = 0; i < 3; i++) h = toolcfg_digest_value(h, 0, (const unsigned char *)texts[i], lengths[i]);
    return toolcfg_digest_end(h);
}

static int write_all(int fd, const uint8_t *bytes, size_t length) {
    while (length > 0) {
        ssize_t written = write(fd, bytes, length);
        if (written < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        bytes += written;
        length -= (size_t)written;
    }
    return 0;
}

static int flush(toolcfg_stage_file *file) {
    int status = write_all(file->fd, file->pending, file->pending_length);
    file->pending_length = 0;
    return status;
}

int toolcfg_stage_file_append(toolcfg_stage_file *file, int64_t rowid, int rotate, const char *texts, const size_t lengths[6]) {
    if (file->error) return file->error;
    if (file->finished || (file->has_rows && rowid <= file->last_rowid)) return EINVAL;
    size_t total = HEADER;
    for (int i = 0; i < 6; i++) {
        if (lengths[i] > INT_MAX) return EINVAL;
        total += lengths[i];
    }
    if (total > HEADER && !texts) return EINVAL;
    if (file->pending_length + total > file->pending_capacity) {
        int status = flush(file);
        if (status) return fail(file, status);
        if (total > file->pending_capacity) {
            size_t capacity = total > WRITE_BUFFER ? total : WRITE_BUFFER;
            uint8_t *grown = realloc(file->pending, capacity);
            if (!grown) return fail(file, ENOMEM);
            file->pending = grown;
            file->pending_capacity = capacity;
        }
    }
    uint8_t *at = file->pending + file->pending_length;
    memcpy(at, &rowid, 8);
    at[8] = rotate ? 1 : 0;
    for (int i = 0; i < 6; i++) {
        uint32_t length = (uint32_t)lengths[i];
        memcpy(at + 9 + 4 * i, &length, 4);
    }
    if (total > HEADER) memcpy(at + HEADER, texts, total - HEADER);
    // The digest as the rows come (the read-back's, unless rows are staged again in the table).
    const char *fresh[3];
    const char *text = (const char *)at + HEADER + lengths[0] + lengths[1] + lengths[2];
    for (int i = 0; i < 3; i++) {
        fresh[i] = text;
        text += lengths[3 + i];
    }
    file->digest_rows += 1;
    file->digest_sum += row_hash(rowid, fresh, lengths + 3);
    file->pending_length += total;
    file->size += (off_t)total;
    file->last_rowid = rowid;
    file->has_rows = 1;
    return 0;
}

int toolcfg_stage_file_finish(toolcfg_stage_file *file) {
    if (file->error) return file->error;
    if (file->finished) return 0;
    int status = flush(file);
    if (status) return fail(file, status);
    free(file->pending);
    file->pending = NULL;
    file->pending_capacity = 0;
    file->finished = 1;
    return 0;
}

// Makes the file's bytes [at, at + need) present in the cursor's buffer: 0 or an errno.
static int fill(const toolcfg_stage_file *file, cursor *c, off_t at, size_t need) {
    if (at >= c->window && at + (off_t)need <= c->window + (off_t)c->filled) return 0;
    size_t capacity = need > READ_BUFFER ? need : READ_BUFFER;
    if (capacity > c->capacity) {
        uint8_t *grown = realloc(c->buffer, capacity);
        if (!grown) return ENOMEM;
        c->buffer = grown;
        c->capacity = capacity;
    }
    c->window = at;
    c->filled = 0;
    while (c->filled < c->capacity) {
        ssize_t got = pread(file->fd, c->buffer + c->filled, c->capacity - c->filled, at + (off_t)c->filled);
        if (got < 0) {
            if (errno == EINTR) continue;
            c->filled = 0;
            return errno;
        }
        if (got == 0) break;
        c->filled += (size_t)got;
    }
    return c->filled >= need ? 0 : EIO;  // shorter than its rows say
}

// The row after the cursor's: 1, 0 (none left), or -errno.
static int read_next(const toolcfg_stage_file *file, cursor *c) {
    c->have = 0;
    if (c->next >= file->size) return 0;
    int status = fill(file, c, c->next, HEADER);
    if (status) return -status;
    uint32_t lengths[6];
    size_t total = HEADER;
    for (int i = 0; i < 6; i++) {
        memcpy(&lengths[i], c->buffer + (c->next - c->window) + 9 + 4 * i, 4);
        total += lengths[i];
    }
    if ((status = fill(file, c, c->next, total))) return -status;
    const uint8_t *at = c->buffer + (c->next - c->window);
    memcpy(&c->row.rowid, at, 8);
    c->row.rotate = at[8];
    const char *text = (const char *)at + HEADER;
    for (int i = 0; i < 6; i++) {
        c->row.lengths[i] = lengths[i];
        c->row.texts[i] = i < 3 && !c->row.rotate ? NULL : text;  // a kept row has no old triple
        text += lengths[i];
    }
    c->next += (off_t)total;
    c->have = 1;
    return 1;
}

// Moves to the first row at or after `rowid`, from the start again when `rowid` is below the
// last one sought (a second pass): 1, 0 (none), or -errno.
static int seek(const toolcfg_stage_file *file, cursor *c, int64_t rowid) {
    if (!file->finished) return -EINVAL;
    if (!c->has_sought || rowid < c->sought) {
        if (c->has_sought) c->rewinds += 1;
        c->next = 0;
        c->have = 0;
    }
    c->sought = rowid;
    c->has_sought = 1;
    while (!c->have || c->row.rowid < rowid) {
        int status = read_next(file, c);
        if (status <= 0) return status;
    }
    return 1;
}

static void report(sqlite3_context *context, int error) {
    char message[200];
    snprintf(message, sizeof message, "reading the rotation's stage file: %s", strerror(error));
    sqlite3_result_error(context, message, -1);
    sqlite3_result_error_code(context, toolcfg_stage_file_result_code(error));
}

// The staged row of the rowid in values[0]: 1 (in *row), 0 (not staged), -1 (error reported).
static int staged_row(sqlite3_context *context, sqlite3_value *rowid, const toolcfg_stage_row **row) {
    toolcfg_stage_file *file = sqlite3_user_data(context);
    int64_t wanted = sqlite3_value_int64(rowid);
    int status = seek(file, &file->lookup, wanted);
    if (status < 0) {
        report(context, -status);
        return -1;
    }
    if (status == 0 || file->lookup.row.rowid != wanted) return 0;
    *row = &file->lookup.row;
    return 1;
}

// A text value equal to the staged text (a NULL or non-text value equals nothing, as in SQL).
static int same(sqlite3_value *value, const char *text, size_t length) {
    if (!text || sqlite3_value_type(value) != SQLITE_TEXT) return 0;
    const unsigned char *bytes = sqlite3_value_text(value);
    return bytes && (size_t)sqlite3_value_bytes(value) == length && memcmp(bytes, text, length) == 0;
}

static int same_triple(sqlite3_value **values, const toolcfg_stage_row *row, int first) {
    return same(values[0], row->texts[first], row->lengths[first]) && same(values[1], row->texts[first + 1], row->lengths[first + 1])
           && same(values[2], row->texts[first + 2], row->lengths[first + 2]);
}

static void matches(sqlite3_context *context, int count, sqlite3_value **values) {
    (void)count;
    const toolcfg_stage_row *row;
    int found = staged_row(context, values[0], &row);
    if (found >= 0) sqlite3_result_int(context, found && row->rotate && same_triple(values + 1, row, 0));
}

static void new_part(sqlite3_context *context, int count, sqlite3_value **values) {
    (void)count;
    int part = sqlite3_value_int(values[1]);
    if (part < 0 || part > 2) {
        sqlite3_result_error(context, "a stage part is 0, 1 or 2", -1);
        return;
    }
    const toolcfg_stage_row *row;
    int found = staged_row(context, values[0], &row);
    if (found > 0) {
        sqlite3_result_text(context, row->texts[3 + part], (int)row->lengths[3 + part], SQLITE_TRANSIENT);
    } else if (found == 0) {
        sqlite3_result_null(context);
    }
}

// A function's answer about a row: `value` when the row is staged, NULL when it is not, nothing
// more when staged_row reported an error.
static void result_if_staged(sqlite3_context *context, int found, int value) {
    if (found > 0) {
        sqlite3_result_int(context, value);
    } else if (found == 0) {
        sqlite3_result_null(context);
    }
}

static void holds(sqlite3_context *context, int count, sqlite3_value **values) {
    (void)count;
    const toolcfg_stage_row *row;
    int found = staged_row(context, values[0], &row);
    result_if_staged(context, found, found > 0 && same_triple(values + 1, row, 3));
}

static void staged(sqlite3_context *context, int count, sqlite3_value **values) {
    (void)count;
    const toolcfg_stage_row *row;
    int found = staged_row(context, values[0], &row);
    result_if_staged(context, found, found > 0 && row->rotate);
}

static const struct {
    const char *suffix;
    int arguments;
    void (*function)(sqlite3_context *, int, sqlite3_value **);
} functions[] = {{"_matches", 4, matches}, {"_new", 2, new_part}, {"_holds", 4, holds}, {"_staged", 1, staged}};

int toolcfg_stage_file_register(sqlite3 *db, toolcfg_stage_file *file, const char *prefix) {
    for (size_t i = 0; i < sizeof functions / sizeof functions[0]; i++) {
        char name[128];
        if (snprintf(name, sizeof name, "%s%s", prefix, functions[i].suffix) >= (int)sizeof name) {
            toolcfg_stage_file_unregister(db, prefix);
            return SQLITE_MISUSE;
        }
        // Direct only: no trigger or view of the database can call them. SQLite releases the
        // reference when it drops the function, or at once when registering fails.
        file->references += 1;
        int status = sqlite3_create_function_v2(db, name, functions[i].arguments, SQLITE_UTF8 | SQLITE_DIRECTONLY, file,
                                                functions[i].function, NULL, NULL, release);
        if (status != SQLITE_OK) {
            toolcfg_stage_file_unregister(db, prefix);
            return status;
        }
    }
    file->lookup.has_sought = 0;
    return SQLITE_OK;
}

void toolcfg_stage_file_unregister(sqlite3 *db, const char *prefix) {
    for (size_t i = 0; i < sizeof functions / sizeof functions[0]; i++) {
        char name[128];
        snprintf(name, sizeof name, "%s%s", prefix, functions[i].suffix);
        sqlite3_create_function_v2(db, name, functions[i].arguments, SQLITE_UTF8 | SQLITE_DIRECTONLY, NULL, NULL, NULL, NULL, NULL);
    }
}

int toolcfg_stage_file_next_from(toolcfg_stage_file *file, int64_t from, toolcfg_stage_row *row) {
    int status = seek(file, &file->walk, from);
    if (status == 1) *row = file->walk.row;
    return status;
}

int toolcfg_stage_file_step(toolcfg_stage_file *file, toolcfg_stage_row *row) {
    if (!file->finished) return -EINVAL;
    cursor *c = &file->walk;
    if (!c->has_sought) return toolcfg_stage_file_next_from(file, INT64_MIN, row);
    int status = read_next(file, c);
    if (status == 1) *row = c->row;
    return status;
}

int toolcfg_stage_file_digest(toolcfg_stage_file *file, const int64_t *skip, size_t skip_count, uint64_t *rows, uint64_t *sum) {
    if (!file->finished) return EINVAL;
    if (skip_count == 0) {
        *rows = file->digest_rows;
        *sum = file->digest_sum;
        return 0;
    }
    cursor *c = &file->walk;
    c->next = 0;
    c->has_sought = 0;
    uint64_t count = 0, total = 0;
    size_t skipped = 0;
    int status;
    while ((status = read_next(file, c)) == 1) {
        int64_t rowid = c->row.rowid;
        while (skipped < skip_count && skip[skipped] < rowid) skipped++;
        if (skipped < skip_count && skip[skipped] == rowid) continue;
        count += 1;
        total += row_hash(rowid, c->row.texts + 3, c->row.lengths + 3);
    }
    c->next = 0;
    if (status < 0) return -status;
    *rows = count;
    *sum = total;
    return 0;
}
