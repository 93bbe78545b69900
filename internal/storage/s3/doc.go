// Package s3 implements storage.Backend on Amazon S3 and S3-compatible
// object stores (MinIO, Ceph RGW, SeaweedFS, versitygw, Wasabi, ...) with
// the minio-go client.
//
// # Location
//
//	s3:https://host[:port]/bucket[/prefix][?option=value&...]
//	s3:http://127.0.0.1:9000/bucket/prefix      plain http (local stores, tests)
//	s3:host/bucket/prefix                       https
//
// For AWS use the regional endpoint, e.g.
// s3:s3.eu-central-1.amazonaws.com/bucket/prefix. The location must not
// hold credentials.
//
// # Options
//
// Every option may be given as a query parameter of the location or as an
// environment variable; the query parameter wins.
//
//	region               BUNKER_S3_REGION               region of the bucket; else AWS_REGION,
//	                                                    AWS_DEFAULT_REGION, else asked from the store
//	bucket-lookup        BUNKER_S3_BUCKET_LOOKUP        auto (default), path (host/bucket/key) or
//	                                                    dns (bucket.host/key)
//	storage-class        BUNKER_S3_STORAGE_CLASS        storage class of every object
//	storage-class-packs  BUNKER_S3_STORAGE_CLASS_PACKS  storage class of packs only (e.g.
//	                                                    STANDARD_IA, GLACIER_IR); metadata stays in
//	                                                    storage-class. Classes that need a restore
//	                                                    before reading (GLACIER, DEEP_ARCHIVE) do
//	                                                    not work.
//	sse                  BUNKER_S3_SSE                  server-side encryption: AES256 or aws:kms
//	sse-kms-key-id       BUNKER_S3_SSE_KMS_KEY_ID       KMS key for aws:kms (implies it)
//	part-size            BUNKER_S3_PART_SIZE            multipart part size, 5MiB..5GiB (default
//	                                                    16MiB); smaller objects take one PUT
//	object-lock          BUNKER_S3_OBJECT_LOCK          true: create the bucket with Object Lock
//	                                                    (see below)
//	conditional-create   BUNKER_S3_CONDITIONAL_CREATE   auto (default), true or false (see below)
//
// SSE-C (encryption with a key of your own, which the store does not keep)
// takes the base64 of a 32-byte key from BUNKER_S3_SSE_C_KEY only, never
// from the location; it needs https. Losing the key loses the repository.
//
// # Credentials
//
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN; without
// them the profile AWS_PROFILE (default "default") of the shared
// credentials file AWS_SHARED_CREDENTIALS_FILE (default ~/.aws/credentials
// and ~/.aws/config); without that the instance's IAM role (EC2 instance
// metadata, ECS task role, EKS web identity). No credentials at all means
// anonymous requests. Secrets never appear in Location, in Config.String
// or in error messages.
//
// # Layout
//
//	<prefix>/config
//	<prefix>/keys/NAME, index/NAME, snapshots/NAME, sessions/NAME, maint/NAME
//	<prefix>/packs/XX/NAME    XX: the first two characters of NAME
//
// Keys that do not fit the layout are never listed.
//
// # Guarantees and features
//
// S3 PUTs are atomic, also multipart uploads (objects larger than the part
// size), and S3 is strongly consistent (read-after-write, list-after-write)
// on AWS and the common compatible stores. Loads are ranged, streamed GETs.
// minio-go retries a request at most Config.MaxRetries-1 times (default:
// never): the retry decorator above the backend retries the transient
// failures, which this package leaves unmarked (5xx replies, throttling,
// network errors); errors the store gives for good reason map to the
// storage sentinels (missing: ErrNotExist, 412 on a conditional create:
// ErrExists, access denied or Object Lock: ErrPermission, bad credentials:
// ErrAuth, quota: ErrNoSpace) or are marked storage.Permanent.
//
// Errors quote of a reply only the status and, from an S3 <Error>
// document, the code and the message (one clean line of at most 256
// bytes): the endpoint may be some other HTTP service, and errors reach
// logs and statuses others read. A transport under minio-go replaces the
// body of every other error reply with nothing before minio-go sees it
// (it would quote 1 KiB of it), and messages of net/http or the XML
// decoder about a reply that is not what it should be are left out.
//
// Conditional create: with conditional-create=auto, Open writes a probe
// object (<prefix>/.bunker-probe-RANDOM, deleted right after) twice with
// If-None-Match: * and reports Features.ConditionalCreate when the store
// refuses the second write with 412 Precondition Failed. AWS S3 (since
// 2024), MinIO and versitygw do. Set it to false for a store that honours
// the header but not atomically; without the feature a conditional Save
// checks for the object first, which races.
//
// Object Lock: Features.ObjectLock is reported when the bucket has Object
// Lock enabled. Save with SaveOptions.RetainUntil then writes the object
// version with that retention (compliance unless RetainMode says
// governance), and ExtendRetention (storage.Retainer) lengthens it, never
// shortening it. With object-lock=true, Create makes the bucket with
// Object Lock (which implies versioning) and fails if the bucket exists
// without it.
//
// Versioned buckets: Remove deletes every version of the object by version
// ID, so that pruning frees space; it deletes the current version last and
// only once all older ones are gone, so an object Object Lock protects
// stays readable when the deletion is refused (ErrPermission). The
// Backend is a storage.Versioner there: AsOf reads the repository as it
// was at a moment, RollBack restores that state by copying old versions
// over the current ones (with the retention they still have) and deleting
// newer objects with delete markers. On an unversioned bucket Remove is a
// plain delete and AsOf and RollBack fail. AsOf and RollBack go by the
// LastModified the store reports for each version; versitygw 1.8 reports
// the time an old version was superseded instead of the time it was
// written, so they give wrong answers there (tested on SeaweedFS).
//
// # Store quirks handled here
//
// versitygw 1.8 leaves the aws-chunked body of an empty PUT unread (empty
// objects are sent with an unsigned payload), ignores If-None-Match on
// CompleteMultipartUpload (conditional creates use one PUT of up to
// 5 GiB), answers GetObjectRetention with an XML root minio-go cannot read
// (read with a request of our own), and answers an unknown access key with
// 404 XAdminUserNotFound (mapped to ErrAuth; a HEAD request, which has no
// body, then sees "not found").
package s3
