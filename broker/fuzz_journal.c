/*  fuzz_journal.c - libFuzzer target for the broker's journal replay and
    record decoding. The input is a list of records, each a type byte, a
    length byte and that many payload bytes, written with valid checksums
    inside a checkpoint (on /dev/shm, with fdatasync off: speed); whatever follows the last whole record is appended
    raw, as a torn or corrupt tail. The segment is then replayed into a job
    store, which must checkpoint again. Nothing may crash, leak or loop.
*/
#include "bk_jobs.h"
#include "bk_journal.h"
#include "lb_log.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static int
s_nosync (void *arg, int fd)
{
    (void) arg;
    (void) fd;
    return 0;
}

static long
s_write (void *arg, int fd, const void *buf, size_t size)
{
    (void) arg;
    return (long) write (fd, buf, size);
}

static int
s_ignore (void *arg, int type, const uint8_t *data, size_t size)
{
    (void) arg; (void) type; (void) data; (void) size;
    return 0;
}

//  Appends bytes to the newest segment in dir.
static void
s_append_raw (const char *dir, const uint8_t *data, size_t size)
{
    DIR *d = opendir (dir);
    if (!d)
        return;
    char best [64] = "";
    struct dirent *e;
    while ((e = readdir (d)))
        if (strstr (e->d_name, ".jnl") && strcmp (e->d_name, best) > 0)
            snprintf (best, sizeof best, "%s", e->d_name);
    closedir (d);
    if (!*best)
        return;
    char path [128];
    snprintf (path, sizeof path, "%s/%s", dir, best);
    int fd = open (path, O_WRONLY | O_APPEND);
    if (fd >= 0) {
        if (write (fd, data, size) < 0)
            ;
        close (fd);
    }
}

static int
s_remove (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st; (void) flag; (void) ftw;
    return remove (path);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    lb_log_set_level (LB_LOG_ERROR);
    char dir [] = "/dev/shm/fuzz_journal-XXXXXX";
    if (!mkdtemp (dir))
        return 0;
    bk_journal_io_t io = { s_write, s_nosync, NULL };
    lb_fakeclock_t fake = { 1, 1700000000000000 };
    lb_clock_t clock = lb_clock_fake (&fake);
    bk_jobs_policy_t policy = { 1, 2 };

    //  Write the records through the journal itself, inside a checkpoint.
    bk_journal_t *journal = bk_journal_new (dir, &io);
    size_t at = 0;
    if (journal && bk_journal_replay (journal, s_ignore, NULL, NULL) == 0
    &&  bk_journal_checkpoint_begin (journal) == 0) {
        while (size - at >= 2 && size - at - 2 >= data [at + 1]) {
            bk_journal_append (journal, data [at], data + at + 2, data [at + 1]);
            at += 2 + data [at + 1];
        }
        bk_journal_checkpoint_end (journal, 0);
    }
    bk_journal_destroy (&journal);
    if (at < size)
        s_append_raw (dir, data + at, size - at);

    //  Replay into a store, and checkpoint what came back.
    journal = bk_journal_new (dir, &io);
    if (journal) {
        bk_jobs_t *jobs = bk_jobs_new (journal, &clock, policy);
        if (bk_jobs_recover (jobs, NULL) >= 0)
            bk_jobs_checkpoint (jobs);
        bk_jobs_destroy (&jobs);
        bk_journal_destroy (&journal);
    }
    nftw (dir, s_remove, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
