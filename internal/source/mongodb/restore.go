package mongodb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/bunkerbackup/bunker/internal/source"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/sync/errgroup"
)

// RestoreOptions say what Restore does.
type RestoreOptions struct {
	// Select picks the namespaces of the backup to restore (by their
	// names in the backup).
	Select Selector
	// Renames map a namespace to a new one; the first that matches wins.
	Renames []*Rename
	// Drop drops each collection before restoring it.
	Drop bool
	// Jobs is how many collections are restored at once (default 2).
	Jobs int
	// OplogReplay applies the backup's oplog entries after the data, for
	// the consistent point at the end of the dump; OplogLimit (exclusive)
	// stops it earlier.
	OplogReplay bool
	OplogLimit  *Timestamp
	// Users restores admin's users and roles when the backup has them.
	Users bool
	// BatchDocs and BatchBytes bound one insert (defaults 1000 and 16 MiB).
	BatchDocs, BatchBytes int
	// Done, when set, is told about each collection as it finishes (one at
	// a time).
	Done func(CollectionResult)
}

// Validate checks the options and fills in defaults.
func (o *RestoreOptions) Validate() error {
	if o.Jobs == 0 {
		o.Jobs = 2
	}
	if o.Jobs < 1 {
		return fmt.Errorf("--jobs must be at least 1, not %d", o.Jobs)
	}
	if o.BatchDocs <= 0 {
		o.BatchDocs = 1000
	}
	if o.BatchBytes <= 0 {
		o.BatchBytes = 16 << 20
	}
	if len(o.Renames) > 0 && (o.OplogReplay || o.OplogLimit != nil) {
		return errors.New("oplog replay cannot be combined with renaming namespaces")
	}
	return o.Select.Validate()
}

// CollectionResult is the outcome of restoring one collection. Err does
// not repeat the namespaces.
type CollectionResult struct {
	Source, Target string // namespaces
	Type           string
	Documents      int64 // inserted
	Failed         int64 // documents the server refused
	Indexes        int   // built (the _id index not counted)
	Err            error
}

// RestoreResult is the outcome of a restore.
type RestoreResult struct {
	Collections []CollectionResult
	Failed      int // collections with an error
	// OplogApplied counts the oplog entries replayed; OplogPos is the
	// last one (or the end of the dump when there were none).
	OplogApplied  int64
	OplogPos      Timestamp
	UsersRestored bool
}

// restoreItem is one collection to restore.
type restoreItem struct {
	ci     CollectionInfo
	target string
}

