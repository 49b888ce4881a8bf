/* Writing HTML and inline SVG for `semctr report`: escaping, tables and
 * line / bar charts drawn as SVG elements, so the page needs no script, no
 * font or image file and no network to render. Every function writes to fp
 * and leaves errors to the caller's ferror (the report is one atomic file:
 * base/file.h). */
#ifndef SC_REPORT_HTML_H
#define SC_REPORT_HTML_H

#include <stdio.h>

#include "report/curves.h"

/* s with &, <, >, " and ' as entities and control characters (but tab and
 * newline) dropped: safe inside element text and quoted attribute values.
 * NULL writes nothing. */
void sc_html_esc(FILE *fp, const char *s);

/* A number as a table cell: "%.*f" (digits), or "–" when NAN or infinite. */
void sc_html_num(FILE *fp, double v, int digits);

/* One line series of a chart. */
typedef struct sc_series {
    const char *name;         /* legend text (escaped) */
    const sc_curve_point *p;  /* (n) in data coordinates */
    int n;
    const char *color;        /* a CSS colour (trusted: one of sc_html_color's) */
    int dashed;
    int markers;              /* 1: a dot on each point; 2: dots only, no line */
} sc_series;

/* The colour of series i: a fixed palette that stays apart for colour-blind
 * readers (Okabe-Ito), cycling after 8. */
const char *sc_html_color(int i);

/* Flags of a line chart: a dotted y = x line (a ROC's chance line, a
 * calibration plot's perfect one); the legend's corner, where the curves are
 * not (top left unless told); x ticks on whole numbers only (epochs). */
enum { SC_CHART_DIAGONAL = 1, SC_CHART_LEGEND_RIGHT = 2, SC_CHART_LEGEND_BOTTOM = 4, SC_CHART_INT_X = 8 };

/* An SVG line chart (width × height px) of the series in the box
 * [x0, x1] × [y0, y1], with axes, 5 ticks each, the axis titles and a legend. Points outside the box are drawn on its edge. */
void sc_html_line_chart(FILE *fp, const char *title, const char *xlabel, const char *ylabel, double x0, double x1,
                        double y0, double y1, const sc_series *s, int n_series, int flags);

/* A grouped bar chart: n_cat categories (names cat), each with n_group bars
 * (names group, colours sc_html_color(g)), values v[c * n_group + g] (NAN: no
 * bar), on a y axis from y0 to y1 (bars start at y0, so a small difference
 * in AUC stays visible; the axis says where it starts). */
void sc_html_bar_chart(FILE *fp, const char *title, const char *ylabel, const char *const *cat, int n_cat,
                       const char *const *group, int n_group, const double *v, double y0, double y1);

/* lo, hi widened to a range that shows them with a margin (5% each side;
 * a flat series: ± 0.01 · max(1, |lo|)). */
void sc_html_range(double *lo, double *hi);

#endif
