// Package crypto seals and opens repository data and derives key-encryption
// keys from passwords.
//
// Sealing is AES-256-GCM with a random 96-bit nonce per message; the sealed
// form is nonce || ciphertext || 16-byte tag, and the caller supplies
// additional authenticated data (AAD) that binds the message to its role
// (object header, blob type and ID). Passwords are stretched with argon2id;
// the parameters travel with each key object so they can be raised later
// without breaking old keys.
package crypto
