/* progress.h — a one-line progress bar on stderr, drawn only when stderr is a
 * terminal (and not disabled); otherwise every call is a no-op and the
 * command prints its own one-line summary at the end.
 *
 *   Progress *p = progress_new(enabled, frac_at_start);
 *   if (progress_due(p)) progress_draw(p, frac, "12/40 docs  5,123 tokens  1,234 tok/s");
 *   progress_end(p);  // clears the line; frees p
 *
 * progress_due is cheap (one clock read) and says when a redraw is due (about
 * 10 per second), so callers format their detail text only then. The ETA
 * comes from the fraction done since progress_new (frac_at_start lets a
 * resumed job start part way). */
#ifndef PROBE_PROGRESS_H
#define PROBE_PROGRESS_H

typedef struct Progress Progress;

Progress *progress_new(int enabled, double frac_at_start); /* NULL if out of memory: calls accept NULL */
int progress_due(Progress *p);
void progress_draw(Progress *p, double frac, const char *detail);
void progress_end(Progress *p);
/* Formats a count with thousands separators into buf (>= 32 bytes). */
const char *progress_count(char *buf, long long n);

#endif
