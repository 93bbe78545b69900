package mongodb

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bunkerbackup/bunker/internal/source"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/sync/errgroup"
)

// DumpOptions say what Dump writes.
type DumpOptions struct {
	// Select picks databases and collections (default: every database but
	// local and config, which are dumped only when named).
	Select Selector
	// Jobs is how many collections are dumped at once (default 2).
	Jobs int
	// Oplog records the oplog from the start of the dump to its end, for
	// a consistent point (replica sets only).
	Oplog bool
	// Users also dumps admin's users, roles and auth version when the
	// server lets us read them.
	Users bool
	// Log, when set, is told what happens (from several goroutines).
	Log func(format string, args ...any)
	// Warn, when set, is told what was skipped.
	Warn func(format string, args ...any)
}

// Validate checks the options and fills in defaults.
func (o *DumpOptions) Validate() error {
	if o.Jobs == 0 {
		o.Jobs = 2
	}
	if o.Jobs < 1 {
		return fmt.Errorf("--jobs must be at least 1, not %d", o.Jobs)
	}
	return o.Select.Validate()
}

func (o *DumpOptions) logf(format string, args ...any) {
	if o.Log != nil {
		o.Log(format, args...)
	}
}

// collSpec is one collection as listCollections describes it.
type collSpec struct {
	db, name, typ string
	options       bson.Raw
	uuid          string
}

func (s *collSpec) ns() string { return s.db + "." + s.name }

