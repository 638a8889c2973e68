/* curves.h — draws training curves (loss and accuracy per epoch) as an SVG picture,
 * for the examples. Header-only, no dependencies: an SVG is plain text that every
 * browser and image viewer shows. */
#ifndef CT_EXAMPLES_CURVES_H
#define CT_EXAMPLES_CURVES_H

#include <stdio.h>

typedef struct {
    const char *name;   /* legend text */
    const char *color;  /* SVG colour */
    const double *y;    /* n values (NaN: skipped) */
} curve;

/* One panel: x = 1..n (epochs), curves scaled to [ymin, ymax] (auto if ymin == ymax). */
static void svg_panel(FILE *f, double x0, double y0, double w, double h, const char *title, int n,
                      const curve *c, int nc, double ymin, double ymax) {
    if (ymin == ymax) {
        ymin = 1e300, ymax = -1e300;
        for (int k = 0; k < nc; k++)
            for (int i = 0; i < n; i++)
                if (c[k].y[i] == c[k].y[i]) {
                    if (c[k].y[i] < ymin) ymin = c[k].y[i];
                    if (c[k].y[i] > ymax) ymax = c[k].y[i];
                }
        if (ymin > ymax) ymin = 0, ymax = 1;
        double pad = (ymax - ymin) * 0.08 + 1e-12;
        ymin -= pad, ymax += pad;
    }
    double L = x0 + 55, R = x0 + w - 15, T = y0 + 30, B = y0 + h - 40;
    fprintf(f, "<text x='%.1f' y='%.1f' font-size='15' font-weight='bold'>%s</text>\n", L, y0 + 18, title);
    fprintf(f, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill='none' stroke='#888'/>\n", L, T, R - L, B - T);
    for (int g = 0; g <= 4; g++) { /* y grid and labels */
        double v = ymin + (ymax - ymin) * g / 4, py = B - (B - T) * g / 4;
        fprintf(f, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#ddd'/>\n", L, py, R, py);
        fprintf(f, "<text x='%.1f' y='%.1f' font-size='11' text-anchor='end'>%.3g</text>\n", L - 4, py + 4, v);
    }
    for (int i = 0; i < n; i++) { /* x labels: epochs */
        double px = n > 1 ? L + (R - L) * i / (n - 1) : (L + R) / 2;
        fprintf(f, "<text x='%.1f' y='%.1f' font-size='11' text-anchor='middle'>%d</text>\n", px, B + 15, i + 1);
    }
    fprintf(f, "<text x='%.1f' y='%.1f' font-size='12' text-anchor='middle'>epoch</text>\n", (L + R) / 2, B + 32);
    for (int k = 0; k < nc; k++) {
        fprintf(f, "<polyline fill='none' stroke='%s' stroke-width='2' points='", c[k].color);
        for (int i = 0; i < n; i++) {
            if (c[k].y[i] != c[k].y[i]) continue;
            double px = n > 1 ? L + (R - L) * i / (n - 1) : (L + R) / 2;
            double py = B - (B - T) * (c[k].y[i] - ymin) / (ymax - ymin);
            fprintf(f, "%.1f,%.1f ", px, py);
        }
        fprintf(f, "'/>\n");
        fprintf(f, "<text x='%.1f' y='%.1f' font-size='12' fill='%s'>%s</text>\n", R - 150, T + 16 + 15 * k, c[k].color,
                c[k].name);
    }
}

/* Writes loss (left) and accuracy (right) panels to path. 0 or -1 (with errno). */
static int write_training_svg(const char *path, const char *title, int n, const double *train_loss,
                              const double *test_loss, const double *train_acc, const double *test_acc) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "<svg xmlns='http://www.w3.org/2000/svg' width='900' height='380' font-family='sans-serif'>\n");
    fprintf(f, "<rect width='900' height='380' fill='white'/>\n");
    fprintf(f, "<text x='450' y='20' font-size='16' text-anchor='middle'>%s</text>\n", title);
    /* NULL series are left out */
    curve lc[2], ac[2];
    int nl = 0, na = 0;
    if (train_loss) lc[nl++] = (curve){"train loss", "#1f77b4", train_loss};
    if (test_loss) lc[nl++] = (curve){"test loss", "#d62728", test_loss};
    if (train_acc) ac[na++] = (curve){"train accuracy %", "#1f77b4", train_acc};
    if (test_acc) ac[na++] = (curve){"test accuracy %", "#d62728", test_acc};
    svg_panel(f, 0, 30, 450, 350, "loss", n, lc, nl, 0, 0);
    svg_panel(f, 450, 30, 450, 350, "accuracy (%)", n, ac, na, 0, 0);
    fprintf(f, "</svg>\n");
    return fclose(f) == 0 ? 0 : -1;
}

#endif
