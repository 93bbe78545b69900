// Package redact replaces known secret values — repository passwords,
// API tokens, cloud keys — with "[redacted]" in text that is kept or
// shown: run logs, error messages, notifications.
//
// Guarantees: every occurrence of every secret of at least MinLen bytes
// is replaced, the longest secret first where two overlap, also in its
// URL-escaped form; a Writer holds back an unfinished line until the
// next newline or Flush, so a secret split across writes is still
// caught unless it spans a newline. Shorter secrets are left alone:
// replacing every "ab" would make logs unreadable and hides nothing.
package redact
