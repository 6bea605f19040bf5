/*  bk_journal.c - the broker's write-ahead journal.

    Segment file: 16-byte header "PRDJRNL\0" | u32 format version | u32 0,
    then records: u32 length | u32 crc32c | u8 version | u8 type | payload
    (little-endian; the CRC covers version, type and payload).
*/
#include "bk_journal.h"

#include "lb_log.h"
#include "lb_mem.h"
#include "lb_selftest.h"

#include <assert.h>
#include <czmq.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_MAGIC     "PRDJRNL"
#define S_HEADER    16
#define S_RECHEAD   10

struct _bk_journal_t {
    char *dir;
    bk_journal_io_t io;
    int fd;                 //  segment being appended, or -1
    uint64_t seq;           //  its number
    int64_t synced;         //  its length known to be on disk
    int old_fd;             //  previous segment during a checkpoint, or -1
    uint64_t old_seq;
    int64_t old_synced;
    uint8_t *buf;           //  records waiting for flush (the batch being filled)
    size_t len, cap;
    uint8_t *ibuf;          //  the batch the writer thread holds
    size_t ilen, icap;
    zactor_t *writer;       //  writes and syncs batches off the caller's thread
    bool busy;              //  a batch is with the writer
    uint64_t started;       //  batches handed out (sync or async)
    uint64_t synced_batch;  //  the last batch known to be on disk
    bool broken;
    char error [256];
    int64_t bytes;          //  since the last checkpoint began
    int64_t errors;
    uint64_t max_seq;       //  highest segment number seen
};

static const uint32_t s_crc_table [256] = {
    0x00000000, 0xf26b8303, 0xe13b70f7, 0x1350f3f4, 0xc79a971f, 0x35f1141c,
    0x26a1e7e8, 0xd4ca64eb, 0x8ad958cf, 0x78b2dbcc, 0x6be22838, 0x9989ab3b,
    0x4d43cfd0, 0xbf284cd3, 0xac78bf27, 0x5e133c24, 0x105ec76f, 0xe235446c,
    0xf165b798, 0x030e349b, 0xd7c45070, 0x25afd373, 0x36ff2087, 0xc494a384,
    0x9a879fa0, 0x68ec1ca3, 0x7bbcef57, 0x89d76c54, 0x5d1d08bf, 0xaf768bbc,
    0xbc267848, 0x4e4dfb4b, 0x20bd8ede, 0xd2d60ddd, 0xc186fe29, 0x33ed7d2a,
    0xe72719c1, 0x154c9ac2, 0x061c6936, 0xf477ea35, 0xaa64d611, 0x580f5512,
    0x4b5fa6e6, 0xb93425e5, 0x6dfe410e, 0x9f95c20d, 0x8cc531f9, 0x7eaeb2fa,
    0x30e349b1, 0xc288cab2, 0xd1d83946, 0x23b3ba45, 0xf779deae, 0x05125dad,
    0x1642ae59, 0xe4292d5a, 0xba3a117e, 0x4851927d, 0x5b016189, 0xa96ae28a,
    0x7da08661, 0x8fcb0562, 0x9c9bf696, 0x6ef07595, 0x417b1dbc, 0xb3109ebf,
    0xa0406d4b, 0x522bee48, 0x86e18aa3, 0x748a09a0, 0x67dafa54, 0x95b17957,
    0xcba24573, 0x39c9c670, 0x2a993584, 0xd8f2b687, 0x0c38d26c, 0xfe53516f,
    0xed03a29b, 0x1f682198, 0x5125dad3, 0xa34e59d0, 0xb01eaa24, 0x42752927,
    0x96bf4dcc, 0x64d4cecf, 0x77843d3b, 0x85efbe38, 0xdbfc821c, 0x2997011f,
    0x3ac7f2eb, 0xc8ac71e8, 0x1c661503, 0xee0d9600, 0xfd5d65f4, 0x0f36e6f7,
    0x61c69362, 0x93ad1061, 0x80fde395, 0x72966096, 0xa65c047d, 0x5437877e,
    0x4767748a, 0xb50cf789, 0xeb1fcbad, 0x197448ae, 0x0a24bb5a, 0xf84f3859,
    0x2c855cb2, 0xdeeedfb1, 0xcdbe2c45, 0x3fd5af46, 0x7198540d, 0x83f3d70e,
    0x90a324fa, 0x62c8a7f9, 0xb602c312, 0x44694011, 0x5739b3e5, 0xa55230e6,
    0xfb410cc2, 0x092a8fc1, 0x1a7a7c35, 0xe811ff36, 0x3cdb9bdd, 0xceb018de,
    0xdde0eb2a, 0x2f8b6829, 0x82f63b78, 0x709db87b, 0x63cd4b8f, 0x91a6c88c,
    0x456cac67, 0xb7072f64, 0xa457dc90, 0x563c5f93, 0x082f63b7, 0xfa44e0b4,
    0xe9141340, 0x1b7f9043, 0xcfb5f4a8, 0x3dde77ab, 0x2e8e845f, 0xdce5075c,
    0x92a8fc17, 0x60c37f14, 0x73938ce0, 0x81f80fe3, 0x55326b08, 0xa759e80b,
    0xb4091bff, 0x466298fc, 0x1871a4d8, 0xea1a27db, 0xf94ad42f, 0x0b21572c,
    0xdfeb33c7, 0x2d80b0c4, 0x3ed04330, 0xccbbc033, 0xa24bb5a6, 0x502036a5,
    0x4370c551, 0xb11b4652, 0x65d122b9, 0x97baa1ba, 0x84ea524e, 0x7681d14d,
    0x2892ed69, 0xdaf96e6a, 0xc9a99d9e, 0x3bc21e9d, 0xef087a76, 0x1d63f975,
    0x0e330a81, 0xfc588982, 0xb21572c9, 0x407ef1ca, 0x532e023e, 0xa145813d,
    0x758fe5d6, 0x87e466d5, 0x94b49521, 0x66df1622, 0x38cc2a06, 0xcaa7a905,
    0xd9f75af1, 0x2b9cd9f2, 0xff56bd19, 0x0d3d3e1a, 0x1e6dcdee, 0xec064eed,
    0xc38d26c4, 0x31e6a5c7, 0x22b65633, 0xd0ddd530, 0x0417b1db, 0xf67c32d8,
    0xe52cc12c, 0x1747422f, 0x49547e0b, 0xbb3ffd08, 0xa86f0efc, 0x5a048dff,
    0x8ecee914, 0x7ca56a17, 0x6ff599e3, 0x9d9e1ae0, 0xd3d3e1ab, 0x21b862a8,
    0x32e8915c, 0xc083125f, 0x144976b4, 0xe622f5b7, 0xf5720643, 0x07198540,
    0x590ab964, 0xab613a67, 0xb831c993, 0x4a5a4a90, 0x9e902e7b, 0x6cfbad78,
    0x7fab5e8c, 0x8dc0dd8f, 0xe330a81a, 0x115b2b19, 0x020bd8ed, 0xf0605bee,
    0x24aa3f05, 0xd6c1bc06, 0xc5914ff2, 0x37faccf1, 0x69e9f0d5, 0x9b8273d6,
    0x88d28022, 0x7ab90321, 0xae7367ca, 0x5c18e4c9, 0x4f48173d, 0xbd23943e,
    0xf36e6f75, 0x0105ec76, 0x12551f82, 0xe03e9c81, 0x34f4f86a, 0xc69f7b69,
    0xd5cf889d, 0x27a40b9e, 0x79b737ba, 0x8bdcb4b9, 0x988c474d, 0x6ae7c44e,
    0xbe2da0a5, 0x4c4623a6, 0x5f16d052, 0xad7d5351,
};

