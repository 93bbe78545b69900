// Package gcs implements storage.Backend on Google Cloud Storage, with the
// JSON API client google.golang.org/api/storage/v1 and the credentials of
// cloud.google.com/go/auth. (The cloud.google.com/go/storage client it used
// before links gRPC, xDS and Envoy's protos, which cost every bunker
// command about 17 MB of binary and startup memory: docs/BUILD.md.)
//
// # Location
//
//	gs:BUCKET:/PREFIX
//	gs:BUCKET                    (the root of the bucket)
//
// BUCKET follows the Cloud Storage naming rules. PREFIX is optional; the
// slashes around it are dropped and it may not hold empty, "." or ".."
// elements.
//
// # Environment
//
//	GOOGLE_APPLICATION_CREDENTIALS  JSON credentials file: a service account key, or
//	                                an authorized_user, impersonated_service_account or
//	                                external_account configuration (its "type" is
//	                                checked). Unset: Application Default Credentials
//	                                (metadata server, gcloud user credentials).
//	GOOGLE_PROJECT_ID               project new buckets are created in (Create only,
//	                                and only when the bucket is missing)
//	STORAGE_EMULATOR_HOST           host:port or URL of an emulator (fake-gcs-server);
//	                                requests go there without credentials
//	BUNKER_GS_STORAGE_CLASS_PACKS   storage class of packs: STANDARD, NEARLINE,
//	                                COLDLINE or ARCHIVE; other objects get the
//	                                bucket's default class
//
// Config.Endpoint (code only) points the client at another JSON API
// endpoint while keeping the credentials.
//
// Every request to the service goes through a transport of the backend's
// own, whose connections Config.Dial (a policy's checked dialer) makes:
// under a policy that lists hosts, storage.googleapis.com (or the
// endpoint) must be one of them. Token requests (to the token endpoint of
// a credentials file, or to the metadata server) go through the auth
// library's own client instead: the link-local metadata server, where
// ambient credentials come from on Google Cloud, is an address a policy's
// dialer refuses, and only a policy that allows ambient credentials lets
// the backend use credentials at all. Google's mutual TLS endpoint
// (GOOGLE_API_USE_CLIENT_CERTIFICATE) is not used.
//
// # Layout
//
//	PREFIX/config
//	PREFIX/keys/NAME, index/NAME, snapshots/NAME, sessions/NAME, maint/NAME
//	PREFIX/packs/XX/NAME         XX = the first two characters of NAME
//
// This is the layout of the local backend, so a repository can be copied
// between a directory and a bucket with generic tools (gcloud storage
// rsync).
//
// # Guarantees
//
// Every object is uploaded in one request by default (Config.ChunkSize
// turns large ones into resumable uploads); Cloud Storage makes an object
// visible only when its upload is finalized, so it appears whole or not at
// all, and an overwrite replaces it atomically. The CRC32C of the data goes
// with the upload and the service checks it. A conditional create
// (SaveOptions.IfNotExists) uploads with ifGenerationMatch=0, so it is
// atomic (Features.ConditionalCreate). Loads are single ranged reads
// streamed to the caller; Stat and List report the creation time of the
// object's current generation.
//
// Errors wrap storage.ErrNotExist (missing object or bucket, 404),
// storage.ErrExists (412 of a conditional create), storage.ErrAuth (401,
// or the token endpoint refusing the credentials), storage.ErrPermission
// (403: missing permissions, retention policies, object holds). Other 4xx
// replies are storage.Permanent; timeouts, 429, 5xx and broken connections
// are left for the retry decorator. The backend itself tries a request
// at most twice (Config.MaxAttempts), with a short randomized pause, and
// only an idempotent one (reads, listings, bucket creation and
// conditional creates; not deletes or overwrites), as the
// cloud.google.com/go/storage client did. A download cut short is read on
// from where it broke, from the same generation of the object; a whole
// object read is checked against the CRC32C the service sends
// (X-Goog-Hash). A resumable upload (Config.ChunkSize) retries each chunk
// for up to 32 seconds.
//
// Errors quote of a reply only the status and, from a JSON error
// document, the reason and the message (one clean line of at most 256
// bytes), never the body (googleapi.Error keeps it) nor its headers: the endpoint may be
// some other HTTP service, and errors reach logs and statuses others
// read. Messages of net/http or a decoder about a reply that is not what
// it should be are left out too.
//
// # Retention
//
// SaveOptions.RetainUntil is ignored and Features.ObjectLock is false:
// fake-gcs-server, the emulator the tests run against, does not enforce
// object retention, bucket retention policies or object holds, so none of
// them were implemented or tested. Policies set up on a real bucket still
// work server-side: deletions and overwrites they refuse fail with
// storage.ErrPermission (403).
//
// # Tests
//
// The tests run the storagetest conformance suite against fake-gcs-server
// (scripts/tools/fake-gcs-server.sh installs it); without it they are
// skipped, unless BUNKER_REQUIRE_SERVERS=1. fake-gcs-server accepts any
// credentials, so rejected credentials are tested with a local token
// endpoint that refuses a generated service account key.
package gcs
