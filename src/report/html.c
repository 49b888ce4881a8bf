#include "report/html.h"

#include <math.h>
#include <string.h>

void sc_html_esc(FILE *fp, const char *s) {
    if (!s) return;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        switch (c) {
        case '&': fputs("&amp;", fp); break;
        case '<': fputs("&lt;", fp); break;
        case '>': fputs("&gt;", fp); break;
        case '"': fputs("&quot;", fp); break;
        case '\'': fputs("&#39;", fp); break;
        default:
            /* a control character has no business in a name; NUL-free bytes >= 0x80 pass (UTF-8) */
            if (c >= 0x20 || c == '\t' || c == '\n') fputc(c, fp);
        }
    }
}

void sc_html_num(FILE *fp, double v, int digits) {
    if (isfinite(v)) fprintf(fp, "%.*f", digits, v);
    else fputs("&ndash;", fp);
}

const char *sc_html_color(int i) {
    static const char *const P[8] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                     "#E69F00", "#56B4E9", "#000000", "#F0E442"};
    return P[(i % 8 + 8) % 8];
}

void sc_html_range(double *lo, double *hi) {
    if (!isfinite(*lo) || !isfinite(*hi)) {
        *lo = 0;
        *hi = 1;
        return;
    }
    double d = *hi - *lo;
    if (d <= 0) {
        double m = 0.01 * fmax(1, fabs(*lo));
        *lo -= m;
        *hi += m;
        return;
    }
    *lo -= 0.05 * d;
    *hi += 0.05 * d;
}

/* The plot geometry shared by both charts: the SVG is W × H, the plot area
 * [L, W - R] × [T, H - B] leaves room for tick labels and axis titles. */
enum { W = 460, H = 340, L = 62, R = 16, T = 30, B = 48 };

/* Data to pixels, clamped to the plot area: the ranges are chosen to hold
 * every point, so clamping only guards against a value on the edge's far
 * side by rounding (and needs no clip path, whose id would have to be unique
 * in the page). */
static double clamp01(double t) { return t < 0 ? 0 : t > 1 ? 1 : t; }
static double px(double x, double x0, double x1) { return L + clamp01((x - x0) / (x1 - x0)) * (W - L - R); }
static double py(double y, double y0, double y1) { return H - B - clamp01((y - y0) / (y1 - y0)) * (H - T - B); }

/* A vertical grid line and its tick label at x. */
static void x_tick(FILE *fp, double x, double x0, double x1) {
    fprintf(fp, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" class=\"grid\"/>", px(x, x0, x1), T, px(x, x0, x1),
            H - B);
    fprintf(fp, "<text x=\"%.1f\" y=\"%d\" class=\"tk\" text-anchor=\"middle\">%.4g</text>\n", px(x, x0, x1), H - B + 16,
            x);
}

/* Axes, grid, ticks and titles of a plot over [x0, x1] × [y0, y1]: five
 * ticks each, or (int_x) x ticks on whole numbers only (epochs), at most 10;
 * no x ticks when x0 == x1 (a bar chart labels its categories itself). */
static void axes(FILE *fp, const char *title, const char *xlabel, const char *ylabel, double x0, double x1,
                 double y0, double y1, int int_x) {
    fprintf(fp, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                "role=\"img\" class=\"chart\"><title>", W, H, W, H);
    sc_html_esc(fp, title);
    fprintf(fp, "</title>\n<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#fff\"/>\n", W, H);
    fprintf(fp, "<text x=\"%d\" y=\"18\" class=\"ct\">", L);
    sc_html_esc(fp, title);
    fputs("</text>\n", fp);
    for (int k = 0; k <= 4; k++) {
        double y = y0 + (y1 - y0) * k / 4;
        fprintf(fp, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" class=\"grid\"/>", L, py(y, y0, y1), W - R,
                py(y, y0, y1));
        fprintf(fp, "<text x=\"%d\" y=\"%.1f\" class=\"tk\" text-anchor=\"end\">%.4g</text>\n", L - 5,
                py(y, y0, y1) + 4, y);
        if (x1 > x0 && !int_x) x_tick(fp, x0 + (x1 - x0) * k / 4, x0, x1);
    }
    if (x1 > x0 && int_x) {
        double first = ceil(x0), last = floor(x1), step = fmax(1, ceil((last - first + 1) / 10));
        for (double x = first; x <= last; x += step) x_tick(fp, x, x0, x1);
    }
    fprintf(fp, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" class=\"frame\"/>\n", L, T, W - L - R,
            H - T - B);
    fprintf(fp, "<text x=\"%d\" y=\"%d\" class=\"at\" text-anchor=\"middle\">", (L + W - R) / 2, H - 10);
    sc_html_esc(fp, xlabel);
    fprintf(fp, "</text>\n<text x=\"14\" y=\"%d\" class=\"at\" text-anchor=\"middle\" transform=\"rotate(-90 14 %d)\">",
            (T + H - B) / 2, (T + H - B) / 2);
    sc_html_esc(fp, ylabel);
    fputs("</text>\n", fp);
}

