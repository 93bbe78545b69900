package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/source/mongodb"
	"github.com/bunkerbackup/bunker/internal/testsrv"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// The MongoDB tests run against FerretDB 1.24 (SQLite), which lacks
// replica sets and the oplog, views, time-series and TTL indexes, and the
// Decimal128, MinKey/MaxKey, JavaScript, Symbol and DBPointer types: the
// data below uses every type it has.

// mongoClient connects a test client.
func mongoClient(t *testing.T, uri string) *mongo.Client {
	t.Helper()
	c, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(10 * time.Second))
	must(t, err)
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c
}

// seedMongo fills two databases with varied documents, indexes and a
// capped collection; it returns the namespaces it made.
func seedMongo(t *testing.T, c *mongo.Client) []string {
	t.Helper()
	ctx := context.Background()
	shop, crm := c.Database("shop"), c.Database("crm")
	base := time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC)
	var orders []any
	for i := range 2500 {
		orders = append(orders, bson.D{
			{Key: "_id", Value: bson.NewObjectIDFromTimestamp(base.Add(time.Duration(i) * time.Second))},
			{Key: "number", Value: int64(100000 + i)},
			{Key: "customer", Value: bson.D{{Key: "name", Value: fmt.Sprintf("customer %d", i%97)},
				{Key: "address", Value: bson.D{{Key: "city", Value: "Zürich"}, {Key: "zip", Value: int32(8000 + i%50)}}}}},
			{Key: "items", Value: bson.A{
				bson.D{{Key: "sku", Value: "A-1"}, {Key: "qty", Value: int32(i % 5)}, {Key: "price", Value: 9.95}},
				bson.D{{Key: "sku", Value: "B-2"}, {Key: "qty", Value: int32(1)}, {Key: "price", Value: float64(i) / 3}},
			}},
			{Key: "tags", Value: bson.A{"x", int32(i), true, nil}},
			{Key: "date", Value: base.Add(time.Duration(i) * time.Minute)},
			{Key: "paid", Value: i%2 == 0},
			{Key: "note", Value: nil},
			{Key: "raw", Value: bson.Binary{Subtype: 0, Data: []byte{0, 1, 2, byte(i)}}},
			{Key: "uuid", Value: bson.Binary{Subtype: 4, Data: bytes.Repeat([]byte{byte(i)}, 16)}},
			{Key: "pattern", Value: bson.Regex{Pattern: "^a.*z$", Options: "i"}},
			{Key: "ts", Value: bson.Timestamp{T: uint32(1700000000 + i), I: 3}},
		})
	}
	_, err := shop.Collection("orders").InsertMany(ctx, orders)
	must(t, err)
	_, err = shop.Collection("orders").Indexes().CreateMany(ctx, []mongo.IndexModel{
		{Keys: bson.D{{Key: "number", Value: 1}}, Options: options.Index().SetUnique(true).SetName("number_unique")},
		{Keys: bson.D{{Key: "customer.name", Value: 1}, {Key: "date", Value: -1}}},
	})
	must(t, err)
	// Large documents, about 1 MiB each.
	big := randBytes(41, 1<<20)
	_, err = shop.Collection("blobs").InsertMany(ctx, []any{
		bson.D{{Key: "_id", Value: "bin"}, {Key: "data", Value: bson.Binary{Data: big}}},
		bson.D{{Key: "_id", Value: "text"}, {Key: "data", Value: strings.Repeat("lorem ipsum ", 87381)}},
		bson.D{{Key: "_id", Value: "nested"}, {Key: "a", Value: bson.D{{Key: "b", Value: bson.D{{Key: "c", Value: bson.A{bson.Binary{Data: big[:500000]}}}}}}}},
	})
	must(t, err)
	// A capped collection keeps its options.
	must(t, shop.CreateCollection(ctx, "events", options.CreateCollection().SetCapped(true).SetSizeInBytes(1<<20).SetMaxDocuments(5000)))
	var events []any
	for i := range 100 {
		events = append(events, bson.D{{Key: "_id", Value: int32(i)}, {Key: "at", Value: base.Add(time.Duration(i) * time.Millisecond)}})
	}
	_, err = shop.Collection("events").InsertMany(ctx, events)
	must(t, err)
	// A name that needs escaping as a file.
	_, err = shop.Collection("odd/name.x").InsertOne(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "compound", Value: int32(1)}}}, {Key: "v", Value: "x"}})
	must(t, err)

	var people []any
	for i := range 300 {
		people = append(people, bson.D{{Key: "_id", Value: fmt.Sprintf("p%04d", i)}, {Key: "email", Value: fmt.Sprintf("p%d@example.com", i)},
			{Key: "age", Value: int32(20 + i%60)}, {Key: "score", Value: int64(i) * 1e12}})
	}
	_, err = crm.Collection("people").InsertMany(ctx, people)
	must(t, err)
	_, err = crm.Collection("people").Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "email", Value: 1}}, Options: options.Index().SetUnique(true)})
	must(t, err)
	must(t, crm.CreateCollection(ctx, "notes"))
	_, err = crm.Collection("notes").Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "text", Value: 1}, {Key: "at", Value: -1}}})
	must(t, err)
	return []string{"crm.notes", "crm.people", "shop.blobs", "shop.events", "shop.odd/name.x", "shop.orders"}
}

