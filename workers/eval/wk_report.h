/*  wk_report.h - the evaluation report: Markdown and one self-contained HTML page.

    The HTML page has no external references (no scripts, fonts, styles or
    images from elsewhere): its plots are inline SVG drawn here - ROC curves
    (id "plot-roc"), calibration (id "plot-calibration"), equity curves of
    the backtest (id "plot-equity") and feature importance (id
    "plot-importance", present when some policy has an importance table;
    otherwise the page says why there is none). The Markdown carries the same
    tables and names the plots in the HTML.

    analysis is the LLM's text when there is one; otherwise no_analysis
    says why ("no analysis: no API key") and is printed as is.
*/
#ifndef WK_REPORT_H_INCLUDED
#define WK_REPORT_H_INCLUDED

#include "wk_eval.h"

typedef struct {
    const char *title;          //  e.g. "Evaluation of run 42: task spy_reversal"
    const char *run;            //  may be NULL
    const char *task;           //  may be NULL
    const char *analysis;       //  LLM text, or NULL
    const char *no_analysis;    //  why there is none, when analysis is NULL
    const char *notes;          //  what was left out and why (one paragraph), or NULL
} wk_report_info_t;

//  Returns the Markdown report. Caller frees.
char *wk_report_markdown (wk_eval_t *eval, const wk_report_info_t *info);

//  Returns the HTML page. Caller frees.
char *wk_report_html (wk_eval_t *eval, const wk_report_info_t *info);

//  Selftest.
void wk_report_test (bool verbose);

#endif
