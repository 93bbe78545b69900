package volume

// SetExecProtocols replaces the exec subprotocols offered (tests only:
// offering v4 alone makes the API server proxy the WebSocket to the
// kubelet instead of translating it to SPDY). It returns the restore.
func SetExecProtocols(p ...string) func() {
	old := execProtocols
	execProtocols = p
	return func() { execProtocols = old }
}
