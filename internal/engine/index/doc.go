// Package index maps blob IDs to their location in packs.
//
// Index files are write-once: each backup session writes one (or several,
// at checkpoints) listing the blobs of the packs it uploaded; maintenance
// merges them into new files that name the files they supersede. A reader
// loads every file not superseded by another.
//
// # Memory
//
// The in-memory Index is a sorted array of 29-byte entries: the first 14
// bytes of the blob ID, then the type, pack number, offset, sealed length
// and plaintext length packed into 15 bytes (the entry type in index.go
// has the layout and why every conforming location fits; one that does not
// is kept whole in a side table). A directory of the array's positions by
// the top bits of the prefix (at most an eighth of a byte per blob)
// narrows a lookup to a bucket of 32 to 64 entries. A pack costs its
// 32-byte ID, a byte, and 5 to 11 bytes of hash table. Recent additions
// wait in a small hash buffer, with their full IDs, and are merged into
// the array in batches. A loaded index of 16 blobs per pack (1 MiB chunks,
// 16 MiB packs) takes about 31.6 bytes per blob, of 256 per pack about
// 29.3, restic's about 69 and 68 (docs/PERFORMANCE.md, "Index memory").
//
// # Prefixes
//
// Blob IDs are keyed BLAKE3 hashes (docs/FORMAT.md: the id_key is secret),
// so two IDs share a 14-byte (112-bit) prefix only by chance, with odds of
// about n²/2^113 for n blobs (about 10^-20 for 10 million, 10^-18 for 100
// million), and nobody without the key can choose content to make them.
// A writer with the key could find such a pair with about 2^56 hashes, but
// it can store any index file it likes anyway, and no read returns wrong
// bytes whatever the files claim (below). A lookup by full ID compares the
// prefix. Where the full IDs are seen the index still checks: when a batch
// of index files is added (LoadIndex adds every file as one Batch, streamed:
// entries of one prefix that place it differently make it read the files
// again for their IDs) and when the recent buffer is merged, two different
// IDs with one prefix are found, and every entry under that prefix is then
// kept whole in a side table, so that Lookup, LookupAll and Has of either
// answer exactly.
//
// The residual case: a blob added after an entry with the same prefix was
// merged (a session's new blob, a file loaded by RefreshIndex), with no
// single batch naming both, is taken for a second copy of the earlier
// blob. A backup would then deduplicate the new blob against the old one
// and not store it. That is the 2^-112-class chance above, and it cannot
// pass wrong bytes off as the blob: every read checks the full ID twice,
// the AEAD of the sealed blob authenticates its type and full ID
// (pack.Codec.OpenBlob, blobAAD) and the plaintext must hash to it
// (repository.OpenSealed, which LoadBlob and the restorer's read-ahead
// use), so restoring a snapshot that needs the unstored blob fails with
// an error naming it. check, which looks blobs up without reading them
// for the snapshots, would take the other blob's entry for it. When both
// blobs were stored (the RefreshIndex case), the next process that loads
// the index files sees both IDs in one batch and keeps them apart.
//
// # Full IDs
//
// Each and PackContents give full IDs: they read them from a Source, the
// index files (and pending entries) the index was built from, streamed one
// at a time (repository.IndexSource), matching each file entry to the
// resident entry equal to it (prefix, type, pack, offset, lengths). They
// need 18 bytes and a bit per blob while they run, nothing after. Equal
// resident entries come from several files; each takes one file's name,
// so two files naming two blobs at one place keep both names (and prune
// keeps such a place while either is reachable). More files naming other
// blobs at one place than the index holds entries for (a file planted
// after the index was loaded, read because a compaction removed a loaded
// one) make them fail with an error naming two IDs rather than pick one
// (maintenance.TestPlantedNameDuringPrune, TestEachRefusesDisagreeingFiles).
//
// # Maintenance at scale
//
// View numbers the entries (Len positions; Find, At, EachIn), so that
// prune marks reachable blobs with a bit per entry and reads full IDs only
// for the packs it repacks: planning for 100 million blobs takes little
// more than the loaded index (docs/PERFORMANCE.md, "Maintenance at scale").
package index
