/*  bk_journal.h - the broker's write-ahead journal (PROTOCOL.md section 6).

    Append-only segment files of checksummed, versioned records in one
    directory. Records are buffered by bk_journal_append and reach the disk
    together in bk_journal_flush (one write, one fdatasync: group commit).

    Growth is bounded by checkpoints: bk_journal_checkpoint_begin starts a
    fresh segment that opens with a BEGIN record, the caller appends a
    snapshot of everything still live, bk_journal_checkpoint_end appends END,
    syncs, and removes every older segment. Replay starts at the newest
    complete checkpoint; an incomplete one (a crash mid-checkpoint) is
    ignored, and a torn or corrupt tail is cut.

    The journal knows nothing of jobs: a record is a type byte and payload
    bytes. Types BK_JOURNAL_BEGIN and BK_JOURNAL_END are its own.
*/
#ifndef BK_JOURNAL_H_INCLUDED
#define BK_JOURNAL_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BK_JOURNAL_VERSION 1
#define BK_JOURNAL_BEGIN   0xF0
#define BK_JOURNAL_END     0xF1
//  Largest payload a record may carry (a bigger length field is corruption).
#define BK_JOURNAL_RECORD_MAX (256u << 20)

typedef struct _bk_journal_t bk_journal_t;

//  What replay found.
typedef struct {
    int segments;           //  segments read
    int64_t records;        //  records handed to the callback
    int64_t skipped;        //  corrupt records skipped inside a segment
    int64_t cut_bytes;      //  bytes cut from segment tails
    int removed;            //  superseded or incomplete segments removed
} bk_journal_stats_t;

//  Called for every good record at replay, in order. Returns 0, or -1 when
//  the payload does not decode (counted as corrupt; replay goes on).
typedef int (bk_journal_fn) (void *arg, int type, const uint8_t *data, size_t size);

//  Test seams: write(2) and fdatasync(2) by default.
typedef struct {
    long (*write) (void *arg, int fd, const void *buf, size_t size);
    int (*sync) (void *arg, int fd);
    void *arg;
} bk_journal_io_t;

//  Opens (creating if need be) the journal directory dir. Returns the
//  journal, or NULL after logging why (not a directory, no permission).
//  Nothing is written until a checkpoint or append. io may be NULL.
bk_journal_t *bk_journal_new (const char *dir, const bk_journal_io_t *io);

//  Closes files, frees. Buffered records are NOT flushed. Accepts NULL.
void bk_journal_destroy (bk_journal_t **self_p);

//  Replays every record from the newest complete checkpoint on, calling fn.
//  Cuts a torn tail from the last segment (truncating the file) and logs
//  every cut. Call once, before appending. Returns 0, or -1 when the
//  directory cannot be read (logged). stats may be NULL.
int bk_journal_replay (bk_journal_t *self, bk_journal_fn *fn, void *arg, bk_journal_stats_t *stats);

//  Buffers one record. Nothing happens (the record is dropped) while the
//  journal is broken: the caller re-synchronises with a checkpoint.
void bk_journal_append (bk_journal_t *self, int type, const void *data, size_t size);

//  Returns true when records wait in the buffer.
bool bk_journal_dirty (bk_journal_t *self);

//  Writes the buffer and fdatasyncs on the caller's thread (after waiting
//  for a batch in flight). Returns 0, or -1 when the write or the
//  sync failed: the segment is cut back to its last synced length, the
//  buffer dropped, the journal marked broken (bk_journal_error says why).
int bk_journal_flush (bk_journal_t *self);

//  Group commit off the caller's thread: hands the buffered records (a
//  "batch") to the journal's writer thread, which writes and fdatasyncs
//  them while the caller goes on appending to a fresh buffer. Returns the
//  batch number, or 0 when nothing was started (nothing buffered, a batch
//  already in flight, or the journal broken).
uint64_t bk_journal_start_flush (bk_journal_t *self);

//  Waits for the batch in flight (the socket below is readable when it is
//  done) and books its outcome. Returns 0, or -1 when it failed (the journal
//  is then broken, as after a failed bk_journal_flush). Only while busy.
int bk_journal_finish_flush (bk_journal_t *self);

//  Returns true while a batch is with the writer thread.
bool bk_journal_busy (bk_journal_t *self);

//  Returns the socket (a czmq zsock_t) that becomes readable when the batch
//  in flight is done, for the caller's poller. Borrowed.
void *bk_journal_socket (bk_journal_t *self);

//  Returns the batch that what has been appended so far will be synced
//  with (the buffered records' batch, else the one in flight), and the last
//  batch known to be on disk. A reply that depends on the journal waits
//  until bk_journal_synced >= the bk_journal_batch taken when it was made.
uint64_t bk_journal_batch (bk_journal_t *self);
uint64_t bk_journal_synced (bk_journal_t *self);

//  Starts a checkpoint in a new segment (flushes pending records first; no
//  batch may be in flight).
//  Returns 0, or -1 (journal broken, reason logged).
int bk_journal_checkpoint_begin (bk_journal_t *self);

//  Ends the checkpoint: appends END with count, syncs file and directory,
//  removes older segments, and clears a broken state. Returns 0, or -1
//  after removing the new segment (the older ones stay, still valid).
int bk_journal_checkpoint_end (bk_journal_t *self, uint64_t count);

//  Returns false while the journal is broken.
bool bk_journal_ok (bk_journal_t *self);

//  Returns the last error as text ("write: No space left on device"), or
//  "" when none. Borrowed.
const char *bk_journal_error (bk_journal_t *self);

//  Returns bytes written since the last checkpoint began.
int64_t bk_journal_bytes (bk_journal_t *self);

//  Returns the number of failed writes and syncs so far.
int64_t bk_journal_errors (bk_journal_t *self);

//  CRC-32C (Castagnoli) of data, continuing from crc (start with 0).
uint32_t bk_journal_crc (uint32_t crc, const void *data, size_t size);

//  Selftest.
void bk_journal_test (bool verbose);

#endif
