package mongodb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// Oplog replay and archiving. None of this can be tested against the test
// server (FerretDB has no oplog); the pure parts (entry filtering, chunk
// planning, timestamps) are unit-tested.

// entryAction is what replay does with an oplog entry.
type entryAction int

const (
	entryApply entryAction = iota
	entrySkip
)

// prepareEntry decides whether an oplog entry is replayed and returns it
// as applyOps takes it: without the collection UUID ("ui", which differs
// on the restored server), also inside transactions (applyOps commands),
// whose operations are filtered like top-level ones. No-ops, the local
// and config databases and admin's system collections are skipped, and so
// is what sel does not want.
func prepareEntry(raw bson.Raw, sel *Selector) (bson.Raw, Timestamp, entryAction, error) {
	t, i, ok := raw.Lookup("ts").TimestampOK()
	if !ok {
		return nil, Timestamp{}, entrySkip, errors.New("oplog entry has no timestamp")
	}
	ts := Timestamp{T: t, I: i}
	out, act, err := filterEntry(raw, sel, 0)
	if err != nil {
		return nil, ts, entrySkip, fmt.Errorf("oplog entry %s: %w", FormatTimestamp(ts), err)
	}
	return out, ts, act, nil
}

func filterEntry(raw bson.Raw, sel *Selector, depth int) (bson.Raw, entryAction, error) {
	if depth > 2 {
		return nil, entrySkip, errors.New("applyOps nested too deeply")
	}
	op, ok := raw.Lookup("op").StringValueOK()
	if !ok {
		return nil, entrySkip, errors.New("no op")
	}
	ns, _ := raw.Lookup("ns").StringValueOK()
	if op == "n" {
		return nil, entrySkip, nil
	}
	db, coll, _ := strings.Cut(ns, ".")
	if db == "" {
		return nil, entrySkip, fmt.Errorf("op %q has no namespace", op)
	}
	if db == "local" || db == "config" || (db == "admin" && strings.HasPrefix(coll, "system.")) {
		return nil, entrySkip, nil
	}
	o, _ := raw.Lookup("o").DocumentOK()
	if op == "c" {
		// A command: the collection is the value of its first field
		// (create, drop, collMod…); applyOps carries a transaction.
		first, err := o.IndexErr(0)
		if err != nil {
			return nil, entrySkip, errors.New("command entry without a command")
		}
		if first.Key() == "applyOps" {
			return filterApplyOps(raw, o, sel, depth)
		}
		coll, _ = first.Value().StringValueOK()
		if first.Key() == "renameCollection" {
			// Its value is the full source namespace.
			_, coll, _ = strings.Cut(coll, ".")
		}
		if coll == "" || first.Key() == "dropDatabase" {
			if !sel.WantsDB(db) {
				return nil, entrySkip, nil
			}
			return withoutKeys(raw, "ui"), entryApply, nil
		}
	}
	if !sel.Wants(db, coll) {
		return nil, entrySkip, nil
	}
	return withoutKeys(raw, "ui"), entryApply, nil
}

// filterApplyOps rebuilds a transaction's applyOps command with the
// operations that pass the filter; none left means skip.
func filterApplyOps(raw, cmd bson.Raw, sel *Selector, depth int) (bson.Raw, entryAction, error) {
	arr, ok := cmd.Lookup("applyOps").ArrayOK()
	if !ok {
		return nil, entrySkip, errors.New("applyOps is not an array")
	}
	vals, err := arr.Values()
	if err != nil {
		return nil, entrySkip, err
	}
	var kept []bson.Raw
	for _, v := range vals {
		inner, ok := v.DocumentOK()
		if !ok {
			return nil, entrySkip, errors.New("applyOps holds a non-document")
		}
		out, act, err := filterEntry(inner, sel, depth+1)
		if err != nil {
			return nil, entrySkip, err
		}
		if act == entryApply {
			kept = append(kept, out)
		}
	}
	if len(kept) == 0 {
		return nil, entrySkip, nil
	}
	aidx, a := bsoncore.AppendArrayStart(nil)
	for i, k := range kept {
		a = bsoncore.AppendDocumentElement(a, strconv.Itoa(i), k)
	}
	a, _ = bsoncore.AppendArrayEnd(a, aidx)
	newCmd := replaceValue(cmd, "applyOps", bsoncore.Value{Type: bsoncore.TypeArray, Data: a})
	out := replaceValue(withoutKeys(raw, "ui"), "o", bsoncore.Value{Type: bsoncore.TypeEmbeddedDocument, Data: newCmd})
	return out, entryApply, nil
}

