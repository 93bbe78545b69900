// Package azure implements storage.Backend on Azure Blob Storage (block
// blobs), with the azblob SDK.
//
// # Location
//
//	azure:CONTAINER:/PREFIX
//	azure:CONTAINER              (the root of the container)
//
// CONTAINER follows Azure's rules (3-63 lowercase letters, digits and
// single hyphens). PREFIX is optional; the slashes around it are dropped
// and it may not hold empty, "." or ".." elements.
//
// # Environment
//
//	AZURE_STORAGE_ACCOUNT            storage account name
//	AZURE_STORAGE_KEY                shared key of the account (base64)
//	AZURE_STORAGE_SAS_TOKEN          shared access signature (query string, "?" optional)
//	AZURE_STORAGE_CONNECTION_STRING  a connection string; names account, credential
//	                                 and endpoint itself, so set none of the above
//	BUNKER_AZURE_ENDPOINT            blob service URL; wins over
//	AZURE_STORAGE_ENDPOINT           (same); default https://ACCOUNT.blob.core.windows.net/,
//	                                 for Azurite http://127.0.0.1:10000/devstoreaccount1
//	BUNKER_AZURE_ACCESS_TIER_PACKS   access tier of packs: Hot, Cool or Cold (Archive is
//	                                 refused: archived packs cannot be read); other
//	                                 objects get the account default
//
// Exactly one credential is used: a connection string, or the account with
// a shared key or a SAS token. Azure AD credentials (azidentity,
// DefaultAzureCredential, managed identities) are not supported: the
// azidentity module is not a dependency.
//
// A SAS token needs read, add, create, write, delete and list permission on
// the container for full use (create also needs container create
// permission, unless the container exists). Secrets never appear in
// Location, errors or Config.String.
//
// # Layout
//
//	PREFIX/config
//	PREFIX/keys/NAME, index/NAME, snapshots/NAME, sessions/NAME, maint/NAME
//	PREFIX/packs/XX/NAME         XX = the first two characters of NAME
//
// This is the layout of the local backend, so a repository can be copied
// between a directory and a container with generic tools (azcopy).
//
// # Guarantees
//
// Objects up to Config.SingleUploadMax (32 MiB) are written with one Put
// Blob request; larger ones are staged in blocks of Config.BlockSize
// (8 MiB, 4 at a time) and committed with one Put Block List. Either way a
// blob appears whole or not at all, and an overwrite replaces it
// atomically. Every request body carries its MD5, which the service
// checks. A conditional create (SaveOptions.IfNotExists) sends If-None-Match:
// * with the upload or the commit, so it is atomic (Features.ConditionalCreate).
// Loads are single ranged GETs streamed to the caller; Stat and List report
// the service's Last-Modified time (one-second resolution).
//
// Errors wrap storage.ErrNotExist (BlobNotFound, ContainerNotFound, 404),
// storage.ErrExists (BlobAlreadyExists; ConditionNotMet/412 of a
// conditional create), storage.ErrAuth (AuthenticationFailed and other
// signature or token failures, 401, and AuthorizationFailure, which Azurite
// sends for a bad signature and Azure for a request its firewall refuses),
// storage.ErrPermission (permission mismatches of SAS tokens or roles, immutability policies and legal holds,
// leases, archived blobs, other 403s). Other 4xx replies are
// storage.Permanent; timeouts, throttling (429, ServerBusy), 5xx and
// broken connections are left for the retry decorator. The SDK itself
// retries once (Config.MaxRetries) after 200 ms.
//
// Errors quote of a reply only the status and the x-ms-error-code header
// (when it is a code); the codes above come from that header alone, never
// from a body (azcore would take any <code>word</code> of one): the
// endpoint may be some other HTTP service, and errors reach logs and
// statuses others read. Messages of net/http or a decoder about a reply
// that is not what it should be are left out too.
//
// # Immutability
//
// SaveOptions.RetainUntil is ignored and Features.ObjectLock is false:
// version-level immutability policies (and legal holds) were not tested —
// Azurite, the emulator the tests run against, does not enforce them. A
// container-level time-based retention policy set up in Azure still works
// server-side: deletions and overwrites it refuses fail with
// storage.ErrPermission.
//
// # Tests
//
// The tests run the storagetest conformance suite against Azurite
// (scripts/tools/azurite.sh installs it); without it they are skipped,
// unless BUNKER_REQUIRE_SERVERS=1.
package azure