// Dump writes the selected databases into sink under Root and returns
// what backup.json records. Any error means the backup is incomplete.
func (c *Client) Dump(ctx context.Context, sink source.Sink, o DumpOptions) (*BackupInfo, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	info := &BackupInfo{Format: Format, Version: FormatVersion, ServerVersion: c.Info.Version,
		Topology: c.Info.Topology, ReplicaSet: c.Info.SetName, Hosts: c.Info.Hosts, Start: time.Now().UTC()}
	var warnMu sync.Mutex
	warn := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		warnMu.Lock()
		info.Warnings = append(info.Warnings, msg)
		warnMu.Unlock()
		if o.Warn != nil {
			o.Warn("%s", msg)
		}
	}
	var oplogStart Timestamp
	if o.Oplog {
		if c.Info.Topology != ReplicaSet {
			return nil, fmt.Errorf("--oplog needs a replica set: this server is %s and has no oplog", c.Info.Topology)
		}
		ts, err := c.lastOplogEntry(ctx)
		if err != nil {
			return nil, err
		}
		oplogStart = ts
		o.logf("oplog position at the start: %s", FormatTimestamp(ts))
	}

	specs, err := c.listCollections(ctx, &o.Select, warn)
	if err != nil {
		return nil, err
	}
	results := make([]CollectionInfo, len(specs))
	skipped := make([]bool, len(specs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.Jobs)
	for i := range specs {
		g.Go(func() error {
			ci, ok, err := c.dumpCollection(gctx, sink, &specs[i], warn)
			if err != nil {
				return err
			}
			results[i], skipped[i] = ci, !ok
			if ok {
				o.logf("dumped %s: %d documents, %d bytes, %d indexes", specs[i].ns(), ci.Documents, ci.Bytes, ci.Indexes)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for i, ci := range results {
		if !skipped[i] {
			info.Collections = append(info.Collections, ci)
		}
	}

	if o.Users {
		users, err := c.dumpUsers(ctx, sink, warn)
		if err != nil {
			return nil, err
		}
		info.Users = len(users) > 0
		info.Collections = append(info.Collections, users...)
	}

	if o.Oplog {
		end, err := c.lastOplogEntry(ctx)
		if err != nil {
			return nil, err
		}
		n, err := c.dumpOplog(ctx, sink, oplogStart, end)
		if err != nil {
			return nil, err
		}
		info.OplogStart, info.OplogEnd, info.OplogEntries = FormatTimestamp(oplogStart), FormatTimestamp(end), n
		o.logf("oplog: %d entries from %s to %s", n, info.OplogStart, info.OplogEnd)
	}
	if err := writeInfo(ctx, sink, info); err != nil {
		return nil, err
	}
	return info, nil
}

// writeInfo stamps the backup's end and writes its info file, last.
func writeInfo(ctx context.Context, sink source.Sink, info *BackupInfo) error {
	info.End = time.Now().UTC()
	data, err := info.Encode()
	if err != nil {
		return err
	}
	return source.WriteBytes(ctx, sink, Root+"/"+InfoFile, data, nil)
}

// systemKept are the system collections a dump keeps like user data.
var systemKept = []string{"system.js"}

// listCollections returns the selected collections, sorted by namespace.
// A database or collection named in the selection that does not exist is
// an error: a backup of nothing would pass unnoticed.
func (c *Client) listCollections(ctx context.Context, sel *Selector, warn func(string, ...any)) ([]collSpec, error) {
	var dbs []string
	if sel.explicit() {
		dbs = append(dbs, sel.Databases...)
		for _, ns := range sel.Collections {
			d, _, _ := SplitNamespace(ns)
			dbs = append(dbs, d)
		}
		slices.Sort(dbs)
		dbs = slices.Compact(dbs)
	} else {
		names, err := c.mc.ListDatabaseNames(ctx, bson.D{})
		if err != nil {
			return nil, c.cfg.wrap(err, "list databases")
		}
		for _, d := range names {
			if d != "local" && d != "config" {
				dbs = append(dbs, d)
			}
		}
		slices.Sort(dbs)
	}
	var specs []collSpec
	found := map[string]bool{}
	for _, db := range dbs {
		cur, err := c.mc.Database(db).ListCollections(ctx, bson.D{})
		if err != nil {
			return nil, c.cfg.wrap(err, "list collections of %s", db)
		}
		n := 0
		for cur.Next(ctx) {
			s, err := parseCollSpec(db, cur.Current)
			if err != nil {
				_ = cur.Close(ctx)
				return nil, err
			}
			n++
			if strings.HasPrefix(s.name, "system.") && !slices.Contains(systemKept, s.name) {
				continue
			}
			switch s.typ {
			case TypeCollection, TypeView, TypeTimeseries:
			default:
				warn("%s: skipped: unknown collection type %q", s.ns(), s.typ)
				continue
			}
			if !sel.Wants(db, s.name) {
				continue
			}
			found[s.ns()] = true
			specs = append(specs, s)
		}
		err = cur.Err()
		_ = cur.Close(ctx)
		if err != nil {
			return nil, c.cfg.wrap(err, "list collections of %s", db)
		}
		if n == 0 && slices.Contains(sel.Databases, db) {
			return nil, fmt.Errorf("database %s has no collections (does it exist?)", db)
		}
	}
	for _, ns := range sel.Collections {
		if !found[ns] {
			return nil, fmt.Errorf("collection %s not found (or excluded)", ns)
		}
	}
	slices.SortFunc(specs, func(a, b collSpec) int {
		return strings.Compare(a.db+"\x00"+a.name, b.db+"\x00"+b.name)
	})
	return specs, nil
}

func parseCollSpec(db string, raw bson.Raw) (collSpec, error) {
	s := collSpec{db: db, options: emptyDoc, typ: TypeCollection}
	var ok bool
	if s.name, ok = raw.Lookup("name").StringValueOK(); !ok || s.name == "" {
		return s, fmt.Errorf("list collections of %s: an entry has no name: %s", db, raw)
	}
	if t, ok := raw.Lookup("type").StringValueOK(); ok {
		s.typ = t
	}
	if opts, ok := raw.Lookup("options").DocumentOK(); ok {
		s.options = slices.Clone(opts)
	}
	if v, err := raw.LookupErr("info", "uuid"); err == nil {
		if _, data, ok := v.BinaryOK(); ok {
			s.uuid = hex.EncodeToString(data)
		}
	}
	return s, nil
}

// dumpCollection writes one collection's metadata and documents. It
// returns false (and warns) when the collection was dropped meanwhile.
func (c *Client) dumpCollection(ctx context.Context, sink source.Sink, s *collSpec, warn func(string, ...any)) (CollectionInfo, bool, error) {
	dir := Root + "/" + FileName(s.db)
	ci := CollectionInfo{DB: s.db, Name: s.name, Type: s.typ, Metadata: FileName(s.db) + "/" + FileName(s.name) + ".metadata.json"}
	db := c.mc.Database(s.db)
	meta := Metadata{Options: s.options, UUID: s.uuid, CollectionName: s.name, Type: s.typ}
	if s.typ != TypeView {
		cur, err := db.Collection(s.name).Indexes().List(ctx)
		if err == nil {
			for cur.Next(ctx) {
				meta.Indexes = append(meta.Indexes, slices.Clone(cur.Current))
			}
			err = cur.Err()
			_ = cur.Close(ctx)
		}
		if hasCode(err, codeNamespaceNotFound) {
			warn("%s: dropped during the backup: skipped", s.ns())
			return ci, false, nil
		}
		if err != nil {
			return ci, false, c.cfg.wrap(err, "list indexes of %s", s.ns())
		}
	}
	ci.Indexes = len(meta.Indexes)
	mj, err := meta.Encode()
	if err != nil {
		return ci, false, fmt.Errorf("%s: encode metadata: %w", s.ns(), err)
	}
	if err := source.WriteBytes(ctx, sink, Root+"/"+ci.Metadata, mj, nil); err != nil {
		return ci, false, fmt.Errorf("%s: %w", s.ns(), err)
	}
	if s.typ == TypeView {
		return ci, true, nil
	}
	data := s.name
	if s.typ == TypeTimeseries {
		// As mongodump: the buckets, which restore inserts as they are.
		data = "system.buckets." + s.name
	}
	ci.Data = FileName(s.db) + "/" + FileName(data) + ".bson"
	docs, n, err := c.dumpDocuments(ctx, sink, dir+"/"+FileName(data)+".bson", db.Collection(data), bson.D{})
	if err != nil {
		return ci, false, c.cfg.wrap(err, "dump %s", s.ns())
	}
	ci.Documents, ci.Bytes = docs, n
	return ci, true, nil
}

// dumpDocuments streams the documents matching filter into the file p,
// as the server sent them.
func (c *Client) dumpDocuments(ctx context.Context, sink source.Sink, p string, coll *mongo.Collection, filter any, opts ...options.Lister[options.FindOptions]) (docs, size int64, err error) {
	cur, err := coll.Find(ctx, filter, opts...)
	if err != nil {
		return 0, 0, err
	}
	defer closeCursor(ctx, cur)
	st := cursorStream(ctx, cur)
	n, err := sink.WriteFile(ctx, p, st, nil)
	if err != nil {
		return 0, 0, err
	}
	return st.docs, n, nil
}

// cursorStream reads a cursor's documents as one byte stream.
func cursorStream(ctx context.Context, cur *mongo.Cursor) *docStream {
	return &docStream{next: func() ([]byte, error) {
		if cur.Next(ctx) {
			return cur.Current, nil
		}
		if err := cur.Err(); err != nil {
			return nil, err
		}
		return nil, io.EOF
	}}
}

// authCollections are admin's collections a --users dump keeps: what
// mongorestore's user restore reads.
var authCollections = []string{"system.users", "system.roles", "system.version"}

// dumpUsers writes admin's users, roles and auth schema version. A
// collection the server does not let us read is skipped with a warning.
func (c *Client) dumpUsers(ctx context.Context, sink source.Sink, warn func(string, ...any)) ([]CollectionInfo, error) {
	var out []CollectionInfo
	admin := c.mc.Database("admin")
	for _, name := range authCollections {
		ci := CollectionInfo{DB: "admin", Name: name, Type: TypeCollection, Data: "admin/" + name + ".bson"}
		docs, n, err := c.dumpDocuments(ctx, sink, Root+"/"+ci.Data, admin.Collection(name), bson.D{})
		if hasCode(err, codeUnauthorized) {
			warn("admin.%s: not permitted to read it: not backed up", name)
			continue
		}
		if err != nil {
			return nil, c.cfg.wrap(err, "dump admin.%s", name)
		}
		ci.Documents, ci.Bytes = docs, n
		out = append(out, ci)
	}
	return out, nil
}

// The replica set oplog.
const (
	oplogDB   = "local"
	oplogColl = "oplog.rs"
)

// lastOplogEntry returns the timestamp of the newest oplog entry.
func (c *Client) lastOplogEntry(ctx context.Context) (Timestamp, error) {
	coll := c.mc.Database(oplogDB).Collection(oplogColl)
	var e struct {
		TS Timestamp `bson:"ts"`
	}
	err := coll.FindOne(ctx, bson.D{}, options.FindOne().SetSort(bson.D{{Key: "$natural", Value: -1}}).
		SetProjection(bson.D{{Key: "ts", Value: 1}})).Decode(&e)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return Timestamp{}, errors.New("the oplog (local.oplog.rs) is empty")
	}
	if err != nil {
		return Timestamp{}, c.cfg.wrap(err, "read the oplog's newest entry")
	}
	return e.TS, nil
}

// dumpOplog writes the entries from start to end, both included, to
// Root/oplog.bson. The first must be start itself: anything else means
// the oplog rolled over during the dump and entries are lost.
func (c *Client) dumpOplog(ctx context.Context, sink source.Sink, start, end Timestamp) (int64, error) {
	coll := c.mc.Database(oplogDB).Collection(oplogColl)
	filter := bson.D{{Key: "ts", Value: bson.D{{Key: "$gte", Value: start}, {Key: "$lte", Value: end}}}}
	cur, err := coll.Find(ctx, filter)
	if err != nil {
		return 0, c.cfg.wrap(err, "read the oplog")
	}
	defer closeCursor(ctx, cur)
	first := true
	st := &docStream{next: func() ([]byte, error) {
		if !cur.Next(ctx) {
			if err := cur.Err(); err != nil {
				return nil, c.cfg.wrap(err, "read the oplog")
			}
			if first {
				return nil, fmt.Errorf("oplog entry %s is gone: the oplog rolled over during the backup (make it larger, or back up faster)", FormatTimestamp(start))
			}
			return nil, io.EOF
		}
		if first {
			first = false
			t, i, ok := cur.Current.Lookup("ts").TimestampOK()
			if !ok || (Timestamp{T: t, I: i}) != start {
				return nil, fmt.Errorf("oplog entry %s is gone: the oplog rolled over during the backup (make it larger, or back up faster)", FormatTimestamp(start))
			}
		}
		return cur.Current, nil
	}}
	if _, err := sink.WriteFile(ctx, Root+"/"+OplogFile, st, nil); err != nil {
		return 0, err
	}
	return st.docs, nil
}
