// Package checker verifies a repository: that every index file decodes,
// every indexed pack exists with a plausible size, every snapshot loads and
// every tree and data blob it references is indexed; and, with ReadData,
// that packs hash to their names and every blob decrypts, decompresses and
// hashes to its ID. Damage is reported precisely: which pack, which blobs,
// and which snapshots and files they belong to.
package checker