uint32_t
bk_journal_crc (uint32_t crc, const void *data, size_t size)
{
    const uint8_t *p = data;
    crc = ~crc;
    while (size--)
        crc = s_crc_table [(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

static long
s_write (void *arg, int fd, const void *buf, size_t size)
{
    (void) arg;
    return (long) write (fd, buf, size);
}

static int
s_sync (void *arg, int fd)
{
    (void) arg;
    return fdatasync (fd);
}

static void
s_put32 (uint8_t *p, uint32_t v)
{
    p [0] = (uint8_t) v; p [1] = (uint8_t) (v >> 8); p [2] = (uint8_t) (v >> 16); p [3] = (uint8_t) (v >> 24);
}

static uint32_t
s_get32 (const uint8_t *p)
{
    return (uint32_t) p [0] | (uint32_t) p [1] << 8 | (uint32_t) p [2] << 16 | (uint32_t) p [3] << 24;
}

static char *
s_path (bk_journal_t *self, uint64_t seq)
{
    return lb_xasprintf ("%s/%016llx.jnl", self->dir, (unsigned long long) seq);
}

static int
s_sync_dir (bk_journal_t *self)
{
    int fd = open (self->dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return -1;
    int rc = fsync (fd);
    close (fd);
    return rc;
}

static void
s_set_error (bk_journal_t *self, const char *what)
{
    snprintf (self->error, sizeof self->error, "%s: %s", what, strerror (errno));
}

//  Writes len bytes and syncs. Returns 0, or an errno value with *what
//  saying which step failed. Safe on the writer thread: it only reads io.
static int
s_write_all (const bk_journal_io_t *io, int fd, const uint8_t *buf, size_t len, const char **what)
{
    size_t done = 0;
    while (done < len) {
        long n = io->write (io->arg, fd, buf + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            *what = "write";
            return n == 0 ? ENOSPC : errno;
        }
        done += (size_t) n;
    }
    if (io->sync (io->arg, fd)) {
        *what = "fdatasync";
        return errno;
    }
    return 0;
}

//  The writer thread: takes batches, writes and syncs them, answers with
//  the outcome. The batch buffer stays owned by the journal.
static void
s_writer (zsock_t *pipe, void *arg)
{
    const bk_journal_io_t *io = arg;
    zsock_signal (pipe, 0);
    while (true) {
        char *cmd = NULL;
        void *buf = NULL;
        int fd = -1;
        uint64_t len = 0;
        if (zsock_recv (pipe, "spi8", &cmd, &buf, &fd, &len) || !cmd || strcmp (cmd, "FLUSH")) {
            zstr_free (&cmd);
            break;
        }
        zstr_free (&cmd);
        const char *what = "";
        int err = s_write_all (io, fd, buf, (size_t) len, &what);
        zsock_send (pipe, "is", err, what);
    }
}

//  Books the outcome of writing a batch of len bytes.
static int
s_after (bk_journal_t *self, int err, const char *what, size_t len)
{
    if (err == 0) {
        self->synced += (int64_t) len;
        self->bytes += (int64_t) len;
        self->synced_batch = self->started;
        return 0;
    }
    errno = err;
    s_set_error (self, what);
    self->errors++;
    self->broken = true;
    self->len = 0;          //  later records are lost with it: a checkpoint re-syncs
    lb_log_error ("journal: %s; refusing new work until a checkpoint succeeds dir=%s", self->error, self->dir);
    //  Cut what may have partly reached the file so nothing follows garbage.
    if (ftruncate (self->fd, self->synced))
        lb_log_warn ("journal: cannot cut segment back: %s", strerror (errno));
    return -1;
}

bk_journal_t *
bk_journal_new (const char *dir, const bk_journal_io_t *io)
{
    assert (dir);
    //  mkdir -p
    char *path = lb_xstrdup (dir);
    for (char *p = path + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            if (mkdir (path, 0755) && errno != EEXIST) {
                lb_log_error ("journal: cannot create directory path=%s: %s", path, strerror (errno));
                free (path);
                return NULL;
            }
            *p = '/';
        }
    }
    if (mkdir (path, 0755) && errno != EEXIST) {
        lb_log_error ("journal: cannot create directory path=%s: %s", path, strerror (errno));
        free (path);
        return NULL;
    }
    struct stat st;
    if (stat (path, &st) || !S_ISDIR (st.st_mode)) {
        lb_log_error ("journal: not a directory path=%s", path);
        free (path);
        return NULL;
    }
    if (access (path, W_OK | X_OK)) {
        lb_log_error ("journal: directory not writable path=%s: %s", path, strerror (errno));
        free (path);
        return NULL;
    }
    bk_journal_t *self = lb_xcalloc (1, sizeof *self);
    self->dir = path;
    self->fd = -1;
    self->old_fd = -1;
    if (io)
        self->io = *io;
    else {
        self->io.write = s_write;
        self->io.sync = s_sync;
    }
    return self;
}

void
bk_journal_destroy (bk_journal_t **self_p)
{
    assert (self_p);
    bk_journal_t *self = *self_p;
    if (!self)
        return;
    if (self->busy)
        bk_journal_finish_flush (self);
    zactor_destroy (&self->writer);
    if (self->fd >= 0)
        close (self->fd);
    if (self->old_fd >= 0)
        close (self->old_fd);
    free (self->buf);
    free (self->ibuf);
    free (self->dir);
    free (self);
    *self_p = NULL;
}

//  Sorted list of segment numbers in the directory.
static int
s_list (bk_journal_t *self, uint64_t **seqs_p, size_t *count_p)
{
    DIR *d = opendir (self->dir);
    if (!d) {
        lb_log_error ("journal: cannot read directory path=%s: %s", self->dir, strerror (errno));
        return -1;
    }
    uint64_t *seqs = NULL;
    size_t count = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir (d))) {
        const char *n = e->d_name;
        if (strlen (n) != 20 || strcmp (n + 16, ".jnl") != 0)
            continue;
        char *end;
        unsigned long long v = strtoull (n, &end, 16);
        if (end != n + 16)
            continue;
        if (count == cap) {
            cap = cap ? cap * 2 : 16;
            seqs = lb_xrealloc (seqs, cap * sizeof *seqs);
        }
        seqs [count++] = v;
    }
    closedir (d);
    //  insertion sort: few files
    for (size_t i = 1; i < count; i++)
        for (size_t j = i; j > 0 && seqs [j - 1] > seqs [j]; j--) {
            uint64_t t = seqs [j]; seqs [j] = seqs [j - 1]; seqs [j - 1] = t;
        }
    *seqs_p = seqs;
    *count_p = count;
    return 0;
}

//  Reads a whole file. Returns 0 or -1.
static int
s_slurp (const char *path, uint8_t **data_p, size_t *size_p)
{
    int fd = open (path, O_RDONLY);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat (fd, &st)) {
        close (fd);
        return -1;
    }
    size_t size = (size_t) st.st_size;
    uint8_t *data = lb_xmalloc (size + 1);
    size_t got = 0;
    while (got < size) {
        ssize_t n = read (fd, data + got, size - got);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            break;
        }
        got += (size_t) n;
    }
    close (fd);
    *data_p = data;
    *size_p = got;
    return 0;
}

