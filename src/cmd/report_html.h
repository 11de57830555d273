/* report_html.h — the HTML and SVG pieces of `probe report`'s pages: one
 * stylesheet and one small script inlined in every page (so a page needs no
 * other file and works from file:// offline), text escaping, the heatmap
 * colour scale and its legend, an activation histogram and a bar chart with
 * error bars.
 *
 *   FILE *f = fopen("index.html", "w");
 *   html_begin(f, "probe report");
 *   fputs("<h1>...", f);  html_text(f, token);  ...
 *   html_end(f);
 *
 * The script (a few hundred bytes of plain JavaScript): clicking a column
 * head of a table.sortable sorts it (numbers by the cell's value, NaN/"—"
 * last), "#sort=KEY" in the URL sorts by the column with data-key=KEY on
 * load, an input#filter hides the rows that do not contain its text, and
 * any JavaScript error is written into div#js-error; when it has run,
 * <body> gets data-js="ok". The test suite relies on these three. */
#ifndef PROBE_REPORT_HTML_H
#define PROBE_REPORT_HTML_H

#include <stdint.h>
#include <stdio.h>

/* The page head (title, stylesheet, the navigation bar, the error box) up
 * to the opening of <main>. */
void html_begin(FILE *f, const char *title);
/* Closes <main>, adds the script, closes the page. */
void html_end(FILE *f);

/* s (UTF-8) as HTML text or attribute value: & < > " ' escaped; a newline
 * shown as the visible ↵, a tab as ⇥, other control bytes as U+FFFD. */
void html_text(FILE *f, const char *s);

/* A number for a table cell: %.4g-like but fixed decimals: "0.1234";
 * "—" for NaN. */
void html_num(FILE *f, double v, int decimals);

/* The background colour of value v on a scale from lo (< 0, blue) through
 * 0 (white) to hi (> 0, orange), as "#rrggbb" into buf[8]: full orange at
 * hi; below 0 as blue as |v| is large against max(|lo|, hi), so a small
 * negative side stays pale. Values beyond the ends get the end colours; lo
 * or hi may be 0 (that side stays white). */
const char *html_heat(double v, double lo, double hi, char buf[8]);

/* A legend for html_heat: a gradient bar from lo to hi with tick labels,
 * and `what` (what the colour means) before it. */
void html_legend(FILE *f, double lo, double hi, const char *what);

/* An SVG histogram of counts[n_bins] over the record-time grid (act_hist.h):
 * the occupied bins in at most 200 columns, log counts, the activation at
 * a few bin edges on the x axis. data-total holds the sum of the counts. */
void html_histogram(FILE *f, const uint32_t *counts, int n_bins);

/* An SVG bar chart: n bars value[i] with error bars value[i] +- err[i],
 * labelled label[i]; each bar a rect.bar with data-label and data-v. */
void html_bars(FILE *f, const char *const *label, const double *value, const double *err, int n, const char *y_title);

#endif
