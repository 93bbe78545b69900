// Package restserver is the server of "bunker serve": it hosts
// repositories in a directory and serves them over HTTP/2 (TLS) with the
// bunker REST protocol, which the rest: backend (internal/storage/rest)
// speaks. Each repository is stored with the local backend
// (internal/storage/local), so every object is written atomically and
// durably (temporary file, fsync, rename).
//
// # Protocol (version 1)
//
// A repository is named by a path: "/", "/name" or "/user/name" (at most
// 8 segments of 1 to 64 characters of [A-Za-z0-9._-], not starting with
// a dot, none of them "config", "metrics" or a type name). Its objects
// are
//
//	<repo>/config                the repository config
//	<repo>/<type>/<name>         type: keys packs index snapshots sessions maint
//	                             name: [a-z0-9._-], not starting with a dot, at most 200 characters
//
// where <repo> is "" for the repository "/". Requests:
//
//	POST   <repo>/?create=true   create the repository (200); 409 if it already has a config
//	GET    <repo>/               RepoInfo JSON: {"protocol":1,"exists":true,
//	                             "features":{"conditional_create":true,"append_only":false}}
//	                             (200 also for a repository that does not exist yet)
//	GET    <repo>/<type>/        list: [{"name":"…","size":123,"mtime":"RFC 3339"},…];
//	                             a repository that does not exist lists nothing
//	HEAD   <repo>/<object>       stat: Content-Length and Bunker-Mtime (RFC 3339, ns)
//	GET    <repo>/<object>       load; "Range: bytes=F-L" or "bytes=F-" reads a range (206
//	                             with Content-Range); a range past the end is 416
//	POST   <repo>/<object>       save (body = object, Content-Length required, 411 otherwise);
//	                             "If-None-Match: *" makes it an atomic conditional create,
//	                             412 when the object exists; 413 above --max-request-size;
//	                             404 when the repository does not exist
//	DELETE <repo>/<object>       remove; removing a missing object succeeds
//	GET    /metrics              Prometheus metrics (credentials needed unless --metrics-no-auth)
//
// Every reply carries "Bunker-Features: conditional-create" (plus
// ", append-only" when the server runs with it). Status codes: 400 bad
// path, name, range or header; 401 missing or wrong credentials; 403
// refused (another user's repository with private repositories, or, when
// append-only, a delete, an overwrite, a maint/ write or a name that is
// not the hash of the body, or a store that refuses); 404 no such object
// or repository; 408 a body slower than the minimum transfer rate;
// 409/412 exists; 413 too large; 503 overloaded (Retry-After) or shutting
// down; 507 store full; 500 other failures (details only in the server
// log). Clients retry 5xx (and 408) only. An error reply carries its
// message in the body and in the header "Bunker-Error" (printable ASCII,
// at most 256 bytes), which clients quote; they never quote a body.
//
// # Security
//
// Every path segment is checked against the charsets above before any
// file system access, so no request reaches outside the served
// directory ("..", "%2e%2e", "a%2fb" and the like get 400). Users come
// from an htpasswd file with bcrypt hashes; a verified password is
// remembered for a minute (as an HMAC under a key made at start, never in
// clear). With private repositories user U reaches only /U/….
//
// In append-only mode (the credential of a backup host, which holds the
// repository password, so whatever it writes is untrusted input to
// maintenance and to other hosts' restores) a client may write only what
// a backup writes, in the shape docs/FORMAT.md gives it:
//
//	config                    created once; re-uploading the same bytes is fine
//	keys/ packs/ index/ snapshots/
//	                          named by the lower-case hex BLAKE3-256 of the
//	                          body, which the server checks (403 otherwise)
//	sessions/s-<24 hex>       writer sessions: refreshed and removed freely
//	maint/                    nothing (403): plans, the lease, clock probes
//	                          and the retention ledger are prune's, and prune
//	                          needs a maintenance credential
//
// Other names get 400. Nothing can be deleted except sessions, and nothing
// replaced except by the same bytes (which changes nothing and lets a
// client retry a save whose reply was lost). The maintenance credential is
// a server without --append-only on the same directory (or the directory
// itself); it may write and delete any valid name.
//
// Without --tls-cert/--tls-key the server makes a self-signed ECDSA P-256
// certificate on first start and keeps it in <dir>/.bunker-serve/, so its
// SHA-256 fingerprint (which clients pin with BUNKER_REST_FINGERPRINT)
// stays the same across restarts.
//
// # Limits
//
// One tenant must not be able to stall the others. Request bodies are
// held in memory while they are saved (the local backend takes a byte
// slice), and memory is taken as body bytes arrive, never reserved for a
// claimed Content-Length: a body's buffer starts at 64 KiB and doubles up
// to its Content-Length, the old and the new buffer both counted while it
// grows (so a body of n bytes holds less than 2n). At most
// Options.UploadMemory bytes are held at once, and the requests of one
// user hold at most Options.UserUploadMemory of them (default: the larger
// of a quarter of the budget and twice the largest request; never more
// than half the budget), so no user can take it all. A request that gets
// no memory for 10 s is answered 503 with Retry-After. At most
// Options.MaxConcurrent requests are served at once, and with users one
// user holds at most half of them; its requests beyond get 503 at once.
//
// A transfer slower than Options.MinTransferRate (default 8 KiB/s),
// measured over a sliding window of Options.TransferWindow (default
// 30 s) and checked first when the transfer is a window old, is cut off:
// an upload is answered 408, a download's connection or stream is
// reset. So a client that sends headers and a few bytes and then stalls
// holds a slot and 64 KiB for about one window. Time the server spends
// waiting for upload memory does not count against the client.
//
// Shutdown stops accepting connections and lets requests in flight
// finish, for at most Options.ShutdownTimeout.
package restserver