//  Checks the record at off; returns its total length, or 0 if bad.
static size_t
s_record_ok (const uint8_t *data, size_t size, size_t off)
{
    if (size - off < S_RECHEAD)
        return 0;
    uint32_t len = s_get32 (data + off);
    if (len > BK_JOURNAL_RECORD_MAX || size - off - S_RECHEAD < len)
        return 0;
    uint32_t crc = s_get32 (data + off + 4);
    if (bk_journal_crc (0, data + off + 8, 2 + (size_t) len) != crc)
        return 0;
    if (data [off + 8] != BK_JOURNAL_VERSION)
        return 0;
    return S_RECHEAD + len;
}

//  A parsed segment: good records' offsets, where good data ends.
typedef struct {
    uint8_t *data;
    size_t size;
    size_t *offs;
    size_t nrec;
    size_t good_end;        //  offset after the last good record
    int64_t skipped;
    bool header_ok;
    bool is_ckpt, complete;
} s_segment_t;

static void
s_segment_parse (s_segment_t *seg)
{
    seg->header_ok = seg->size >= S_HEADER && memcmp (seg->data, S_MAGIC, 8) == 0
                  && s_get32 (seg->data + 8) == BK_JOURNAL_VERSION;
    size_t off = S_HEADER, cap = 0;
    seg->good_end = seg->header_ok ? S_HEADER : 0;
    if (!seg->header_ok)
        return;
    while (off < seg->size) {
        size_t n = s_record_ok (seg->data, seg->size, off);
        if (n == 0) {
            //  One bad record with a plausible length followed by a good
            //  one: skip it. Otherwise this is the end.
            if (seg->size - off >= S_RECHEAD) {
                uint32_t len = s_get32 (seg->data + off);
                size_t next = off + S_RECHEAD + len;
                if (len <= BK_JOURNAL_RECORD_MAX && next < seg->size
                &&  s_record_ok (seg->data, seg->size, next)) {
                    seg->skipped++;
                    off = next;
                    continue;
                }
            }
            break;
        }
        if (seg->nrec == cap) {
            cap = cap ? cap * 2 : 256;
            seg->offs = lb_xrealloc (seg->offs, cap * sizeof *seg->offs);
        }
        seg->offs [seg->nrec++] = off;
        off += n;
        seg->good_end = off;
    }
    if (seg->nrec > 0) {
        seg->is_ckpt = seg->data [seg->offs [0] + 9] == BK_JOURNAL_BEGIN;
        for (size_t i = 0; i < seg->nrec; i++)
            if (seg->data [seg->offs [i] + 9] == BK_JOURNAL_END)
                seg->complete = true;
    }
}