void sc_html_line_chart(FILE *fp, const char *title, const char *xlabel, const char *ylabel, double x0, double x1,
                        double y0, double y1, const sc_series *s, int n_series, int flags) {
    if (!(x1 > x0)) x1 = x0 + 1;
    if (!(y1 > y0)) y1 = y0 + 1;
    axes(fp, title, xlabel, ylabel, x0, x1, y0, y1, flags & SC_CHART_INT_X);
    fputs("<g>\n", fp);
    if (flags & SC_CHART_DIAGONAL) {
        double a = fmax(x0, y0), b = fmin(x1, y1);
        if (b > a)
            fprintf(fp, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"diag\"/>\n", px(a, x0, x1),
                    py(a, y0, y1), px(b, x0, x1), py(b, y0, y1));
    }
    for (int i = 0; i < n_series; i++) {
        const sc_series *e = &s[i];
        if (e->n <= 0) continue;
        if (e->markers != 2) {
            fprintf(fp, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"", e->color,
                    e->dashed ? " stroke-dasharray=\"6 4\"" : "");
            for (int k = 0; k < e->n; k++)
                if (isfinite(e->p[k].x) && isfinite(e->p[k].y))
                    fprintf(fp, "%s%.2f,%.2f", k ? " " : "", px(e->p[k].x, x0, x1), py(e->p[k].y, y0, y1));
            fputs("\"/>\n", fp);
        }
        if (e->markers)
            for (int k = 0; k < e->n; k++)
                if (isfinite(e->p[k].x) && isfinite(e->p[k].y))
                    fprintf(fp, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"%s\" fill=\"%s\"/>", px(e->p[k].x, x0, x1),
                            py(e->p[k].y, y0, y1), e->markers == 2 ? "6\" fill-opacity=\"0.5" : "3.5", e->color);
        if (e->markers) fputc('\n', fp);
    }
    fputs("</g>\n", fp);
    /* the legend inside the plot, in the corner flags ask for, on a white ground so curves do not hide it */
    int shown = 0;
    for (int i = 0; i < n_series; i++) shown += s[i].name != NULL;
    if (shown) {
        int lh = shown * 16 + 6, lx = flags & SC_CHART_LEGEND_RIGHT ? W - R - 206 : L + 6,
            ly = flags & SC_CHART_LEGEND_BOTTOM ? H - B - 6 - lh : T + 6;
        fprintf(fp, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" class=\"leg\"/>\n", lx, ly, 200, lh);
        int row = 0;
        for (int i = 0; i < n_series; i++) {
            if (!s[i].name) continue;
            double y = ly + 12 + row * 16;
            if (s[i].markers == 2)
                fprintf(fp, "<circle cx=\"%d\" cy=\"%.1f\" r=\"5\" fill=\"%s\" fill-opacity=\"0.5\"/>", lx + 16,
                        y - 4, s[i].color);
            else
                fprintf(fp, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"3\"%s/>",
                        lx + 6, y - 4, lx + 26, y - 4, s[i].color, s[i].dashed ? " stroke-dasharray=\"6 4\"" : "");
            fprintf(fp, "<text x=\"%d\" y=\"%.1f\" class=\"lg\">", lx + 32, y);
            sc_html_esc(fp, s[i].name);
            fputs("</text>\n", fp);
            row++;
        }
    }
    fputs("</svg>\n", fp);
}

void sc_html_bar_chart(FILE *fp, const char *title, const char *ylabel, const char *const *cat, int n_cat,
                       const char *const *group, int n_group, const double *v, double y0, double y1) {
    if (!(y1 > y0)) y1 = y0 + 1;
    axes(fp, title, "", ylabel, 0, 0, y0, y1, 0);
    if (n_cat <= 0 || n_group <= 0) {
        fputs("</svg>\n", fp);
        return;
    }
    double slot = (double)(W - L - R) / n_cat, bw = slot * 0.8 / n_group;
    for (int c = 0; c < n_cat; c++) {
        double xc = L + slot * c + slot * 0.1;
        for (int g = 0; g < n_group; g++) {
            double val = v[c * n_group + g];
            if (!isfinite(val)) continue;
            double top = py(fmin(fmax(val, y0), y1), y0, y1);
            fprintf(fp, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"><title>", xc + g * bw,
                    top, bw - 1, H - B - top, sc_html_color(g));
            sc_html_esc(fp, cat[c]);
            fputs(", ", fp);
            sc_html_esc(fp, group[g]);
            fprintf(fp, ": %.5f</title></rect>\n", val);
        }
        fprintf(fp, "<text x=\"%.1f\" y=\"%d\" class=\"tk\" text-anchor=\"middle\">", L + slot * (c + 0.5), H - B + 16);
        sc_html_esc(fp, cat[c]);
        fputs("</text>\n", fp);
    }
    /* the legend in one row under the category labels: inside the plot it would hide the bars */
    double cw = (double)(W - L - R) / n_group;
    for (int g = 0; g < n_group; g++) {
        fprintf(fp, "<rect x=\"%.1f\" y=\"%d\" width=\"12\" height=\"10\" fill=\"%s\"/>", L + g * cw, H - 20,
                sc_html_color(g));
        fprintf(fp, "<text x=\"%.1f\" y=\"%d\" class=\"lg\">", L + g * cw + 16, H - 11);
        sc_html_esc(fp, group[g]);
        fputs("</text>\n", fp);
    }
    fputs("</svg>\n", fp);
}
