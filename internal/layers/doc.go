// Package layers holds no code: its test checks the import rules of
// docs/ARCHITECTURE.md — who may import whom — on every package of the
// module.
package layers
