/*  main_csvinfo.c - bin/csvinfo: parse a CSV file the way the fetch worker does
    and say what it found (delimiter, rows, columns and their inferred types,
    missing values) and how long parsing took, or the first error with its line.

    bin/csvinfo [--delimiter C] [--no-header] [--max-record BYTES] [--threads N] FILE
    Exit status: 0 parsed, 1 bad input, 2 bad usage.
*/
#include "lb_clock.h"
#include "lb_csv.h"
#include "lb_log.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int
main (int argc, char **argv)
{
    lb_log_setup ("csvinfo", LB_LOG_INFO);
    lb_csv_opts_t opts;
    lb_csv_opts_default (&opts);
    static const struct option longopts [] = {
        { "delimiter", required_argument, 0, 'd' }, { "no-header", no_argument, 0, 'n' },
        { "max-record", required_argument, 0, 'm' }, { "threads", required_argument, 0, 't' },
        { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 } };
    int c;
    while ((c = getopt_long (argc, argv, "h", longopts, NULL)) != -1)
        switch (c) {
            case 'd':
                if (strlen (optarg) != 1) {
                    fprintf (stderr, "csvinfo: --delimiter takes one character\n");
                    return 2;
                }
                opts.delimiter = optarg [0];
                break;
            case 'n': opts.header = false; break;
            case 'm': opts.max_record = (size_t) strtoull (optarg, NULL, 10); break;
            case 't': {
                char *stop;
                long n = strtol (optarg, &stop, 10);
                if (*stop || n < 0 || n > 64) {
                    fprintf (stderr, "csvinfo: --threads takes 0 (every core) to 64\n");
                    return 2;
                }
                opts.threads = (int) n;
                break;
            }
            case 'h':
                printf ("usage: csvinfo [--delimiter C] [--no-header] [--max-record BYTES] [--threads N] FILE\n");
                return 0;
            default: return 2;
        }
    if (optind != argc - 1) {
        fprintf (stderr, "usage: csvinfo [--delimiter C] [--no-header] [--max-record BYTES] [--threads N] FILE\n");
        return 2;
    }
    if (opts.threads == 0) {
        long online = sysconf (_SC_NPROCESSORS_ONLN);
        opts.threads = online < 1 ? 1 : online > 64 ? 64 : (int) online;
    }
    char *error = NULL;
    int64_t t0 = lb_clock_mono_us ();
    lb_csv_t *csv = lb_csv_load (argv [optind], &opts, &error);
    double secs = (double) (lb_clock_mono_us () - t0) / 1e6;
    if (!csv) {
        fprintf (stderr, "csvinfo: %s\n", error);
        free (error);
        return 1;
    }
    static const char *types [] = { "empty", "number", "time", "text" };
    char delim [8];
    snprintf (delim, sizeof delim, lb_csv_delimiter (csv) == '\t' ? "TAB" : "%c", lb_csv_delimiter (csv));
    printf ("rows %zu, columns %zu, delimiter %s, parsed in %.3f s on %d threads\n", lb_csv_rows (csv),
            lb_csv_cols (csv), delim, secs, opts.threads);
    for (size_t k = 0; k < lb_csv_cols (csv); k++) {
        size_t missing = 0;
        for (size_t r = 0; r < lb_csv_rows (csv); r++)
            missing += lb_csv_type (csv, k) == LB_CSV_TEXT ? lb_csv_text (csv, k, r) == NULL
                                                           : isnan (lb_csv_numbers (csv, k) [r]);
        printf ("  %-24s %-6s %zu missing\n", lb_csv_name (csv, k), types [lb_csv_type (csv, k)], missing);
    }
    lb_csv_destroy (&csv);
    return 0;
}
