/* report_html.c — see report_html.h. */
#include "report_html.h"

#include <math.h>
#include <string.h>

#include "act_hist.h"

static const char *style =
    "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1d232b;background:#fbfbfa}"
    "nav{background:#1f2a38;padding:.5em 1.2em}nav a{color:#e8eef6;margin-right:1.2em;text-decoration:none}"
    "main{padding:.6em 1.4em 3em;max-width:1180px}h1{font-size:1.45em;margin:.5em 0 .2em}"
    "h2{font-size:1.15em;margin:1.4em 0 .4em;border-bottom:1px solid #dde2e8}"
    "p.note,span.note{color:#5b6672;font-size:.92em}"
    "table{border-collapse:collapse;margin:.3em 0}td,th{padding:2px 9px;text-align:right;vertical-align:top}"
    "th{background:#eef1f4;font-weight:600;white-space:nowrap}tr:nth-child(even) td{background:#f4f6f8}"
    "td.l,th.l{text-align:left}table.sortable th{cursor:pointer}"
    "th[data-sorted=desc]:after{content:' \\25BE'}th[data-sorted=asc]:after{content:' \\25B4'}"
    ".tk{font-family:ui-monospace,Menlo,Consolas,monospace;white-space:pre;background:#e9edf1;border-radius:3px;"
    "padding:0 2px;margin-right:3px}"
    ".ctx{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:13px;white-space:pre-wrap;line-height:1.75}"
    ".ctx span{border-radius:2px;display:inline-block;white-space:pre;line-height:1.3}"
    ".ctx span.x{outline:2px solid #1d232b;font-weight:700}"
    ".ctx span.cm{text-decoration:underline 2px #0a7d32;text-underline-offset:3px}"
    ".ctx span.u{background-image:repeating-linear-gradient(45deg,#0000 0 3px,#c9cfd6 3px 4px)}"
    "table.ex td.ctx{text-align:left}.legend{display:flex;align-items:center;gap:.6em;margin:.4em 0;font-size:.9em}"
    ".legend .bar{width:280px;height:12px;border:1px solid #aab}.legend .ticks{display:flex;"
    "justify-content:space-between;width:282px;font-size:.85em;color:#5b6672}"
    "#js-error{background:#fde2e1;color:#8a1010;padding:.5em 1em;white-space:pre-wrap}"
    "input#filter{font-size:1em;padding:3px 6px;width:22em;margin:.3em 0}"
    ".cards{display:flex;flex-wrap:wrap;gap:1.2em}.card{background:#fff;border:1px solid #dde2e8;"
    "border-radius:6px;padding:.5em .9em}svg text{font:11px system-ui,sans-serif;fill:#3a4450}";

static const char *script =
    "(function(){var E=document.getElementById('js-error');"
    "window.onerror=function(m,s,l){E.hidden=false;E.textContent+='JavaScript error: '+m+' (line '+l+')\\n';};"
    "function key(td){var v=td.getAttribute('data-v');if(v===null)v=td.textContent;var f=parseFloat(v);"
    "return isNaN(f)?v:f;}"
    "function sortBy(t,c,asc){var b=t.tBodies[0],r=[].slice.call(b.rows);r.sort(function(x,y){"
    "var a=key(x.cells[c]),d=key(y.cells[c]);if(typeof a!==typeof d)return typeof a==='number'?-1:1;"
    "var o=a<d?-1:a>d?1:0;return asc?o:-o;});var g=document.createDocumentFragment();"
    "r.forEach(function(x){g.appendChild(x);});b.appendChild(g);var h=t.tHead.rows[0].cells;"
    "for(var i=0;i<h.length;i++)h[i].removeAttribute('data-sorted');h[c].setAttribute('data-sorted',asc?'asc':'desc');}"
    "[].forEach.call(document.querySelectorAll('table.sortable'),function(t){"
    "[].forEach.call(t.tHead.rows[0].cells,function(th,c){th.addEventListener('click',function(){"
    "sortBy(t,c,th.getAttribute('data-sorted')==='desc');});});});"
    "var m=/sort=([\\w.-]+)/.exec(location.hash);if(m){var th=document.querySelector('th[data-key=\"'+m[1]+'\"]');"
    "if(th)sortBy(th.closest('table'),th.cellIndex,false);}"
    "var f=document.getElementById('filter');if(f)f.addEventListener('input',function(){var q=f.value.toLowerCase();"
    "[].forEach.call(document.querySelectorAll('table.sortable tbody tr'),function(r){"
    "r.hidden=!!q&&r.textContent.toLowerCase().indexOf(q)<0;});});"
    "document.body.setAttribute('data-js','ok');})();";