// Restore restores a backup written by Dump from t into the server. A
// collection that fails is reported in its result and the others are
// restored; the returned error is for what stops the whole restore.
func (c *Client) Restore(ctx context.Context, t source.Tree, info *BackupInfo, o RestoreOptions) (*RestoreResult, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if info.Tool != "" {
		return nil, fmt.Errorf("this backup was made by %s: restoring it needs mongorestore (--tool-dir)", info.Tool)
	}
	if o.OplogReplay && info.OplogEnd == "" {
		return nil, errors.New("the backup has no oplog entries to replay (it was taken without --oplog)")
	}
	var items, views []restoreItem
	targets := map[string]string{}
	for _, ci := range info.Collections {
		if ci.authCollection() || !o.Select.Wants(ci.DB, ci.Name) {
			continue
		}
		target := ci.Namespace()
		for _, r := range o.Renames {
			if n, ok := r.Apply(target); ok {
				target = n
				break
			}
		}
		if _, _, err := SplitNamespace(target); err != nil {
			return nil, fmt.Errorf("renaming %s: %w", ci.Namespace(), err)
		}
		if prev, dup := targets[target]; dup {
			return nil, fmt.Errorf("%s and %s would both be restored as %s", prev, ci.Namespace(), target)
		}
		targets[target] = ci.Namespace()
		if ci.Type == TypeView {
			views = append(views, restoreItem{ci, target})
		} else {
			items = append(items, restoreItem{ci, target})
		}
	}
	res := &RestoreResult{}
	var mu sync.Mutex
	report := func(r CollectionResult) {
		mu.Lock()
		defer mu.Unlock()
		res.Collections = append(res.Collections, r)
		if r.Err != nil {
			res.Failed++
		}
		if o.Done != nil {
			o.Done(r)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.Jobs)
	for _, it := range items {
		g.Go(func() error {
			r := c.restoreCollection(gctx, t, it, &o)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			report(r)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return res, err
	}
	// Views last: they may name collections restored above.
	for _, it := range views {
		report(c.restoreCollection(ctx, t, it, &o))
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
	}
	if o.Users && info.Users {
		if err := c.restoreUsers(ctx, t, info, &o); err != nil {
			report(CollectionResult{Source: "admin.system.users", Target: "admin.system.users", Type: TypeCollection, Err: err})
		} else {
			res.UsersRestored = true
		}
	}
	if info.OplogEnd != "" {
		res.OplogPos, _ = ParseTimestamp(info.OplogEnd)
	}
	if o.OplogReplay {
		if res.Failed > 0 {
			return res, fmt.Errorf("oplog not replayed: %d collections failed to restore", res.Failed)
		}
		start, err := ParseTimestamp(info.OplogStart)
		if err != nil {
			return res, err
		}
		rp := c.NewReplayer(&o.Select, start, o.OplogLimit)
		rc, err := t.Open(ctx, Root+"/"+OplogFile)
		if err != nil {
			return res, fmt.Errorf("open %s: %w", OplogFile, err)
		}
		err = rp.Apply(ctx, rc)
		_ = rc.Close()
		res.OplogApplied, res.OplogPos = rp.Applied, rp.Pos
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// restoreCollection creates one collection with its options, inserts its
// documents and builds its indexes.
func (c *Client) restoreCollection(ctx context.Context, t source.Tree, it restoreItem, o *RestoreOptions) CollectionResult {
	r := CollectionResult{Source: it.ci.Namespace(), Target: it.target, Type: it.ci.Type}
	fail := func(err error) CollectionResult {
		r.Err = &scrubbedError{msg: c.cfg.scrub(err.Error()), err: err}
		return r
	}
	dbName, collName, _ := SplitNamespace(it.target)
	db := c.mc.Database(dbName)
	meta := &Metadata{Options: emptyDoc}
	if it.ci.Metadata != "" {
		data, err := source.ReadFile(ctx, t, Root+"/"+it.ci.Metadata)
		if err != nil {
			return fail(err)
		}
		if meta, err = DecodeMetadata(data); err != nil {
			return fail(fmt.Errorf("%s: %w", it.ci.Metadata, err))
		}
	}
	if o.Drop {
		if err := db.Collection(collName).Drop(ctx); err != nil && !hasCode(err, codeNamespaceNotFound) {
			return fail(fmt.Errorf("drop: %w", err))
		}
	}
	create := bson.D{{Key: "create", Value: collName}}
	elems, err := meta.Options.Elements()
	if err != nil {
		return fail(fmt.Errorf("options: %w", err))
	}
	for _, e := range elems {
		create = append(create, bson.E{Key: e.Key(), Value: e.Value()})
	}
	if err := db.RunCommand(ctx, create).Err(); err != nil && !hasCode(err, codeNamespaceExists) {
		return fail(fmt.Errorf("create: %w", err))
	}
	if it.ci.Type == TypeView {
		return r
	}
	into := collName
	if it.ci.Type == TypeTimeseries {
		into = "system.buckets." + collName
	}
	if err := c.insertFile(ctx, t, it.ci.Data, db.Collection(into), o, &r); err != nil {
		return fail(err)
	}
	var specs bson.A
	for _, ix := range meta.Indexes {
		if indexName(ix) == "_id_" {
			continue
		}
		// Without the namespace (old servers) and the version, which
		// the server picks (and some reject).
		specs = append(specs, withoutKeys(ix, "ns", "v"))
	}
	if len(specs) > 0 {
		cmd := bson.D{{Key: "createIndexes", Value: collName}, {Key: "indexes", Value: specs}}
		if err := db.RunCommand(ctx, cmd).Err(); err != nil {
			return fail(fmt.Errorf("create indexes: %w", err))
		}
		r.Indexes = len(specs)
	}
	if r.Err != nil {
		return fail(r.Err)
	}
	return r
}

// insertFile inserts the documents of a .bson file in unordered batches.
// Documents the server refuses (duplicate keys, say) are counted in
// r.Failed and the rest inserted; any other error ends the collection.
func (c *Client) insertFile(ctx context.Context, t source.Tree, file string, coll *mongo.Collection, o *RestoreOptions, r *CollectionResult) error {
	rc, err := t.Open(ctx, Root+"/"+file)
	if err != nil {
		return err
	}
	defer rc.Close()
	dr := NewDocReader(rc)
	var batch []any
	size := 0
	var firstRefusal error
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		res, err := coll.InsertMany(ctx, batch, options.InsertMany().SetOrdered(false))
		var bwe mongo.BulkWriteException
		switch {
		case err == nil:
			r.Documents += int64(len(res.InsertedIDs))
		case errors.As(err, &bwe) && bwe.WriteConcernError == nil && len(bwe.WriteErrors) > 0:
			r.Failed += int64(len(bwe.WriteErrors))
			r.Documents += int64(len(batch) - len(bwe.WriteErrors))
			if firstRefusal == nil {
				firstRefusal = bwe.WriteErrors[0]
			}
		default:
			return fmt.Errorf("insert: %w", err)
		}
		batch, size = batch[:0], 0
		return nil
	}
	for {
		doc, err := dr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		if len(batch) > 0 && (len(batch) >= o.BatchDocs || size+len(doc) > o.BatchBytes) {
			if err := flush(); err != nil {
				return err
			}
		}
		batch = append(batch, doc)
		size += len(doc)
	}
	if err := flush(); err != nil {
		return err
	}
	if r.Failed > 0 {
		r.Err = fmt.Errorf("%d of %d documents were not inserted (first: %v)", r.Failed, r.Failed+r.Documents, firstRefusal)
	}
	return nil
}

// restoreUsers restores admin's users and roles the way mongorestore does:
// into temporary collections merged by _mergeAuthzCollections. Not
// tested: the test server has no such command.
func (c *Client) restoreUsers(ctx context.Context, t source.Tree, info *BackupInfo, o *RestoreOptions) error {
	admin := c.mc.Database("admin")
	temp := map[string]string{"system.users": "tempusers", "system.roles": "temproles"}
	for _, tc := range temp {
		if err := admin.Collection(tc).Drop(ctx); err != nil && !hasCode(err, codeNamespaceNotFound) {
			return c.cfg.wrap(err, "users: drop admin.%s", tc)
		}
	}
	defer cleanup(ctx, func(ctx context.Context) {
		for _, tc := range temp {
			_ = admin.Collection(tc).Drop(ctx)
		}
	})
	for _, ci := range info.Collections {
		tc, ok := temp[ci.Name]
		if !ci.authCollection() || !ok {
			continue
		}
		r := CollectionResult{}
		if err := c.insertFile(ctx, t, ci.Data, admin.Collection(tc), o, &r); err != nil {
			return c.cfg.wrap(err, "users: %s", ci.Namespace())
		}
		if r.Err != nil {
			return c.cfg.wrap(r.Err, "users: %s", ci.Namespace())
		}
	}
	cmd := bson.D{{Key: "_mergeAuthzCollections", Value: 1},
		{Key: "tempUsersCollection", Value: "admin.tempusers"}, {Key: "tempRolesCollection", Value: "admin.temproles"},
		{Key: "drop", Value: o.Drop}, {Key: "db", Value: ""}}
	if err := admin.RunCommand(ctx, cmd).Err(); err != nil {
		return c.cfg.wrap(err, "users: merge into admin.system.users")
	}
	return nil
}

// ReplayArchive applies archived oplog chunks, read by open, after from
// and before limit. It returns the last entry applied.
func (c *Client) ReplayArchive(ctx context.Context, sel *Selector, from, limit Timestamp, chunks []ChunkInfo,
	open func(ctx context.Context, ci ChunkInfo) (source.Tree, error)) (*Replayer, error) {
	plan, err := PlanReplay(from, limit, chunks)
	if err != nil {
		return nil, err
	}
	rp := c.NewReplayer(sel, from, &limit)
	for _, ch := range plan {
		t, err := open(ctx, ch)
		if err != nil {
			return rp, err
		}
		entries, err := t.List(ctx, ChunkDir)
		if err != nil {
			return rp, fmt.Errorf("oplog chunk %s: %w", ch.ID, err)
		}
		for _, e := range entries {
			if e.Type != source.TypeFile || !strings.HasSuffix(e.Name, ".bson") {
				continue
			}
			rc, err := t.Open(ctx, ChunkDir+"/"+e.Name)
			if err != nil {
				return rp, fmt.Errorf("oplog chunk %s: %w", ch.ID, err)
			}
			err = rp.Apply(ctx, rc)
			_ = rc.Close()
			if err != nil {
				return rp, fmt.Errorf("oplog chunk %s: %w", ch.ID, err)
			}
		}
		if rp.Done {
			break
		}
	}
	return rp, nil
}
