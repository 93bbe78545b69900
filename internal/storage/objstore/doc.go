// Package objstore holds what the object-store backends (s3, azure, gcs)
// share: the layout of a repository's objects under a key prefix, the
// cleaning of that prefix, the error type that carries a short message,
// the storage sentinel it stands for and the error of the client
// library, and a few parts of the storage.Backend contract implemented
// once (ListConfig, which the rest backend uses too, and LoadAtEnd).
//
// # Layout
//
//	PREFIX/config
//	PREFIX/keys/NAME, index/NAME, snapshots/NAME, sessions/NAME, maint/NAME
//	PREFIX/packs/XX/NAME         XX = the first two characters of NAME
//
// This is the layout of the local backend, so a repository can be copied
// between a directory and a bucket with generic tools. With an empty
// prefix the objects are at the root of the bucket ("config",
// "packs/XX/NAME").
//
// Layout.HandleOf is the inverse of Layout.Key: it accepts exactly the
// keys Key makes from valid handles, and nothing else (foreign objects,
// packs outside their shard, names that are not valid object names), so
// that listings skip what the repository did not write.
//
// # Replies
//
// Errors of all the HTTP backends (rest too) quote nothing of a reply but
// what the store's protocol says, cleaned. The parts of that rule they
// share are here: CleanText and IsCode for what may be quoted;
// IsNotHTTP, IsXMLError, IsJSONError and IsValueError to find the errors
// of net/http and the decoders, whose messages quote bytes of a reply;
// ReplyReader to tell a broken transfer from the error of what reads the
// body. Each backend parses its own protocol's error replies.
package objstore