int
bk_journal_replay (bk_journal_t *self, bk_journal_fn *fn, void *arg, bk_journal_stats_t *stats)
{
    assert (self);
    assert (fn);
    bk_journal_stats_t st = { 0 };
    uint64_t *seqs = NULL;
    size_t count = 0;
    if (s_list (self, &seqs, &count))
        return -1;
    s_segment_t *segs = lb_xcalloc (count + 1, sizeof *segs);
    size_t start = 0;
    for (size_t i = 0; i < count; i++) {
        char *path = s_path (self, seqs [i]);
        if (s_slurp (path, &segs [i].data, &segs [i].size)) {
            lb_log_error ("journal: cannot read segment path=%s: %s", path, strerror (errno));
            free (path);
            continue;
        }
        free (path);
        s_segment_parse (&segs [i]);
        if (segs [i].is_ckpt && segs [i].complete)
            start = i;
        if (seqs [i] > self->max_seq)
            self->max_seq = seqs [i];
    }
    for (size_t i = 0; i < count; i++) {
        s_segment_t *seg = &segs [i];
        char *path = s_path (self, seqs [i]);
        if (i < start) {
            //  Superseded by a later complete checkpoint.
            if (unlink (path) == 0)
                st.removed++;
        }
        else
        if (seg->is_ckpt && !seg->complete) {
            lb_log_warn ("journal: removing incomplete checkpoint segment=%s", path);
            if (unlink (path) == 0)
                st.removed++;
        }
        else {
            st.segments++;
            if (!seg->header_ok)
                lb_log_warn ("journal: segment has no valid header, ignored segment=%s size=%zu", path, seg->size);
            for (size_t r = 0; r < seg->nrec; r++) {
                const uint8_t *rec = seg->data + seg->offs [r];
                uint32_t len = s_get32 (rec);
                int type = rec [9];
                if (type == BK_JOURNAL_BEGIN || type == BK_JOURNAL_END)
                    continue;
                if (fn (arg, type, rec + S_RECHEAD, len)) {
                    lb_log_warn ("journal: undecodable record skipped segment=%s offset=%zu type=%d",
                                 path, seg->offs [r], type);
                    st.skipped++;
                }
                else
                    st.records++;
            }
            if (seg->skipped)
                lb_log_warn ("journal: corrupt records skipped segment=%s count=%lld", path, (long long) seg->skipped);
            st.skipped += seg->skipped;
            if (seg->header_ok && seg->good_end < seg->size) {
                int64_t cut = (int64_t) (seg->size - seg->good_end);
                lb_log_warn ("journal: cutting torn or corrupt tail segment=%s offset=%zu bytes=%lld",
                             path, seg->good_end, (long long) cut);
                if (truncate (path, (off_t) seg->good_end))
                    lb_log_warn ("journal: cannot truncate segment=%s: %s", path, strerror (errno));
                st.cut_bytes += cut;
            }
        }
        free (path);
        free (seg->data);
        free (seg->offs);
    }
    free (segs);
    free (seqs);
    if (stats)
        *stats = st;
    return 0;
}

