// Package notify delivers the backup daemon's alerts: webhooks (a JSON
// body or a Slack/Mattermost-compatible one), healthchecks.io pings and
// e-mail through SMTP, as configured by a plan's notify section.
//
// # Guarantees
//
//   - Notify tries every target that wants an event, in parallel, and
//     returns errors.Join of the deliveries that failed after their
//     retries; one broken target never hides the others.
//   - A delivery is retried (default 3 times, backoff 1s, 2s, 4s) on
//     network errors, HTTP 408/429/5xx and SMTP 4xx replies; HTTP 3xx/4xx,
//     SMTP 5xx, TLS and configuration errors are permanent. Redirects are
//     not followed by the default client (a POST must not silently turn
//     into a GET). Nothing outlives the caller's context.
//   - Secrets never reach logs or errors: URLs are shown as
//     scheme://host/path with the userinfo, query and fragment removed and
//     the path cut at its first segment that is not a plain word (see
//     Redact: Slack, Mattermost and healthchecks.io keep their token in the
//     path); the SMTP password is resolved from its secret reference only
//     to authenticate.
//   - E-mail headers cannot be injected: titles are flattened to one line
//     and every header value with CR or LF is rejected.
//
// # Webhook body, format "json" (the default)
//
// A POST with Content-Type application/json and this object (keys always
// present, in this order; "fields" is {} when empty):
//
//	{
//	  "source": "bunker",
//	  "kind": "failure",           // failure | rpo | rto | drill | recovery | 321
//	  "severity": "critical",      // critical | warning | info
//	  "job": "home",               // job, drill or dataset name
//	  "title": "job home failed",  // one line
//	  "message": "…",              // details, at most 16 KiB (then cut, marked "… (truncated)")
//	  "time": "2026-05-04T02:00:00Z", // RFC 3339, UTC
//	  "run_id": "r-42",            // "" when the event belongs to no run
//	  "host": "backup1",           // the host bunker runs on
//	  "fields": {"repository": "nas"} // extra facts
//	}
//
// # Webhook body, format "slack"
//
// Slack and Mattermost incoming webhooks:
//
//	{"text": "<title>\n<message>",
//	 "attachments": [{"color": "danger|warning|good",
//	                  "fields": [{"title": "Job", "value": "home", "short": true}, …]}]}
//
// The fields are Job, Kind, Severity, Host, Run (when set), Time, then the
// event's fields sorted by name. & < > are escaped as Slack requires, so an
// error text can neither mention @channel nor forge a link. The colour is
// danger for critical, warning for warning and good for info.
//
// # Healthchecks
//
// Ping follows the healthchecks.io protocol: POST URL/start when a job
// starts, URL when it succeeded and URL/fail when it failed, with a text
// body of at most 10 000 bytes (the error, for a failure).
//
// # E-mail
//
// A plain-text UTF-8 message (quoted-printable) with From, To, Subject
// "[bunker] <title>", Date, Message-ID (the same for every retry of one
// event), Auto-Submitted: auto-generated and X-Bunker-Kind/-Severity/-Job
// headers. STARTTLS is used when the server offers it (email.starttls
// unset), required (true) or never used (false); the server certificate
// is always verified against the system roots (point SSL_CERT_FILE at a
// bundle that holds a private CA). With a username, AUTH PLAIN is used, and only over TLS or
// to a loopback server: the password is never sent in clear over a
// network.
package notify