void html_begin(FILE *f, const char *title) {
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
          "<meta name=\"viewport\" content=\"width=device-width\"><title>",
          f);
    html_text(f, title);
    fprintf(f, "</title><style>%s</style></head>\n<body>\n", style);
    fputs("<nav><a href=\"index.html\">probe report</a><a href=\"index.html#layers\">layers</a>"
          "<a href=\"index.html#concepts\">concepts</a><a href=\"index.html#ablations\">ablations</a></nav>\n"
          "<div id=\"js-error\" hidden></div>\n<main>\n",
          f);
}

void html_end(FILE *f) { fprintf(f, "</main>\n<script>%s</script>\n</body></html>\n", script); }

void html_text(FILE *f, const char *s) {
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        switch (*p) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        case '\n': fputs("\xe2\x86\xb5", f); break; /* ↵ */
        case '\t': fputs("\xe2\x87\xa5", f); break; /* ⇥ */
        default:
            if (*p < 0x20 || *p == 0x7f)
                fputs("\xef\xbf\xbd", f);
            else
                fputc(*p, f);
        }
    }
}

void html_num(FILE *f, double v, int decimals) {
    if (isnan(v))
        fputs("\xe2\x80\x94", f); /* — */
    else
        fprintf(f, "%.*f", decimals, v);
}

const char *html_heat(double v, double lo, double hi, char buf[8]) {
    /* white to orange (240, 96, 16) above 0, to blue (70, 130, 235) below */
    double a = 0, r = 255, g = 255, b = 255, tr = 255, tg = 255, tb = 255;
    if (v > 0 && hi > 0) {
        a = v >= hi ? 1 : v / hi;
        tr = 240, tg = 96, tb = 16;
    } else if (v < 0 && lo < 0) {
        /* on the scale of the larger side: GELU's small negative values stay
         * faint next to a neuron's large positive ones */
        double s = -lo > hi ? -lo : hi;
        a = -v >= s ? 1 : -v / s;
        tr = 70, tg = 130, tb = 235;
    }
    if (!(a >= 0)) a = 0;
    r += (tr - r) * a, g += (tg - g) * a, b += (tb - b) * a;
    snprintf(buf, 8, "#%02x%02x%02x", (int)lround(r), (int)lround(g), (int)lround(b));
    return buf;
}

void html_legend(FILE *f, double lo, double hi, const char *what) {
    char c0[8], c1[8], c2[8];
    fputs("<div class=\"legend\"><span>", f);
    html_text(f, what);
    fprintf(f, "</span><div><div class=\"bar\" style=\"background:linear-gradient(to right,%s,%s %.0f%%,%s)\"></div>",
            html_heat(lo, lo, hi, c0), html_heat(0, lo, hi, c1), lo < 0 && hi > lo ? 100 * -lo / (hi - lo) : 0,
            html_heat(hi, lo, hi, c2));
    fprintf(f, "<div class=\"ticks\"><span>%.3g</span>", lo);
    if (lo < 0) fputs("<span>0</span>", f);
    if (hi > 0) fprintf(f, "<span>%.3g</span><span>%.3g</span>", hi / 2, hi);
    fputs("</div></div></div>\n", f);
}

void html_histogram(FILE *f, const uint32_t *h, int n_bins) {
    int lo = -1, hi = -1;
    uint64_t total = 0;
    for (int b = 0; b < n_bins; b++)
        if (h[b]) {
            if (lo < 0) lo = b;
            hi = b;
            total += h[b];
        }
    enum { COLS = 200, W = 640, H = 150, PAD = 34, BASE = 120 };
    fprintf(f, "<svg class=\"hist\" data-total=\"%llu\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">"
               "<title>activation histogram (log counts)</title>",
            (unsigned long long)total, W, H, W, H);
    if (lo < 0) {
        fputs("<text x=\"10\" y=\"60\">no tokens</text></svg>\n", f);
        return;
    }
    int span = hi - lo + 1, cols = span < COLS ? span : COLS;
    double col[COLS] = {0}, top = 0;
    for (int b = lo; b <= hi; b++) col[(int64_t)(b - lo) * cols / span] += h[b];
    for (int c = 0; c < cols; c++)
        if (log1p(col[c]) > top) top = log1p(col[c]);
    double cw = (double)(W - 2 * PAD) / cols;
    fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#889\"/>", PAD, BASE, W - PAD, BASE);
    for (int c = 0; c < cols; c++) {
        if (col[c] <= 0) continue;
        double hgt = (BASE - 8) * log1p(col[c]) / top;
        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.2f\" height=\"%.1f\" fill=\"#e0782c\"/>", PAD + c * cw,
                BASE - hgt, cw > 1.5 ? cw - 0.4 : cw, hgt);
    }
    /* x ticks: the value at the lower edge of the first bin of 5 columns, the top end */
    for (int k = 0; k <= 4; k++) {
        int c = k * (cols - 1) / 4, b = lo + (int)((int64_t)c * span / cols);
        double elo, ehi;
        act_hist_edges(b, &elo, &ehi);
        double v = k == 4 ? (isfinite(ehi) ? ehi : elo) : elo;
        double x = PAD + (k == 4 ? cols : c) * cw;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#889\"/>"
                   "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.3g</text>",
                x, BASE, x, BASE + 4, x, BASE + 16, v);
    }
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">activation (record-time bins: fine near GELU's "
               "minimum and 0, 32 per octave above 0.125; not a linear axis)</text>",
            W / 2, H - 4);
    fprintf(f, "<text x=\"4\" y=\"12\">log count (max %.0f)</text></svg>\n", expm1(top));
}