void
bk_journal_append (bk_journal_t *self, int type, const void *data, size_t size)
{
    assert (self);
    assert (size <= BK_JOURNAL_RECORD_MAX);
    if (self->broken || self->fd < 0)
        return;
    size_t need = self->len + S_RECHEAD + size;
    if (need > self->cap) {
        self->cap = need * 2 > 65536 ? need * 2 : 65536;
        self->buf = lb_xrealloc (self->buf, self->cap);
    }
    uint8_t *p = self->buf + self->len;
    s_put32 (p, (uint32_t) size);
    p [8] = BK_JOURNAL_VERSION;
    p [9] = (uint8_t) type;
    if (size)
        memcpy (p + S_RECHEAD, data, size);
    s_put32 (p + 4, bk_journal_crc (0, p + 8, 2 + size));
    self->len = need;
}

bool
bk_journal_dirty (bk_journal_t *self)
{
    assert (self);
    return self->len > 0;
}

int
bk_journal_flush (bk_journal_t *self)
{
    assert (self);
    if (self->busy && bk_journal_finish_flush (self))
        return -1;
    if (self->len == 0)
        return self->broken ? -1 : 0;
    if (self->fd < 0 || self->broken) {
        self->len = 0;
        return -1;
    }
    const char *what = "";
    int err = s_write_all (&self->io, self->fd, self->buf, self->len, &what);
    size_t len = self->len;
    self->len = 0;
    self->started++;
    return s_after (self, err, what, len);
}

uint64_t
bk_journal_start_flush (bk_journal_t *self)
{
    assert (self);
    if (self->busy || self->len == 0 || self->fd < 0 || self->broken)
        return 0;
    if (!self->writer) {
        self->writer = zactor_new (s_writer, &self->io);
        assert (self->writer);
    }
    //  Swap buffers: the writer takes the full one, appends go to the other.
    uint8_t *b = self->ibuf;
    size_t c = self->icap;
    self->ibuf = self->buf;
    self->icap = self->cap;
    self->ilen = self->len;
    self->buf = b;
    self->cap = c;
    self->len = 0;
    self->busy = true;
    self->started++;
    zsock_send (self->writer, "spi8", "FLUSH", self->ibuf, self->fd, (uint64_t) self->ilen);
    return self->started;
}

int
bk_journal_finish_flush (bk_journal_t *self)
{
    assert (self);
    assert (self->busy);
    int err = 0;
    char *what = NULL;
    if (zsock_recv (self->writer, "is", &err, &what)) {
        err = EIO;
        what = strdup ("writer thread");
    }
    self->busy = false;
    int rc = s_after (self, err, what ? what : "write", self->ilen);
    zstr_free (&what);
    return rc;
}

bool
bk_journal_busy (bk_journal_t *self)
{
    assert (self);
    return self->busy;
}

