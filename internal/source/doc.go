// Package source is what database and other non-file sources share: the
// Sink they stream their files into, the Tree they read a backup back
// from, and Command, which runs a dump or restore tool and turns its
// failure into an error that carries the tool's own message.
//
// Sources never import the engine: the engine's streamtree package
// implements Sink and Tree on top of a repository. A source guarantees
// that a backup either returns nil with every file complete, or an error;
// the caller commits a snapshot only on nil.
package source
