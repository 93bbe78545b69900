// Package e2e holds end-to-end tests that build the real bunker binary once
// and run it as separate processes: several writers and prune at once,
// kill -9 at random moments, another user's permissions, and large files.
// It has no code of its own; everything is in its _test.go files.
package e2e