// withoutKeys returns doc without the top-level fields named.
func withoutKeys(doc bson.Raw, keys ...string) bson.Raw {
	elems, err := bsoncore.Document(doc).Elements()
	if err != nil {
		return doc
	}
	idx, out := bsoncore.AppendDocumentStart(nil)
	for _, e := range elems {
		if !slices.Contains(keys, e.Key()) {
			out = append(out, e...)
		}
	}
	out, _ = bsoncore.AppendDocumentEnd(out, idx)
	return out
}

// replaceValue returns doc with the value of key replaced.
func replaceValue(doc bson.Raw, key string, v bsoncore.Value) bson.Raw {
	elems, err := bsoncore.Document(doc).Elements()
	if err != nil {
		return doc
	}
	idx, out := bsoncore.AppendDocumentStart(nil)
	for _, e := range elems {
		if e.Key() == key {
			out = bsoncore.AppendValueElement(out, key, v)
		} else {
			out = append(out, e...)
		}
	}
	out, _ = bsoncore.AppendDocumentEnd(out, idx)
	return out
}

// Replayer applies oplog entries in timestamp order, one applyOps each.
// Entries at or before Pos are skipped (already applied, or part of the
// dump), and so are entries at or after Limit, which end the replay.
type Replayer struct {
	c   *Client
	sel *Selector
	// Pos is the last entry applied (or the position replay starts after).
	Pos   Timestamp
	Limit *Timestamp
	// Applied and Skipped count entries; Done is set once Limit was
	// reached.
	Applied, Skipped int64
	Done             bool
}

// NewReplayer replays entries after from and before limit (nil: no limit)
// that sel wants.
func (c *Client) NewReplayer(sel *Selector, from Timestamp, limit *Timestamp) *Replayer {
	return &Replayer{c: c, sel: sel, Pos: from, Limit: limit}
}

// Apply replays the entries of one .bson file of oplog entries.
func (r *Replayer) Apply(ctx context.Context, rd io.Reader) error {
	dr := NewDocReader(rd)
	admin := r.c.mc.Database("admin")
	for !r.Done {
		raw, err := dr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read oplog entries: %w", err)
		}
		entry, ts, act, err := prepareEntry(raw, r.sel)
		if err != nil {
			return err
		}
		if r.Limit != nil && !ts.Before(*r.Limit) {
			r.Done = true
			return nil
		}
		if !ts.After(r.Pos) {
			continue
		}
		if act == entryApply {
			cmd := bson.D{{Key: "applyOps", Value: bson.A{entry}}}
			if err := admin.RunCommand(ctx, cmd).Err(); err != nil {
				return r.c.cfg.wrap(err, "apply oplog entry %s", FormatTimestamp(ts))
			}
			r.Applied++
		} else {
			r.Skipped++
		}
		r.Pos = ts
	}
	return nil
}

// ChunkInfo describes one archived oplog chunk: a snapshot of kind
// "continuous" holding ChunkFile(Start). It is also the chunk snapshot's
// metadata (Map, ParseChunkInfo).
type ChunkInfo struct {
	ID string // the snapshot, for messages
	// After is the entry the chunk continues from (exclusive); nil when
	// the chunk starts at the oldest entry the oplog had.
	After      *Timestamp
	Start, End Timestamp // first and last entry
	Entries    int64
	// Topology, ReplicaSet and Hosts say where it was read.
	Topology, ReplicaSet string
	Hosts                []string
}

// ChunkDir is the directory of oplog chunks in an archive snapshot.
const ChunkDir = "oplog"

// ChunkFile is the path of the chunk whose first entry is start.
func ChunkFile(start Timestamp) string {
	return fmt.Sprintf("%s/%010d-%010d.bson", ChunkDir, start.T, start.I)
}