void html_bars(FILE *f, const char *const *label, const double *value, const double *err, int n, const char *y_title) {
    double top = 0, bot = 0;
    for (int i = 0; i < n; i++) {
        double a = value[i] + (isfinite(err[i]) ? err[i] : 0), b = value[i] - (isfinite(err[i]) ? err[i] : 0);
        if (a > top) top = a;
        if (b < bot) bot = b;
    }
    if (top - bot <= 0) top = 1;
    enum { BW = 64, H = 240, PADL = 60, PADT = 16, PADB = 40 };
    int W = PADL + BW * (n > 4 ? n : 4) + 10, ph = H - PADT - PADB;
    double scale = ph / (top - bot), y0 = PADT + top * scale;
    fprintf(f, "<svg class=\"bars\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\"><title>", W, H, W,
            H);
    html_text(f, y_title);
    fputs("</title>", f);
    fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#667\"/>", PADL, y0, W - 6, y0);
    fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">0</text>", PADL - 4, y0 + 4);
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%.3g</text>", PADL - 4, PADT + 4, top);
    if (bot < 0 && PADT + ph - y0 > 12) /* not over the 0 */
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%.3g</text>", PADL - 4, PADT + ph, bot);
    fprintf(f, "<text x=\"4\" y=\"10\">");
    html_text(f, y_title);
    fputs("</text>", f);
    for (int i = 0; i < n; i++) {
        double x = PADL + BW * i + 10, v = value[i], yv = y0 - v * scale;
        fprintf(f, "<rect class=\"bar\" data-label=\"");
        html_text(f, label[i]);
        fprintf(f, "\" data-v=\"%.6g\" x=\"%.1f\" y=\"%.1f\" width=\"%d\" height=\"%.1f\" fill=\"%s\"><title>", v, x,
                v >= 0 ? yv : y0, BW - 20, fabs(v * scale), v >= 0 ? "#e0782c" : "#4682eb");
        html_text(f, label[i]);
        fprintf(f, ": %+.4f +- %.4f</title></rect>", v, err[i]);
        if (isfinite(err[i]) && err[i] > 0) {
            double cx = x + (BW - 20) / 2.0, ya = y0 - (v + err[i]) * scale, yb = y0 - (v - err[i]) * scale;
            fprintf(f, "<path class=\"err\" d=\"M%.1f %.1fV%.1fM%.1f %.1fh10M%.1f %.1fh10\" stroke=\"#222\"/>", cx, ya,
                    yb, cx - 5, ya, cx - 5, yb);
        }
        /* under its bar, in two lines at the first space ("neuron" over
         * "5:609"): one line of a long label runs into its neighbours' */
        const char *sp = strchr(label[i], ' ');
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">", x + (BW - 20) / 2.0, H - PADB + 14);
        if (sp) {
            char head[64];
            snprintf(head, sizeof head, "%.*s", (int)(sp - label[i]) < 63 ? (int)(sp - label[i]) : 63, label[i]);
            html_text(f, head);
            fprintf(f, "<tspan x=\"%.1f\" dy=\"13\">", x + (BW - 20) / 2.0);
            html_text(f, sp + 1);
            fputs("</tspan>", f);
        } else {
            html_text(f, label[i]);
        }
        fputs("</text>", f);
    }
    fputs("</svg>\n", f);
}