void *
bk_journal_socket (bk_journal_t *self)
{
    assert (self);
    if (!self->writer) {
        self->writer = zactor_new (s_writer, &self->io);
        assert (self->writer);
    }
    return zactor_sock (self->writer);
}

uint64_t
bk_journal_batch (bk_journal_t *self)
{
    assert (self);
    //  Records appended now reach the disk with the next batch; when there
    //  are none, what is in flight is what a reader must wait for.
    return self->len > 0 ? self->started + 1 : self->started;
}

uint64_t
bk_journal_synced (bk_journal_t *self)
{
    assert (self);
    return self->synced_batch;
}

int
bk_journal_checkpoint_begin (bk_journal_t *self)
{
    assert (self);
    assert (self->old_fd < 0);
    assert (!self->busy);       //  the caller finishes its flush first
    if (self->len && bk_journal_flush (self) && !self->broken)
        return -1;
    self->len = 0;
    uint64_t seq = self->max_seq + 1;
    char *path = s_path (self, seq);
    int fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        s_set_error (self, "create segment");
        self->errors++;
        self->broken = true;
        lb_log_error ("journal: %s path=%s", self->error, path);
        free (path);
        return -1;
    }
    free (path);
    self->max_seq = seq;
    self->old_fd = self->fd;
    self->old_seq = self->seq;
    self->old_synced = self->synced;
    self->fd = fd;
    self->seq = seq;
    self->synced = 0;
    self->bytes = 0;
    //  The header goes through the buffer as raw bytes.
    if (self->cap < S_HEADER + 64) {
        self->cap = 65536;
        self->buf = lb_xrealloc (self->buf, self->cap);
    }
    memcpy (self->buf, S_MAGIC "\0", 8);
    s_put32 (self->buf + 8, BK_JOURNAL_VERSION);
    s_put32 (self->buf + 12, 0);
    self->len = S_HEADER;
    bool was_broken = self->broken;
    self->broken = false;       //  so appends land in the new segment
    uint8_t begin [16];
    memcpy (begin, &seq, 8);
    int64_t now = 0;
    memcpy (begin + 8, &now, 8);
    bk_journal_append (self, BK_JOURNAL_BEGIN, begin, sizeof begin);
    self->broken = false;
    (void) was_broken;
    return 0;
}

int
bk_journal_checkpoint_end (bk_journal_t *self, uint64_t count)
{
    assert (self);
    assert (self->fd >= 0);
    uint8_t end [8];
    memcpy (end, &count, 8);
    bk_journal_append (self, BK_JOURNAL_END, end, sizeof end);
    int rc = bk_journal_flush (self);
    if (rc == 0 && s_sync_dir (self)) {
        s_set_error (self, "fsync directory");
        self->errors++;
        rc = -1;
    }
    if (rc) {
        //  Give up this checkpoint: remove its segment, stay broken.
        close (self->fd);
        char *path = s_path (self, self->seq);
        unlink (path);
        free (path);
        self->fd = self->old_fd;
        self->seq = self->old_seq;
        self->synced = self->old_synced;
        self->old_fd = -1;
        self->broken = true;
        lb_log_error ("journal: checkpoint failed: %s", self->error);
        return -1;
    }
    if (self->old_fd >= 0)
        close (self->old_fd);
    self->old_fd = -1;
    //  Remove every older segment.
    uint64_t *seqs = NULL;
    size_t n = 0;
    if (s_list (self, &seqs, &n) == 0) {
        for (size_t i = 0; i < n; i++)
            if (seqs [i] < self->seq) {
                char *path = s_path (self, seqs [i]);
                if (unlink (path))
                    lb_log_warn ("journal: cannot remove old segment=%s: %s", path, strerror (errno));
                free (path);
            }
        free (seqs);
        s_sync_dir (self);
    }
    self->broken = false;
    self->error [0] = 0;
    return 0;
}

bool
bk_journal_ok (bk_journal_t *self)
{
    assert (self);
    return !self->broken && self->fd >= 0;
}

const char *
bk_journal_error (bk_journal_t *self)
{
    assert (self);
    if (self->fd < 0 && !self->error [0])
        return "no segment open";
    return self->error;
}

int64_t
bk_journal_bytes (bk_journal_t *self)
{
    assert (self);
    return self->bytes + (int64_t) self->len;
}

int64_t
bk_journal_errors (bk_journal_t *self)
{
    assert (self);
    return self->errors;
}


//  --------------------------------------------------------------------------
//  Selftest

typedef struct {
    int count;
    int types [64];
    char data [64][16];
} s_seen_t;