// Map is what the chunk's snapshot records: oplog_start, oplog_end,
// oplog_entries, oplog_after (unless nil), topology, replica_set, hosts.
func (ci *ChunkInfo) Map() map[string]string {
	m := map[string]string{
		"oplog_start":   FormatTimestamp(ci.Start),
		"oplog_end":     FormatTimestamp(ci.End),
		"oplog_entries": strconv.FormatInt(ci.Entries, 10),
		"topology":      ci.Topology,
		"replica_set":   ci.ReplicaSet,
		"hosts":         strings.Join(ci.Hosts, ","),
	}
	if ci.After != nil {
		m["oplog_after"] = FormatTimestamp(*ci.After)
	}
	return m
}

// ParseChunkInfo reads a chunk snapshot's metadata; errors name the
// snapshot, the key and the value.
func ParseChunkInfo(id string, m map[string]string) (ChunkInfo, error) {
	ci := ChunkInfo{ID: id, Topology: m["topology"], ReplicaSet: m["replica_set"], Hosts: splitList(m["hosts"])}
	var err error
	if ci.Start, err = ParseTimestamp(m["oplog_start"]); err != nil {
		return ci, fmt.Errorf("oplog chunk %s: start: %w", id, metaError("oplog_start", m["oplog_start"], err))
	}
	if ci.End, err = ParseTimestamp(m["oplog_end"]); err != nil {
		return ci, fmt.Errorf("oplog chunk %s: end: %w", id, metaError("oplog_end", m["oplog_end"], err))
	}
	if a, ok := m["oplog_after"]; ok {
		ts, err := ParseTimestamp(a)
		if err != nil {
			return ci, fmt.Errorf("oplog chunk %s: after: %w", id, metaError("oplog_after", a, err))
		}
		ci.After = &ts
	}
	if ci.End.Before(ci.Start) || (ci.After != nil && !ci.After.Before(ci.Start)) {
		return ci, fmt.Errorf("oplog chunk %s: inconsistent range", id)
	}
	// The count is for messages only: a bad one does not make the
	// chunk unusable.
	ci.Entries, _ = strconv.ParseInt(m["oplog_entries"], 10, 64)
	return ci, nil
}

// PlanReplay picks, in order, the chunks that carry every entry after base
// and before limit, and checks they leave no gap: each chunk must continue
// from an entry at or before the end of what is already covered.
func PlanReplay(base, limit Timestamp, chunks []ChunkInfo) ([]ChunkInfo, error) {
	if !base.Before(limit) {
		return nil, nil
	}
	sorted := slices.Clone(chunks)
	slices.SortFunc(sorted, func(a, b ChunkInfo) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return a.End.Compare(b.End)
	})
	covered := base
	var plan []ChunkInfo
	for _, ch := range sorted {
		if !covered.Before(limit) {
			break
		}
		if !ch.End.After(covered) {
			continue // nothing new
		}
		from := ch.Start // the chunk holds every entry from here on
		contiguous := !from.After(covered)
		if ch.After != nil {
			contiguous = !ch.After.After(covered)
		}
		if !contiguous {
			return nil, fmt.Errorf("the oplog archive has a gap after %s: the next chunk (%s) starts at %s", FormatTimestamp(covered), ch.ID, FormatTimestamp(ch.Start))
		}
		plan = append(plan, ch)
		covered = ch.End
	}
	if covered.Before(limit) {
		return nil, fmt.Errorf("the oplog archive reaches %s (%s) only: it does not cover the target %s", FormatTimestamp(covered),
			time.Unix(int64(covered.T), 0).UTC().Format(time.RFC3339), FormatTimestamp(limit))
	}
	return plan, nil
}

// ErrOplogGap means the oplog rolled over past the position to continue
// from: entries were lost.
var ErrOplogGap = errors.New("the oplog rolled over")

// ExpiredChunks returns the chunks no point-in-time restore from a backup
// ending at oldestBase (or later) needs: those whose entries all come at
// or before it.
func ExpiredChunks(oldestBase Timestamp, chunks []ChunkInfo) []ChunkInfo {
	var out []ChunkInfo
	for _, ch := range chunks {
		if !ch.End.After(oldestBase) {
			out = append(out, ch)
		}
	}
	return out
}

