// Package gcs implements storage.Backend on Google Cloud Storage, with the
// cloud.google.com/go/storage client over the JSON API.
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
// are left for the retry decorator. The client itself tries a request at
// most twice (Config.MaxAttempts), and only when the library deems it
// idempotent.
//
// Errors quote of a reply only the status and, from a JSON error
// document, the reason and the message (one clean line of at most 256
// bytes), never the body (googleapi.Error keeps it): the endpoint may be
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