static int
s_collect (void *arg, int type, const uint8_t *data, size_t size)
{
    s_seen_t *seen = arg;
    if (size >= 16 || seen->count >= 64)
        return -1;
    seen->types [seen->count] = type;
    memcpy (seen->data [seen->count], data, size);
    seen->data [seen->count][size] = 0;
    seen->count++;
    return 0;
}

typedef struct {
    int fail_writes;        //  fail this many writes from now
} s_faults_t;

static long
s_faulty_write (void *arg, int fd, const void *buf, size_t size)
{
    s_faults_t *f = arg;
    if (f->fail_writes > 0) {
        f->fail_writes--;
        //  Write half, then report no space, as a full disk does.
        if (size > 1 && write (fd, buf, size / 2) < 0)
            return -1;
        errno = ENOSPC;
        return -1;
    }
    return (long) write (fd, buf, size);
}

static int
s_count_segments (const char *dir)
{
    DIR *d = opendir (dir);
    assert (d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir (d)))
        if (strstr (e->d_name, ".jnl"))
            n++;
    closedir (d);
    return n;
}

void
bk_journal_test (bool verbose)
{
    (void) verbose;
    assert (bk_journal_crc (0, "123456789", 9) == 0xe3069283);
    char *dir = lb_selftest_tmpdir ("bk_journal");
    char *sub = lb_xasprintf ("%s/a/b", dir);

    //  Fresh journal: checkpoint, records, replay sees them.
    bk_journal_t *j = bk_journal_new (sub, NULL);
    assert (j);
    s_seen_t seen = { 0 };
    assert (bk_journal_replay (j, s_collect, &seen, NULL) == 0 && seen.count == 0);
    assert (!bk_journal_ok (j));
    assert (bk_journal_checkpoint_begin (j) == 0);
    bk_journal_append (j, 1, "snap", 4);
    assert (bk_journal_checkpoint_end (j, 1) == 0);
    assert (bk_journal_ok (j));
    bk_journal_append (j, 2, "one", 3);
    bk_journal_append (j, 3, "two", 3);
    assert (bk_journal_dirty (j));
    assert (bk_journal_flush (j) == 0 && !bk_journal_dirty (j));
    bk_journal_append (j, 4, "three", 5);
    assert (bk_journal_flush (j) == 0);
    bk_journal_destroy (&j);

    j = bk_journal_new (sub, NULL);
    memset (&seen, 0, sizeof seen);
    bk_journal_stats_t st;
    assert (bk_journal_replay (j, s_collect, &seen, &st) == 0);
    assert (seen.count == 4 && st.cut_bytes == 0 && st.skipped == 0);
    assert (seen.types [0] == 1 && strcmp (seen.data [3], "three") == 0);
    //  A second checkpoint removes the first segment.
    assert (bk_journal_checkpoint_begin (j) == 0);
    bk_journal_append (j, 1, "all", 3);
    assert (bk_journal_checkpoint_end (j, 1) == 0);
    assert (s_count_segments (sub) == 1);
    bk_journal_append (j, 2, "tail", 4);
    bk_journal_append (j, 2, "torn", 4);
    assert (bk_journal_flush (j) == 0);
    bk_journal_destroy (&j);

    //  Tear the last record: replay cuts it and truncates the file.
    char *seg = lb_xasprintf ("%s/%016llx.jnl", sub, 2ULL);
    struct stat sb;
    assert (stat (seg, &sb) == 0);
    assert (truncate (seg, sb.st_size - 3) == 0);
    j = bk_journal_new (sub, NULL);
    memset (&seen, 0, sizeof seen);
    assert (bk_journal_replay (j, s_collect, &seen, &st) == 0);
    assert (seen.count == 2 && strcmp (seen.data [1], "tail") == 0);
    assert (st.cut_bytes == S_RECHEAD + 4 - 3);
    assert (stat (seg, &sb) == 0);
    bk_journal_destroy (&j);

    //  Flip a byte inside a middle record: that record is skipped, the
    //  rest survives.
    j = bk_journal_new (sub, NULL);
    memset (&seen, 0, sizeof seen);
    assert (bk_journal_replay (j, s_collect, &seen, &st) == 0);
    assert (bk_journal_checkpoint_begin (j) == 0);
    bk_journal_append (j, 1, "AAAA", 4);
    bk_journal_append (j, 2, "BBBB", 4);
    bk_journal_append (j, 3, "CCCC", 4);
    assert (bk_journal_checkpoint_end (j, 3) == 0);
    bk_journal_destroy (&j);
    free (seg);
    seg = lb_xasprintf ("%s/%016llx.jnl", sub, 3ULL);
    FILE *f = fopen (seg, "r+b");
    assert (f);
    //  header 16, BEGIN record 10+16, AAAA record 14, then BBBB's payload
    assert (fseek (f, 16 + 26 + 14 + S_RECHEAD + 1, SEEK_SET) == 0);
    fputc ('X', f);
    fclose (f);
    j = bk_journal_new (sub, NULL);
    memset (&seen, 0, sizeof seen);
    assert (bk_journal_replay (j, s_collect, &seen, &st) == 0);
    assert (st.skipped == 1);
    assert (seen.count == 2 && strcmp (seen.data [0], "AAAA") == 0 && strcmp (seen.data [1], "CCCC") == 0);
    bk_journal_destroy (&j);

    //  Failing writes: flush fails, journal broken, appends dropped, a
    //  checkpoint heals it, and what was synced before survives.
    s_faults_t faults = { 0 };
    bk_journal_io_t io = { s_faulty_write, s_sync, &faults };
    j = bk_journal_new (sub, &io);
    memset (&seen, 0, sizeof seen);
    assert (bk_journal_replay (j, s_collect, &seen, &st) == 0);
    assert (bk_journal_checkpoint_begin (j) == 0);
    bk_journal_append (j, 1, "live", 4);
    assert (bk_journal_checkpoint_end (j, 1) == 0);
    bk_journal_append (j, 2, "kept", 4);
    assert (bk_journal_flush (j) == 0);
    faults.fail_writes = 1;
    bk_journal_append (j, 2, "lost", 4);
    assert (bk_journal_flush (j) == -1);
    assert (!bk_journal_ok (j) && strstr (bk_journal_error (j), "No space"));
    assert (bk_journal_errors (j) == 1);
    bk_journal_append (j, 2, "dropped", 7);
    assert (!bk_journal_dirty (j));
    //  A failed checkpoint leaves the old segment in place.
    faults.fail_writes = 1;
    assert (bk_journal_checkpoint_begin (j) == 0);
    bk_journal_append (j, 1, "again", 5);
    assert (bk_journal_checkpoint_end (j, 1) == -1);
    assert (!bk_journal_ok (j));
    bk_journal_destroy (&j);
    j = bk_journal_new (sub, NULL);
    memset (&seen, 0, sizeof seen);
    assert (bk_journal_replay (j, s_collect, &seen, &st) == 0);
    assert (seen.count == 2 && strcmp (seen.data [1], "kept") == 0);
    assert (st.cut_bytes == 0);
    bk_journal_destroy (&j);

    //  Group commit on the writer thread: appends go on while a batch is
    //  in flight; batch numbers tell what is on disk.
    j = bk_journal_new (sub, NULL);
    memset (&seen, 0, sizeof seen);
    assert (bk_journal_replay (j, s_collect, &seen, &st) == 0);
    assert (bk_journal_checkpoint_begin (j) == 0);
    assert (bk_journal_checkpoint_end (j, 0) == 0);
    uint64_t synced = bk_journal_synced (j);
    assert (bk_journal_batch (j) == synced);
    assert (bk_journal_start_flush (j) == 0);         //  nothing buffered
    bk_journal_append (j, 2, "b1", 2);
    uint64_t b1 = bk_journal_batch (j);
    assert (b1 == synced + 1);
    assert (bk_journal_start_flush (j) == b1 && bk_journal_busy (j));
    assert (bk_journal_batch (j) == b1);              //  in flight
    bk_journal_append (j, 2, "b2", 2);
    assert (bk_journal_batch (j) == b1 + 1);
    assert (bk_journal_start_flush (j) == 0);         //  one at a time
    zpoller_t *poller = zpoller_new (bk_journal_socket (j), NULL);
    assert (zpoller_wait (poller, 5000));
    zpoller_destroy (&poller);
    assert (bk_journal_finish_flush (j) == 0 && !bk_journal_busy (j));
    assert (bk_journal_synced (j) == b1);
    assert (bk_journal_flush (j) == 0 && bk_journal_synced (j) == b1 + 1);
    bk_journal_destroy (&j);
    j = bk_journal_new (sub, NULL);
    memset (&seen, 0, sizeof seen);
    assert (bk_journal_replay (j, s_collect, &seen, &st) == 0);
    assert (seen.count == 2 && strcmp (seen.data [0], "b1") == 0 && strcmp (seen.data [1], "b2") == 0);
    bk_journal_destroy (&j);

    //  Not a directory
    char *file = lb_xasprintf ("%s/file", dir);
    f = fopen (file, "w");
    fclose (f);
    char *bad = lb_xasprintf ("%s/sub", file);
    assert (bk_journal_new (file, NULL) == NULL);
    assert (bk_journal_new (bad, NULL) == NULL);
    free (bad);
    free (file);
    free (seg);
    free (sub);
    lb_selftest_rmtree (dir);
    free (dir);
}