// Tailer reads the oplog from a position on, for archiving.
type Tailer struct {
	c      *Client
	tail   bool
	after  *Timestamp // continue after this entry (nil: from the oldest)
	verify bool       // the next entry must be after itself
	cur    *mongo.Cursor
	// MaxAwait is how long one wait for new entries lasts (default 1 s).
	MaxAwait time.Duration
}

// TailOplog reads the oplog after the entry after (nil: from its oldest
// entry). With tail, it waits for new entries; otherwise it ends at the
// newest. The first entry read must be after itself (unless nil): if the
// oplog no longer has it, entries were lost and Next fails.
func (c *Client) TailOplog(after *Timestamp, tail bool) (*Tailer, error) {
	if c.Info.Topology != ReplicaSet {
		return nil, fmt.Errorf("oplog archiving needs a replica set: this server is %s and has no oplog", c.Info.Topology)
	}
	return &Tailer{c: c, tail: tail, after: after, verify: after != nil, MaxAwait: time.Second}, nil
}

func (t *Tailer) open(ctx context.Context) error {
	filter := bson.D{}
	if t.after != nil {
		filter = bson.D{{Key: "ts", Value: bson.D{{Key: "$gte", Value: *t.after}}}}
		t.verify = true
	}
	opts := options.Find()
	if t.tail {
		opts.SetCursorType(options.TailableAwait).SetMaxAwaitTime(t.MaxAwait)
	}
	cur, err := t.c.mc.Database(oplogDB).Collection(oplogColl).Find(ctx, filter, opts)
	if err != nil {
		return t.c.cfg.wrap(err, "read the oplog")
	}
	t.cur = cur
	return nil
}

// Close ends the cursor.
func (t *Tailer) Close(ctx context.Context) {
	if t.cur != nil {
		closeCursor(ctx, t.cur)
		t.cur = nil
	}
}

// Collect reads entries until the deadline (tailing), the end of the
// oplog (not tailing), or until maxBytes are collected, and returns them
// as one chunk: the concatenated entries and their range. No new entries
// gives a nil chunk.
func (t *Tailer) Collect(ctx context.Context, until time.Time, maxBytes int) ([]byte, ChunkInfo, error) {
	var buf []byte
	ci := ChunkInfo{After: t.after}
	if t.after != nil {
		a := *t.after
		ci.After = &a
	}
	for len(buf) < maxBytes {
		if ctx.Err() != nil {
			return nil, ci, ctx.Err()
		}
		if t.tail && !time.Now().Before(until) {
			break
		}
		if t.cur == nil {
			if err := t.open(ctx); err != nil {
				return nil, ci, err
			}
		}
		var ok bool
		if t.tail {
			ok = t.cur.TryNext(ctx)
		} else {
			ok = t.cur.Next(ctx)
		}
		if !ok {
			if err := t.cur.Err(); err != nil {
				t.Close(ctx)
				return nil, ci, t.c.cfg.wrap(err, "read the oplog")
			}
			if !t.tail {
				break
			}
			if t.cur.ID() == 0 {
				// A tailable cursor dies when it finds nothing at all
				// (an empty oplog): open it again after a pause.
				t.Close(ctx)
				select {
				case <-ctx.Done():
					return nil, ci, ctx.Err()
				case <-time.After(t.MaxAwait):
				}
			}
			continue
		}
		doc := t.cur.Current
		ts, tsi, ok := doc.Lookup("ts").TimestampOK()
		if !ok {
			return nil, ci, errors.New("oplog entry without a timestamp")
		}
		e := Timestamp{T: ts, I: tsi}
		if t.verify {
			t.verify = false
			if t.after != nil {
				if e != *t.after {
					return nil, ci, fmt.Errorf("%w: it no longer holds entry %s (its oldest is now %s); take a new backup and archive from there",
						ErrOplogGap, FormatTimestamp(*t.after), FormatTimestamp(e))
				}
				continue
			}
		}
		if len(buf) == 0 {
			ci.Start = e
		}
		ci.End = e
		ci.Entries++
		buf = append(buf, doc...)
		t.after = &e
	}
	if len(buf) == 0 {
		return nil, ci, nil
	}
	return buf, ci, nil
}
