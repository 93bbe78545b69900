// Package layers holds no code: its tests check the import rules of
// docs/ARCHITECTURE.md — who may import whom — on every package of the
// module, and that the CLI's functions stay short (flags, a use case,
// printing).
package layers
