// Package pack encodes blobs and the pack files that hold them.
//
// A blob is sealed as AES-256-GCM(nonce, flag || payload) with AAD
// "BLOB" || type || ID, where flag 0 means the payload is the plaintext and
// 1 means it is a zstd frame of the plaintext (used only when it is smaller).
//
// A pack is the object header (type pack, sub-type = the blob type of the
// pack), the sealed blobs back to back, a sealed trailer listing every blob
// (type, ID, offset, length, plaintext length), and a 4-byte little-endian
// length of the sealed trailer. The trailer is what lets the index be rebuilt
// from packs alone. A pack's name is the hex BLAKE3-256 of its whole content,
// so its integrity can be checked without the key.
package pack
