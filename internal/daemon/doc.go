// Package daemon runs a plan: every job and drill on its schedule, at most
// once per slot and once at a time, measurements of RPO and the copy rule,
// alerts on changes, Prometheus metrics, and an HTTP API (Handler) that
// the dashboard and bunker status read. The work itself is done by a
// Runner (AppRunner, over the use cases of package app); the run history
// lives in a state.Store, which Serve opens and HistoryClient reads.
//
// Guarantees of the HTTP API, whoever reaches its listener:
//   - With a token configured (HandlerOptions), every request that reveals
//     state or starts work needs one; a request without it is answered
//     401 from its header alone, before any state is read or repository
//     opened. Tokens are compared as SHA-256 digests in constant time.
//   - Snapshot listings, which open repositories (a password command and
//     a key derivation each), always need a token; they are shared and
//     cached per repository, and at most maxAPIOpens run at once.
//   - Only Host headers no DNS answer can redirect, or configured names,
//     are served (hostGuard, against DNS rebinding).
//   - Served through NewServer and LimitListener, a client holds at most
//     one of MaxConnections connections, MaxHeaderBytes of header, for
//     bounded times.
//   - Run logs, errors and notifications carry the plan's secrets only as
//     [redacted].
package daemon
