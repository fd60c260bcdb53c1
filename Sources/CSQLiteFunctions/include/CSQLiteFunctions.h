#ifndef TOOLCFG_CSQLITEFUNCTIONS_H
#define TOOLCFG_CSQLITEFUNCTIONS_H
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

/// Registers toolcfg_digest(...) on the connection (see digest.c). An SQLite result code.
int toolcfg_create_digest_function(sqlite3 *db);

/// A rotation's staged rows of one column group, in a file of their own (see stage_file.c).
typedef struct toolcfg_stage_file toolcfg_stage_file;

/// One staged row as read back: its texts point into the reader's buffer, valid until the next
/// read. Texts 0-2 are the triple the snapshot read (NULL for a row kept as it is), 3-5 the triple
/// the row is to hold.
typedef struct {
    int64_t rowid;
    int rotate;
    const char *texts[6];
    size_t lengths[6];
} toolcfg_stage_row;

/// Creates the file in `directory`, without a name (O_TMPFILE, else a name unlinked at once), so
/// that a kill leaves nothing behind. NULL with the errno in *error.
toolcfg_stage_file *toolcfg_stage_file_create(const char *directory, int *error);

/// Gives up the owner's hold on the file: it is closed (and its space freed) once no function
/// registered over it is left either.
void toolcfg_stage_file_close(toolcfg_stage_file *file);

/// The SQLite result code an errno of these calls stands for (SQLITE_FULL for a full disk, ...).
int toolcfg_stage_file_result_code(int error);

/// Appends a row; rows come in ascending rowid. `texts`: the six texts one after the other (old
/// ciphertext, salt, nonce, empty for a kept row; new ciphertext, salt, nonce), `lengths` theirs.
/// 0, or an errno (EINVAL: out of order, or after toolcfg_stage_file_finish); after a failed
/// write, that write's errno from then on.
int toolcfg_stage_file_append(toolcfg_stage_file *file, int64_t rowid, int rotate, const char *texts, const size_t lengths[6]);

/// Writes out what is buffered and ends the appends; the reads below need it. 0 or an errno.
int toolcfg_stage_file_finish(toolcfg_stage_file *file);

/// Registers PREFIX_matches(rowid, ciphertext, salt, nonce) (1 when the row is staged for a
/// rotation from exactly that triple), PREFIX_new(rowid, part) (the staged triple's part 0-2, or
/// NULL), PREFIX_holds(rowid, ciphertext, salt, nonce) (1 when that is the staged triple, NULL
/// when the row is not staged) and PREFIX_staged(rowid) (the row's rotate flag, NULL when not
/// staged). They walk the file in step with a scan in rowid order. An SQLite result code.
int toolcfg_stage_file_register(sqlite3 *db, toolcfg_stage_file *file, const char *prefix);

/// Removes the four functions (SQLite keeps one that a running statement uses, and the file with
/// it, until the connection closes).
void toolcfg_stage_file_unregister(sqlite3 *db, const char *prefix);

/// The first row whose rowid is `from` or above, read by the file's second cursor (the one the
/// functions do not use): 1 (row filled), 0 (none), or -errno. Rows the cursor stepped over
/// (toolcfg_stage_file_step) count as passed until a lower `from` sends it back to the start:
/// it goes on from its row. For a reader that skips the same rows every time (SQLiteStageFile's
/// `next`), that is the same row.
int toolcfg_stage_file_next_from(toolcfg_stage_file *file, int64_t from, toolcfg_stage_row *row);

/// The row after the one that cursor read last, leaving where it was last sent (`from`) as it
/// was: skipping rows this way never makes a later toolcfg_stage_file_next_from go back to the
/// file's start. 1, 0 or -errno, as there.
int toolcfg_stage_file_step(toolcfg_stage_file *file, toolcfg_stage_row *row);

/// How many times the file's cursors went back to its start for a lower rowid than the last one
/// asked for: a scan in rowid order needs none (tests).
int64_t toolcfg_stage_file_rewinds(const toolcfg_stage_file *file);

/// toolcfg_digest over every row (its rowid and the triple it is to hold), but the rows whose
/// rowids are in `skip` (ascending): 0 or an errno. Kept as the rows are appended, so only a
/// `skip` costs a pass over the file.
int toolcfg_stage_file_digest(toolcfg_stage_file *file, const int64_t *skip, size_t skip_count, uint64_t *rows, uint64_t *sum);

#endif
