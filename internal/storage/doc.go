// Package storage defines the Backend interface through which the engine
// stores opaque, immutable, named objects, and the sentinel errors that every
// backend maps its own failures to.
//
// A backend knows nothing of snapshots, packs or encryption: it stores bytes
// under a (type, name) handle. The contract every implementation must keep is
// written on the Backend interface and enforced by the conformance suite in
// package storagetest.
package storage
