// Package chunker splits byte streams into content-defined chunks for
// deduplication: FastCDC-style normalized chunking over a gear rolling hash
// whose table is derived from a secret per-repository seed, hardened
// against long runs of identical bytes.
//
// Chunk boundaries are part of the repository format: every version of the
// engine must cut the same input at the same places for the same Params,
// or deduplication against existing snapshots is lost. This comment is the
// normative description (docs/FORMAT.md refers to it); the golden test
// (testdata/golden.txt) and the reference implementation in
// reference_test.go pin it.
//
// # Usage
//
//	c := chunker.New(f, chunker.DefaultParams(seed))
//	var buf []byte
//	for {
//		var err error
//		buf, err = c.Next(buf) // the next chunk, in buf's memory
//		if err == io.EOF {
//			break
//		}
//		if err != nil {
//			return err // read error; every byte read before it was returned
//		}
//		store(buf)
//	}
//
// A Chunker holds a buffer of up to 2*Max bytes (16 MiB by default,
// grown on demand from 64 KiB); use Reset to chunk the next file with the
// same buffer. Deriving the gear table costs about 10 µs: NewTable and
// NewWithTable share one table between Chunkers. Next returns the same
// chunks however the reader splits its reads.
//
// # Gear table
//
// The gear table is 256 unsigned 64-bit words derived from the 32-byte
// seed with BLAKE3 in derive_key mode, read as an extendable output:
//
//	out     = BLAKE3-derive_key(context "bunker chunker gear v1", key material = seed),
//	          the first 2048 bytes of its extended output
//	gear[i] = out[8i : 8i+8] as a little-endian uint64, i = 0..255
//
// That is: the context string is hashed with the DERIVE_KEY_CONTEXT flag,
// its 32-byte result keys a hash of the seed with the DERIVE_KEY_MATERIAL
// flag, and the root node is expanded to 2048 bytes (the BLAKE3 XOF;
// blake3.DeriveKey(GearContext, seed[:], out) with github.com/zeebo/blake3).
// Test vector: for the all-zero seed, gear[0] = 0x5f26d7f9cd511e7b,
// gear[1] = 0x9bd9583694a61531, gear[255] = 0xf7fc832c4e262fc6.
//
// The seed must be secret (derived from the repository master key): the
// repository stores chunks encrypted, but their lengths show. With a public
// table, chunk lengths are a fingerprint of known content: whether a given
// file is in a repository could be tested from blob sizes alone. A secret
// table stops that for an attacker who only sees the stored sizes. It is a
// mitigation, not a cryptographic guarantee: an attacker who can also get
// chosen files backed up and watch the resulting sizes can learn about the
// table (see "Breaking and Fixing Content-Defined Chunking", Truong et al.,
// RWC 2025, and "Chunking Attacks on File Backup Services using
// Content-Defined Chunking", Alexeev, Percival and Zhang, 2025).
//
// # Hash
//
// For a chunk candidate ending with byte p, the hash is the gear hash of
// the 64-byte window ending at p, with arithmetic modulo 2^64:
//
//	h(p) = sum over j = 0..63 of gear[x[p-j]] << j
//
// which the recurrence h = h<<1 + gear[b] computes over the bytes in
// order: a byte's contribution is shifted out after 64 steps, so h(p)
// depends on those 64 bytes and nothing else (not on where the chunk or
// the hashing began). Bit k of h depends on the last k+1 bytes only.
//
// If the window is one byte value b repeated 64 times, h is the fixed
// point F(b) = -gear[b] mod 2^64 (= gear[b] * (2^64-1)), whatever came
// before. A position whose hash equals F of its last byte is never a hash
// cut point (below): otherwise, for a seed where F(b) passes
// a mask, every run of 64+ bytes b would be a cut point, and data made of
// short fixed-length runs (a table dump padded with spaces) would be cut
// at the first run after each Min: positions that depend on where the
// previous chunk began, so that one inserted byte shifts every later
// boundary. (A non-uniform window hashes to F(x[p]) with probability
// 2^-64; it is not a cut point either.)
//
// # Masks and normalized chunking
//
// Let b = log2(Avg). There are two masks (FastCDC normalized chunking,
// level 2), each made of the most significant bits of h:
//
//	maskS = the top b+2 bits (harder to pass: probability 1/(4*Avg))
//	maskL = the top b-2 bits (easier: probability 4/Avg)
//
// For the default Avg = 1 MiB (b = 20): maskS = 0xfffffc0000000000 and
// maskL = 0xffffc00000000000. Since bit k of h depends on the last k+1
// bytes only, the top bits give every mask bit the widest window (at least
// 43 bytes with the defaults): the low bits of a gear hash see only the
// last few bytes, which is why FastCDC spreads its mask bits upwards, and
// the top bits are as far as that goes. On low-entropy input it matters:
// on a pgbench-style table dump (6 seeds, 64 MiB each) top-bit masks find
// 333 chunks, the largest 4.2 MiB, where masks spread evenly over bits
// 16-63 find 252, the largest 6.1 MiB.
//
// maskS is used for candidate lengths below the normal point
//
//	N = max(Min, Avg - Min/2)
//
// and maskL from N on. Switching at N rather than at Avg puts the mean
// chunk size of random input close to Avg (0.98*Avg for Min = Avg/2,
// against 1.19*Avg with the switch at Avg); the normalization narrows the
// size distribution around it.
//
// # Cut points
//
// Let x be the input not yet returned, n = len(x) bytes up to the end of
// the stream. For a chunk length L with Min <= L <= min(n, Max), L is a
// cut point if either
//
//   - (hash cut) h = h(L-1) satisfies h & m == 0, where m is maskS if
//     L < N and maskL otherwise, and h != F(x[L-1]); or
//   - (run cut) the bytes x[r:L] are all equal, where r is the start of
//     that run within x (r == 0 or x[r-1] != x[r]), and L - r is a
//     positive multiple of Avg.
//
// The next chunk is then:
//
//  1. all of x if n <= Min;
//  2. otherwise x[:L] for the smallest cut point L, if there is one;
//  3. otherwise all of x if n <= Max (the last chunk of the stream);
//  4. otherwise x[:L] for the L in [Min, Max] with h(L-1) != F(x[L-1])
//     whose h(L-1), as an unsigned integer, is largest, the largest such
//     L on ties; or Max if every window in that range is uniform.
//
// Every byte before Min of a chunk is skipped by the search (the hash
// starts at byte Min-64; Min >= 64 keeps every window inside the chunk),
// and no chunk except the last is shorter than Min or longer than Max.
//
// # Long runs and low-entropy input
//
// A plain CDC chunker finds no hash cut points in input whose windows
// repeat (zeros, padding, a dump of fixed-width rows) and falls back to a
// hard cut at Max. Those cuts are positions relative to the previous cut,
// not to the content, so an insertion near the start of such a file
// shifts every later boundary and the whole file is stored again. Rules
// above that prevent it:
//
//   - Uniform windows are never hash cut points (see Hash).
//   - Run cuts: inside a run of identical bytes, the chunk ends after a
//     multiple of Avg bytes of the run, counted from where the run starts,
//     so long runs are split at content-defined places into equal pieces
//     (which deduplicate), and the chunk that precedes a long run ends
//     within Avg bytes into it.
//   - Rule 4 replaces the hard cut at Max: when a Max window holds no cut
//     point, the chunk ends at the largest hash in it, a content-defined
//     local maximum that both versions of edited input find as long as
//     their windows overlap around it, instead of at a fixed offset. Ties
//     go to the last position, so that periodic input (where the maximum
//     recurs every period) is cut near Max rather than near Min: each such
//     chunk costs two scans of the Max window.
//
// Because of run cuts, the "Max if every window is uniform" case of rule 4
// cannot happen when Max - Min >= Avg, as with the defaults.
//
// The effect, measured by TestInsertResync on 64 MiB of random blocks of
// 1-16 KiB between zero runs of 512 KiB-4 MiB: inserting 100 bytes near the
// start creates one new chunk of 1.0 MiB, where the same chunker with hard
// cuts at Max and without these rules stores all 64 MiB again.
package chunker