// rawDocs returns a collection's documents as the server sends them,
// sorted by _id.
func rawDocs(t *testing.T, c *mongo.Client, ns string) []bson.Raw {
	t.Helper()
	db, coll, _ := strings.Cut(ns, ".")
	cur, err := c.Database(db).Collection(coll).Find(context.Background(), bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	must(t, err)
	var out []bson.Raw
	for cur.Next(context.Background()) {
		out = append(out, slices.Clone(cur.Current))
	}
	must(t, cur.Err())
	return out
}

// indexSpecs describes a collection's indexes (name, key, unique), sorted.
func indexSpecs(t *testing.T, c *mongo.Client, ns string) []string {
	t.Helper()
	db, coll, _ := strings.Cut(ns, ".")
	cur, err := c.Database(db).Collection(coll).Indexes().List(context.Background())
	must(t, err)
	var out []string
	for cur.Next(context.Background()) {
		unique, _ := cur.Current.Lookup("unique").BooleanOK()
		out = append(out, fmt.Sprintf("%s %s unique=%v", cur.Current.Lookup("name").StringValue(), cur.Current.Lookup("key"), unique))
	}
	must(t, cur.Err())
	slices.Sort(out)
	return out
}

// collOptions returns a collection's options as listCollections shows them.
func collOptions(t *testing.T, c *mongo.Client, ns string) string {
	t.Helper()
	db, coll, _ := strings.Cut(ns, ".")
	specs, err := c.Database(db).ListCollectionSpecifications(context.Background(), bson.D{{Key: "name", Value: coll}})
	must(t, err)
	if len(specs) != 1 {
		t.Fatalf("%s: %d collections", ns, len(specs))
	}
	return specs[0].Options.String()
}

// assertSameCollection compares documents (raw BSON, by _id), indexes and
// options of two collections.
func assertSameCollection(t *testing.T, src *mongo.Client, srcNS string, dst *mongo.Client, dstNS string) {
	t.Helper()
	want, got := rawDocs(t, src, srcNS), rawDocs(t, dst, dstNS)
	if len(want) != len(got) {
		t.Fatalf("%s: %d documents restored as %s, want %d", srcNS, len(got), dstNS, len(want))
	}
	for i := range want {
		if !bytes.Equal(want[i], got[i]) {
			t.Fatalf("%s: document %d differs:\nwant %.300s\ngot  %.300s", srcNS, i, want[i], got[i])
		}
	}
	if w, g := indexSpecs(t, src, srcNS), indexSpecs(t, dst, dstNS); !slices.Equal(w, g) {
		t.Fatalf("%s: indexes differ:\nwant %q\ngot  %q", srcNS, w, g)
	}
	if w, g := collOptions(t, src, srcNS), collOptions(t, dst, dstNS); w != g {
		t.Fatalf("%s: options differ: want %s, got %s", srcNS, w, g)
	}
}

func databaseNames(t *testing.T, c *mongo.Client) []string {
	t.Helper()
	names, err := c.ListDatabaseNames(context.Background(), bson.D{})
	must(t, err)
	slices.Sort(names)
	return names
}

func collectionNames(t *testing.T, c *mongo.Client, db string) []string {
	t.Helper()
	names, err := c.Database(db).ListCollectionNames(context.Background(), bson.D{})
	must(t, err)
	slices.Sort(names)
	return names
}

// backupInfo reads mongodb/backup.json of a snapshot.
func (e *repoEnv) mongoBackupInfo(id string) *mongodb.BackupInfo {
	e.t.Helper()
	r := e.mustRun("dump", id, "/mongodb/backup.json")
	info, err := mongodb.DecodeBackupInfo([]byte(r.Stdout))
	must(e.t, err)
	return info
}

func namespaces(info *mongodb.BackupInfo) []string {
	var out []string
	for _, c := range info.Collections {
		out = append(out, c.Namespace())
	}
	return out
}

// TestMongoRoundTrip: two databases with varied documents, large ones,
// indexes and a capped collection are backed up through the driver,
// restored into a fresh server and compared document by document (raw
// BSON), index by index. A second backup of the same data adds almost
// nothing.
func TestMongoRoundTrip(t *testing.T) {
	src := testsrv.FerretDB(t)
	sc := mongoClient(t, src.URI)
	nss := seedMongo(t, sc)
	e := initRepo(t)

	sum, _ := e.backupJSON(0, "mongodb", "--uri", src.URI, "--jobs", "3", "--tag", "nightly")
	for _, k := range []string{"bytes_read", "data_added", "duration_seconds"} {
		if _, ok := sum[k]; !ok {
			t.Errorf("summary lacks %s: %v", k, sum)
		}
	}
	meta, _ := sum["metadata"].(map[string]any)
	if meta["source"] != "mongodb" || meta["topology"] != "standalone" || meta["databases"] != "crm,shop" ||
		meta["collections"] != "6" || meta["server_version"] == "" || meta["oplog_start"] != nil {
		t.Errorf("snapshot metadata %v", meta)
	}
	id := str(sum["snapshot_id"])
	info := e.mongoBackupInfo(id)
	if got := namespaces(info); !slices.Equal(got, nss) {
		t.Fatalf("backed up %q, want %q", got, nss)
	}
	for _, c := range info.Collections {
		if c.Namespace() == "shop.orders" && (c.Documents != 2500 || c.Indexes != 3) {
			t.Errorf("shop.orders recorded as %+v", c)
		}
	}
	snaps := e.snapshots()
	if len(snaps) != 1 || !slices.Equal(snaps[0]["paths"].([]any), []any{"/mongodb/" + src.Addr}) {
		t.Fatalf("snapshots %v", snaps)
	}

	// The stored file is the documents as the server sent them.
	r := e.mustRun("dump", id, "/mongodb/shop/orders.bson")
	dr := mongodb.NewDocReader(strings.NewReader(r.Stdout))
	want := rawDocs(t, sc, "shop.orders")
	for i := 0; ; i++ {
		doc, err := dr.Next()
		if err == io.EOF {
			if i != len(want) {
				t.Fatalf("orders.bson has %d documents, want %d", i, len(want))
			}
			break
		}
		must(t, err)
		if !bytes.Equal(doc, want[i]) {
			t.Fatalf("orders.bson document %d differs from the server's", i)
		}
	}
	if r := e.mustRun("dump", id, "/mongodb/shop/odd%2Fname.x.metadata.json"); !strings.Contains(r.Stdout, `"collectionName":"odd/name.x"`) {
		t.Errorf("escaped collection metadata: %s", r.Stdout)
	}

	dst := src.Another(t)
	dc := mongoClient(t, dst.URI)
	r = e.mustRun("restore", "mongodb", "latest", "--uri", dst.URI, "--jobs", "3")
	if !strings.Contains(r.Stdout, "restored shop.orders: 2500 documents, 2 indexes") {
		t.Errorf("restore output:\n%s", r)
	}
	for _, ns := range nss {
		assertSameCollection(t, sc, ns, dc, ns)
	}
	if got := databaseNames(t, dc); !slices.Equal(got, []string{"crm", "shop"}) {
		t.Errorf("restored databases %q", got)
	}

	t.Run("unchanged data deduplicates", func(t *testing.T) {
		sum2, _ := e.backupJSON(0, "mongodb", "--uri", src.URI)
		read, added := num(sum2["bytes_read"]), num(sum2["data_added"])
		if read < 3<<20 || added > read/50 {
			t.Fatalf("second backup read %v and added %v bytes", read, added)
		}
	})

	t.Run("to-dir", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "dump")
		e.mustRun("--json", "restore", "mongodb", id, "--to-dir", dir)
		for _, f := range []string{"backup.json", "shop/orders.bson", "shop/orders.metadata.json", "crm/notes.bson", "shop/odd%2Fname.x.bson"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Errorf("--to-dir: %v", err)
			}
		}
		b, err := os.ReadFile(filepath.Join(dir, "shop", "orders.bson"))
		must(t, err)
		if string(b) != e.mustRun("dump", id, "/mongodb/shop/orders.bson").Stdout {
			t.Error("--to-dir wrote a different orders.bson")
		}
	})
	e.mustRun("check", "--read-data")
}

