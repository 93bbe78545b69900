package rest

// What a server sends is quoted in errors only when it is proven to be a
// bunker server's (the HeaderError header), and then cleaned
// (objstore.CleanText): errors end up in logs, in statuses a tenant can
// read and in API replies, and the URL may lead to some other service.

// errNotHTTP is a client error about a reply that is not valid HTTP
// (objstore.IsNotHTTP), without the bytes net/http quotes of it. It stays
// transient: a connection may have been garbled on its way.
type errNotHTTP struct{ err error }

func (e errNotHTTP) Error() string {
	return "the reply is not valid HTTP (is something other than a bunker server listening there?)"
}

func (e errNotHTTP) Unwrap() error { return e.err }
