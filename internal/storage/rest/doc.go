// Package rest implements storage.Backend on a bunker REST server
// ("bunker serve", internal/restserver, which documents the protocol).
//
// # Location
//
//	rest:https://user@host:8000/repo
//	rest:https://host:8000/           (the repository "/", no credentials)
//	rest:http://user@host:8000/u/repo (plain HTTP: only behind a TLS proxy or on loopback)
//
// The repository path has at most 8 segments of [A-Za-z0-9._-]. A
// password in the URL (https://user:pw@host/…) is accepted but
// discouraged: it ends up in shell history and process lists. Location()
// never shows it.
//
// # Environment
//
//	BUNKER_REST_PASSWORD     the password of the user in the URL (wins over one in the URL)
//	BUNKER_REST_CA           PEM file of CA certificates to verify the server with,
//	                         instead of the system roots
//	BUNKER_REST_FINGERPRINT  sha256:<64 hex digits>: accept exactly the server
//	                         certificate with this SHA-256 fingerprint (what
//	                         "bunker serve" prints for its self-signed certificate);
//	                         chain and host name are then not checked
//
// HTTPS connections use HTTP/2. Loads stream the reply body to the
// callback with a Range request; saves send the object as the body of a
// POST (net/http may still read a request body after the reply arrived,
// so Save stops that reader before it returns and never keeps data).
//
// # Errors
//
// Replies map to the storage sentinels: 404 ErrNotExist, 409/412
// ErrExists, 403 ErrPermission, 401 ErrAuth, 507 ErrNoSpace; other 4xx
// (400 bad request, 413 too large, 416 range past the end) are
// storage.Permanent; 5xx, 408, 429 and network errors are left
// transient for the retry decorator. Certificate failures (a wrong
// fingerprint, an unknown CA) are permanent. The client does no retries
// of its own beyond what net/http does for idempotent requests on a
// broken keep-alive connection.
//
// An error quotes the server's message only from the Bunker-Error header
// of the reply (cleaned: one line, no control characters, at most 256
// bytes), never the reply's body: the URL may lead to something that is
// not a bunker server (a proxy's error page, or an internal service that
// a tenant names to read it through error messages). For the same reason
// a 200 reply whose body is not the protocol's JSON fails with an error
// that names no byte of it, and so does a reply that is not valid HTTP.
package rest