// TestMongoNamespaces: what a backup takes (--db, --collection,
// --exclude) and what a restore puts where (--ns-include, --ns-exclude,
// --ns-from/--ns-to, --drop).
func TestMongoNamespaces(t *testing.T) {
	src := testsrv.FerretDB(t)
	sc := mongoClient(t, src.URI)
	seedMongo(t, sc)
	e := initRepo(t)

	t.Run("backup selection", func(t *testing.T) {
		sum, _ := e.backupJSON(0, "mongodb", "--uri", src.URI, "--db", "shop", "--exclude", "shop.blobs", "--exclude", "*.odd*")
		if got := namespaces(e.mongoBackupInfo(str(sum["snapshot_id"]))); !slices.Equal(got, []string{"shop.events", "shop.orders"}) {
			t.Errorf("--db shop --exclude: %q", got)
		}
		sum, _ = e.backupJSON(0, "mongodb", "--uri", src.URI, "--collection", "crm.people", "--collection", "shop.events")
		if got := namespaces(e.mongoBackupInfo(str(sum["snapshot_id"]))); !slices.Equal(got, []string{"crm.people", "shop.events"}) {
			t.Errorf("--collection: %q", got)
		}
		sum, _ = e.backupJSON(0, "mongodb", "--uri", src.URI, "--exclude", "shop")
		if got := namespaces(e.mongoBackupInfo(str(sum["snapshot_id"]))); !slices.Equal(got, []string{"crm.notes", "crm.people"}) {
			t.Errorf("--exclude shop: %q", got)
		}
		n := len(e.snapshots())
		for _, args := range [][]string{{"--collection", "crm.nope"}, {"--db", "nodb"}, {"--collection", "nodot"}, {"--exclude", `bad\`}} {
			r := e.expect(1, append([]string{"backup", "mongodb", "--uri", src.URI}, args...)...)
			if !strings.Contains(r.Stderr, strings.TrimPrefix(args[1], "crm.")) {
				t.Errorf("%q: error does not name it:\n%s", args, r)
			}
		}
		if len(e.snapshots()) != n {
			t.Error("a failed selection left a snapshot")
		}
	})

	sum, _ := e.backupJSON(0, "mongodb", "--uri", src.URI)
	id := str(sum["snapshot_id"])
	dst := src.Another(t)
	dc := mongoClient(t, dst.URI)

	t.Run("include", func(t *testing.T) {
		e.mustRun("--json", "restore", "mongodb", id, "--uri", dst.URI, "--ns-include", "crm.*")
		if got := databaseNames(t, dc); !slices.Equal(got, []string{"crm"}) {
			t.Fatalf("after --ns-include crm.*: databases %q", got)
		}
		assertSameCollection(t, sc, "crm.people", dc, "crm.people")
	})

	t.Run("rename", func(t *testing.T) {
		r := e.mustRun("restore", "mongodb", id, "--uri", dst.URI, "--ns-from", "shop.*", "--ns-to", "shop_copy.*",
			"--ns-exclude", "shop.blobs", "--ns-exclude", "crm")
		if !strings.Contains(r.Stdout, "shop.orders → shop_copy.orders") {
			t.Errorf("output does not show the renaming:\n%s", r)
		}
		if got := collectionNames(t, dc, "shop_copy"); !slices.Equal(got, []string{"events", "odd/name.x", "orders"}) {
			t.Fatalf("shop_copy has %q", got)
		}
		for _, c := range []string{"orders", "events", "odd/name.x"} {
			assertSameCollection(t, sc, "shop."+c, dc, "shop_copy."+c)
		}
		if slices.Contains(databaseNames(t, dc), "shop") {
			t.Error("the original names were restored too")
		}
		r = e.expect(1, "restore", "mongodb", id, "--uri", dst.URI, "--ns-from", "shop.*", "--ns-to", "x.y")
		if !strings.Contains(r.Stderr, "wildcards") {
			t.Errorf("mismatched wildcards:\n%s", r)
		}
		e.expect(1, "restore", "mongodb", id, "--uri", dst.URI, "--ns-from", "shop.*")
	})

	t.Run("drop", func(t *testing.T) {
		people := dc.Database("crm").Collection("people")
		_, err := people.InsertOne(context.Background(), bson.D{{Key: "_id", Value: "intruder"}, {Key: "email", Value: "x@y"}})
		must(t, err)
		_, err = people.DeleteOne(context.Background(), bson.D{{Key: "_id", Value: "p0007"}})
		must(t, err)
		// Without --drop the existing documents collide: reported, exit 3,
		// and the rest is restored.
		r := e.expect(3, "restore", "mongodb", id, "--uri", dst.URI, "--ns-include", "crm")
		if !strings.Contains(r.Stderr, "crm.people") || !strings.Contains(r.Stderr, "299 of 300 documents were not inserted") {
			t.Errorf("collisions not reported:\n%s", r)
		}
		if !strings.Contains(r.Stdout, "restored crm.notes") {
			t.Errorf("the other collection was not restored:\n%s", r)
		}
		// One collection at a time: FerretDB 1.24 on SQLite sometimes
		// leaves a dropped table's index behind when collections of one
		// database are dropped and created concurrently.
		e.mustRun("restore", "mongodb", id, "--uri", dst.URI, "--ns-include", "crm", "--drop", "--jobs", "1")
		assertSameCollection(t, sc, "crm.people", dc, "crm.people")
		assertSameCollection(t, sc, "crm.notes", dc, "crm.notes")
	})
}

// TestMongoFailures: an unreachable server, a bad URI and a server that
// dies in the middle of a dump fail clearly and leave no snapshot; a
// password (in the URI or a file) never shows.
func TestMongoFailures(t *testing.T) {
	e := initRepo(t)

	t.Run("unreachable", func(t *testing.T) {
		port := testsrv.FreePort(t, 0)
		uri := fmt.Sprintf("mongodb://admin:topsecret9@127.0.0.1:%d/?serverSelectionTimeoutMS=500&connectTimeoutMS=500", port)
		r := e.expect(1, "-v", "backup", "mongodb", "--uri", uri)
		if !strings.Contains(r.Stderr, fmt.Sprintf("connect to MongoDB at 127.0.0.1:%d", port)) {
			t.Errorf("error does not say where:\n%s", r)
		}
		if strings.Contains(r.Stdout+r.Stderr, "topsecret9") {
			t.Errorf("the password shows:\n%s", r)
		}
		e.expect(1, "restore", "mongodb", "latest", "--uri", uri) // no backup yet
	})

	t.Run("bad URI", func(t *testing.T) {
		r := e.expect(1, "backup", "mongodb", "--uri", "http://127.0.0.1/")
		if !strings.Contains(r.Stderr, "mongodb://") {
			t.Errorf("bad scheme:\n%s", r)
		}
		r = e.expect(1, "backup", "mongodb")
		if !strings.Contains(r.Stderr, "BUNKER_MONGODB_URI") {
			t.Errorf("no URI:\n%s", r)
		}
		r = e.expect(1, "backup", "mongodb", "--uri", "mongodb://u:pw1234567@127.0.0.1:1/?serverSelectionTimeoutMS=bogus")
		if strings.Contains(r.Stderr, "pw1234567") {
			t.Errorf("the password shows:\n%s", r)
		}
	})

	t.Run("no oplog", func(t *testing.T) {
		// A standalone server has no oplog: asking for it fails clearly.
		src := testsrv.FerretDB(t)
		_, err := mongoClient(t, src.URI).Database("a").Collection("b").InsertOne(context.Background(), bson.D{{Key: "_id", Value: 1}})
		must(t, err)
		for _, args := range [][]string{{"backup", "mongodb", "--oplog"}, {"mongodb", "oplog-archive", "--once"}} {
			r := e.expect(1, append(append([]string{"--json"}, args...), "--uri", src.URI)...)
			if !strings.Contains(r.Stderr, "needs a replica set") || !strings.Contains(r.Stderr, "standalone") {
				t.Errorf("%q on a standalone server:\n%s", args, r)
			}
		}
		sum, _ := e.backupJSON(0, "mongodb", "--uri", src.URI)
		id := str(sum["snapshot_id"])
		dst := src.Another(t)
		for _, args := range [][]string{{"--oplog-replay"}, {"--oplog-limit", "2030-01-01T00:00:00Z"}, {"--oplog-limit", "yesterday"}} {
			r := e.expect(1, append([]string{"restore", "mongodb", id, "--uri", dst.URI}, args...)...)
			if !strings.Contains(r.Stderr, "oplog") {
				t.Errorf("%q without an oplog in the backup:\n%s", args, r)
			}
		}
		if got := databaseNames(t, mongoClient(t, dst.URI)); len(got) != 0 {
			t.Errorf("a refused restore touched the server: %q", got)
		}
		e.mustRun("mongodb", "oplog-expire", "--dry-run")
	})

	t.Run("server killed mid-dump", func(t *testing.T) {
		src := testsrv.FerretDB(t)
		sc := mongoClient(t, src.URI)
		var docs []any
		// More than the first batch (101 documents) holds: however much
		// of it the sockets buffer, the rest needs the server.
		for i := range 200 {
			docs = append(docs, bson.D{{Key: "_id", Value: int32(i)}, {Key: "data", Value: bson.Binary{Data: randBytes(uint64(100+i), 64<<10)}}})
		}
		_, err := sc.Database("big").Collection("data").InsertMany(context.Background(), docs)
		must(t, err)
		// Slow the server's replies so the dump takes a while; kill the
		// server once a part of the data went through.
		before := len(e.snapshots())
		proxy := testsrv.NewProxy(t, src.Addr)
		proxy.SetLatency(2 * time.Millisecond)
		done := make(chan result, 1)
		go func() {
			done <- e.run("backup", "mongodb", "--uri", "mongodb://"+proxy.Addr()+"/?serverSelectionTimeoutMS=1000&connectTimeoutMS=1000")
		}()
		var r result
		killed := false
	wait:
		for {
			select {
			case r = <-done:
				break wait
			case <-time.After(5 * time.Millisecond):
				if !killed && proxy.Stats().BytesToClient > 1<<20 {
					src.Kill()
					killed = true
				}
			}
		}
		if !killed {
			t.Fatalf("the backup ended before the server was killed:\n%s", r)
		}
		if r.Code != 1 || !strings.Contains(r.Stderr, "no snapshot saved") || !strings.Contains(r.Stderr, "big.data") {
			t.Fatalf("backup with a dying server: exit %d\n%s", r.Code, r)
		}
		if n := len(e.snapshots()); n != before {
			t.Fatalf("%d snapshots after a failed backup, want %d", n, before)
		}
		e.mustRun("check", "--read-data")
	})

	t.Run("authentication", func(t *testing.T) {
		const pw = "pa:ss@w/rd 9%x"
		srv := testsrv.FerretDB(t, testsrv.FerretDBOptions{User: "root", Password: pw})
		sc := mongoClient(t, srv.URI)
		_, err := sc.Database("app").Collection("things").InsertOne(context.Background(), bson.D{{Key: "_id", Value: 1}})
		must(t, err)
		pwFile := filepath.Join(t.TempDir(), "pw")
		writeFile(t, pwFile, []byte(pw+"\n"))
		bare := "mongodb://root@" + srv.Addr + "/"

		// The password in the URI, and from a file.
		var outputs strings.Builder
		for _, args := range [][]string{{"--uri", srv.URI}, {"--uri", bare, "--db-password-file", pwFile}} {
			sum, r := e.backupJSON(0, append([]string{"mongodb", "-v"}, args...)...)
			outputs.WriteString(r.Stdout + r.Stderr)
			if got := namespaces(e.mongoBackupInfo(str(sum["snapshot_id"]))); !slices.Equal(got, []string{"app.things"}) {
				t.Errorf("%q: backed up %q", args, got)
			}
		}
		// --users adds admin's users (FerretDB keeps them in
		// admin.system.users with authentication on).
		sum, _ := e.backupJSON(0, "mongodb", "--uri", srv.URI, "--users")
		info := e.mongoBackupInfo(str(sum["snapshot_id"]))
		if !info.Users || !slices.Contains(namespaces(info), "admin.system.users") {
			t.Errorf("--users: %+v", info)
		}
		users := e.mustRun("dump", str(sum["snapshot_id"]), "/mongodb/admin/system.users.bson").Stdout
		if doc, err := mongodb.NewDocReader(strings.NewReader(users)).Next(); err != nil || doc.Lookup("user").StringValue() != "root" {
			t.Errorf("system.users.bson: %v %v", doc, err)
		}

		e.env["BUNKER_MONGODB_URI"] = bare
		e.env["BUNKER_MONGODB_PASSWORD_FILE"] = pwFile
		r := e.mustRun("restore", "mongodb", "latest", "--ns-from", "app.*", "--ns-to", "app2.*")
		outputs.WriteString(r.Stdout + r.Stderr)
		delete(e.env, "BUNKER_MONGODB_URI")
		delete(e.env, "BUNKER_MONGODB_PASSWORD_FILE")
		if got := collectionNames(t, sc, "app2"); !slices.Equal(got, []string{"things"}) {
			t.Errorf("restore with the password from the environment: app2 has %q", got)
		}

		// A wrong password fails clearly without showing itself.
		wrong := filepath.Join(t.TempDir(), "wrong")
		writeFile(t, wrong, []byte("not-the-password"))
		r = e.expect(1, "backup", "mongodb", "--uri", bare, "--db-password-file", wrong)
		if !strings.Contains(r.Stderr, "Authentication failed") || strings.Contains(r.Stderr, "not-the-password") {
			t.Errorf("wrong password:\n%s", r)
		}
		outputs.WriteString(r.Stdout + r.Stderr)
		r = e.expect(1, "backup", "mongodb", "--uri", "mongodb://root:wrong-inline-pw@"+srv.Addr+"/")
		if strings.Contains(r.Stderr, "wrong-inline-pw") {
			t.Errorf("wrong inline password shows:\n%s", r)
		}
		r = e.expect(1, "backup", "mongodb", "--uri", "mongodb://"+srv.Addr+"/", "--db-password-file", pwFile)
		if !strings.Contains(r.Stderr, "names no user") {
			t.Errorf("password without a user:\n%s", r)
		}
		snaps, err := json.Marshal(e.snapshots())
		must(t, err)
		outputs.Write(snaps)
		for _, secret := range []string{pw, "pa:ss", "pa%3Ass"} {
			if strings.Contains(outputs.String(), secret) {
				t.Fatalf("the password (%q) appears in the output or the snapshots:\n%s", secret, outputs.String())
			}
		}
	})
}

// TestMongoToolStandIns: --tool mongodump runs mongodump --archive with the
// password in a 0600 configuration file, never on its command line, and
// stores its output; restore pipes it to mongorestore. Both are stand-in
// scripts found on the PATH of bunker's environment.
func TestMongoToolStandIns(t *testing.T) {
	const pw = "t00l-secret"
	srv := testsrv.FerretDB(t, testsrv.FerretDBOptions{User: "backup", Password: pw})
	e := initRepo(t)
	bin, logs := t.TempDir(), t.TempDir()
	payload := filepath.Join(logs, "payload")
	writeFile(t, payload, randBytes(77, 300<<10))
	// Both scripts log their arguments, refuse a password among them,
	// and check the configuration file.
	check := `#!/bin/sh
PATH=/usr/bin:/bin
printf '%s\n' "$@" > ` + logs + `/$(basename "$0").args
case "$*" in *` + pw + `*) echo "password on the command line" >&2; exit 9;; esac
conf=
for a in "$@"; do case "$a" in --config=*) conf="${a#--config=}";; esac; done
[ -n "$conf" ] || { echo "no --config" >&2; exit 8; }
[ "$(stat -c %a "$conf")" = 600 ] || { echo "config file is not 0600" >&2; exit 7; }
grep -qx 'password: "` + pw + `"' "$conf" || { echo "no password in the config file" >&2; exit 6; }
echo "$conf" > ` + logs + `/$(basename "$0").conf
`
	writeExec := func(name, body string) {
		t.Helper()
		must(t, os.WriteFile(filepath.Join(bin, name), []byte(check+body), 0o755))
	}
	writeExec("mongodump", "cat "+payload+"\n")
	writeExec("mongorestore", "cmp - "+payload+" || exit 5\ntouch "+logs+"/restored\n")
	e.env["PATH"] = bin

	sum, _ := e.backupJSON(0, "mongodb", "--uri", srv.URI, "--tool", "mongodump", "--jobs", "3")
	meta, _ := sum["metadata"].(map[string]any)
	if meta["tool"] != "mongodump" || meta["topology"] != "standalone" {
		t.Errorf("metadata %v", meta)
	}
	id := str(sum["snapshot_id"])
	want, err := os.ReadFile(payload)
	must(t, err)
	if r := e.mustRun("dump", id, "/mongodb/dump.archive"); r.Stdout != string(want) {
		t.Fatalf("stored archive differs (%d bytes, want %d)", len(r.Stdout), len(want))
	}
	args, err := os.ReadFile(filepath.Join(logs, "mongodump.args"))
	must(t, err)
	for _, a := range []string{"--archive", "--uri=mongodb://backup@" + srv.Addr + "/", "--numParallelCollections=3"} {
		if !slices.Contains(strings.Split(strings.TrimSpace(string(args)), "\n"), a) {
			t.Errorf("mongodump arguments lack %q:\n%s", a, args)
		}
	}
	conf, err := os.ReadFile(filepath.Join(logs, "mongodump.conf"))
	must(t, err)
	if _, err := os.Stat(strings.TrimSpace(string(conf))); !os.IsNotExist(err) {
		t.Errorf("the configuration file with the password was left behind: %v", err)
	}

	e.mustRun("restore", "mongodb", id, "--uri", srv.URI, "--drop", "--ns-include", "shop", "--ns-from", "a.*", "--ns-to", "b.*")
	if _, err := os.Stat(filepath.Join(logs, "restored")); err != nil {
		t.Fatal("mongorestore did not get the archive")
	}
	args, err = os.ReadFile(filepath.Join(logs, "mongorestore.args"))
	must(t, err)
	for _, a := range []string{"--archive", "--drop", "--nsInclude=shop.*", "--nsFrom=a.*", "--nsTo=b.*", "--uri=mongodb://backup@" + srv.Addr + "/"} {
		if !slices.Contains(strings.Split(strings.TrimSpace(string(args)), "\n"), a) {
			t.Errorf("mongorestore arguments lack %q:\n%s", a, args)
		}
	}

	t.Run("failing tool", func(t *testing.T) {
		writeExec("mongodump", "head -c 100000 "+payload+"\necho 'boom: lost the server' >&2\nexit 1\n")
		n := len(e.snapshots())
		r := e.expect(1, "backup", "mongodb", "--uri", srv.URI, "--tool", "mongodump")
		if !strings.Contains(r.Stderr, "boom: lost the server") || strings.Contains(r.Stderr, pw) {
			t.Errorf("tool failure:\n%s", r)
		}
		if len(e.snapshots()) != n {
			t.Error("a failed mongodump left a snapshot")
		}
	})

	t.Run("missing tool", func(t *testing.T) {
		r := e.expect(1, "backup", "mongodb", "--uri", srv.URI, "--tool", "mongodump", "--tool-dir", t.TempDir())
		if !strings.Contains(r.Stderr, "mongodump not found") {
			t.Errorf("missing tool:\n%s", r)
		}
		e.env["PATH"] = t.TempDir()
		r = e.expect(1, "restore", "mongodb", id, "--uri", srv.URI)
		if !strings.Contains(r.Stderr, "mongorestore not found") {
			t.Errorf("missing mongorestore:\n%s", r)
		}
	})
}
