package mongodb

import (
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func entry(t testing.TB, ts uint32, op, ns string, o bson.D) bson.Raw {
	t.Helper()
	d := bson.D{{Key: "ts", Value: bson.Timestamp{T: ts, I: 1}}, {Key: "op", Value: op}, {Key: "ns", Value: ns},
		{Key: "ui", Value: bson.Binary{Subtype: 4, Data: make([]byte, 16)}}, {Key: "o", Value: o}}
	return mustMarshal(t, d)
}

func TestPrepareEntry(t *testing.T) {
	exShop, _ := ParsePattern("shop.secret")
	sel := &Selector{Exclude: []*Pattern{exShop}}
	doc := bson.D{{Key: "_id", Value: 1}}
	for _, tc := range []struct {
		name string
		raw  bson.Raw
		want entryAction
	}{
		{"insert", entry(t, 1, "i", "shop.orders", doc), entryApply},
		{"noop", entry(t, 1, "n", "", bson.D{{Key: "msg", Value: "periodic noop"}}), entrySkip},
		{"local", entry(t, 1, "i", "local.x", doc), entrySkip},
		{"sessions", entry(t, 1, "u", "config.system.sessions", doc), entrySkip},
		{"auth", entry(t, 1, "i", "admin.system.users", doc), entrySkip},
		{"excluded", entry(t, 1, "i", "shop.secret", doc), entrySkip},
		{"create", entry(t, 1, "c", "shop.$cmd", bson.D{{Key: "create", Value: "orders2"}}), entryApply},
		{"create excluded", entry(t, 1, "c", "shop.$cmd", bson.D{{Key: "create", Value: "secret"}}), entrySkip},
		{"rename excluded", entry(t, 1, "c", "shop.$cmd", bson.D{{Key: "renameCollection", Value: "shop.secret"}, {Key: "to", Value: "shop.x"}}), entrySkip},
		{"dropDatabase", entry(t, 1, "c", "shop.$cmd", bson.D{{Key: "dropDatabase", Value: 1}}), entryApply},
	} {
		out, ts, act, err := prepareEntry(tc.raw, sel)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if ts != (Timestamp{T: 1, I: 1}) || act != tc.want {
			t.Errorf("%s: ts %v action %v, want %v", tc.name, ts, act, tc.want)
		}
		if act == entryApply {
			if _, err := out.LookupErr("ui"); err == nil {
				t.Errorf("%s: the collection UUID was kept", tc.name)
			}
			if out.Validate() != nil || out.Lookup("op").StringValue() != tc.raw.Lookup("op").StringValue() {
				t.Errorf("%s: bad output %s", tc.name, out)
			}
		}
	}

	// A transaction: its operations are filtered, their UUIDs dropped.
	txn := entry(t, 5, "c", "admin.$cmd", bson.D{{Key: "applyOps", Value: bson.A{
		entry(t, 5, "i", "shop.orders", doc), entry(t, 5, "i", "shop.secret", doc), entry(t, 5, "d", "crm.people", doc),
	}}})
	out, _, act, err := prepareEntry(txn, sel)
	if err != nil || act != entryApply {
		t.Fatalf("transaction: %v %v", act, err)
	}
	ops, err := out.Lookup("o", "applyOps").Array().Values()
	if err != nil || len(ops) != 2 {
		t.Fatalf("transaction keeps %d operations (%v): %s", len(ops), err, out)
	}
	for _, op := range ops {
		if _, err := op.Document().LookupErr("ui"); err == nil || op.Document().Lookup("ns").StringValue() == "shop.secret" {
			t.Fatalf("transaction operation %s", op)
		}
	}
	only := entry(t, 5, "c", "admin.$cmd", bson.D{{Key: "applyOps", Value: bson.A{entry(t, 5, "i", "shop.secret", doc)}}})
	if _, _, act, err := prepareEntry(only, sel); err != nil || act != entrySkip {
		t.Fatalf("a transaction with nothing wanted: %v %v", act, err)
	}
	if _, _, _, err := prepareEntry(mustMarshal(t, bson.D{{Key: "op", Value: "i"}}), sel); err == nil {
		t.Fatal("an entry without a timestamp was accepted")
	}
}

func ts(t uint32) Timestamp { return Timestamp{T: t, I: 1} }

func tsp(t uint32) *Timestamp { v := ts(t); return &v }

func TestPlanReplay(t *testing.T) {
	chunks := []ChunkInfo{
		{ID: "c3", After: tsp(30), Start: ts(31), End: ts(40)},
		{ID: "c1", Start: ts(5), End: ts(20)},
		{ID: "c2", After: tsp(20), Start: ts(21), End: ts(30)},
		{ID: "c4", After: tsp(40), Start: ts(45), End: ts(50)},
	}
	ids := func(p []ChunkInfo) string {
		var s []string
		for _, c := range p {
			s = append(s, c.ID)
		}
		return strings.Join(s, ",")
	}
	for _, tc := range []struct {
		base, limit uint32
		want        string
		err         string
	}{
		{10, 25, "c1,c2", ""},
		{20, 25, "c2", ""},
		{10, 50, "c1,c2,c3,c4", ""},
		{35, 41, "c3,c4", ""},
		{10, 10, "", ""},
		{10, 60, "", "reaches 50:1"},
		{2, 25, "", "gap after 2:1"},
	} {
		p, err := PlanReplay(ts(tc.base), ts(tc.limit), chunks)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%d→%d: err %v, want %q", tc.base, tc.limit, err, tc.err)
			}
			continue
		}
		if err != nil || ids(p) != tc.want {
			t.Errorf("%d→%d: %q (%v), want %q", tc.base, tc.limit, ids(p), err, tc.want)
		}
	}
	// A chunk missing in the middle is a gap.
	if _, err := PlanReplay(ts(10), ts(45), []ChunkInfo{chunks[1], chunks[0]}); err == nil || !strings.Contains(err.Error(), "gap") {
		t.Errorf("missing chunk: %v", err)
	}
	// Overlapping chunks (an archiver restarted from an older point) are fine.
	over := []ChunkInfo{{ID: "a", Start: ts(1), End: ts(20)}, {ID: "b", After: tsp(15), Start: ts(16), End: ts(30)}}
	if p, err := PlanReplay(ts(10), ts(25), over); err != nil || ids(p) != "a,b" {
		t.Errorf("overlap: %q %v", ids(p), err)
	}
}

func TestExpiredChunks(t *testing.T) {
	chunks := []ChunkInfo{{ID: "a", Start: ts(1), End: ts(10)}, {ID: "b", Start: ts(11), End: ts(20)}, {ID: "c", Start: ts(21), End: ts(30)}}
	var got []string
	for _, c := range ExpiredChunks(ts(20), chunks) {
		got = append(got, c.ID)
	}
	if strings.Join(got, ",") != "a,b" {
		t.Fatalf("expired %q", got)
	}
	if len(ExpiredChunks(ts(5), chunks)) != 0 {
		t.Fatal("a chunk the oldest backup needs was expired")
	}
}

func TestChunkInfo(t *testing.T) {
	ci := ChunkInfo{ID: "x", After: tsp(3), Start: ts(4), End: ts(9), Entries: 12}
	got, err := ParseChunkInfo("x", ci.Map())
	if err != nil || got.After == nil || *got.After != *ci.After || got.Start != ci.Start || got.End != ci.End || got.Entries != 12 {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	for _, m := range []map[string]string{
		{},
		{"oplog_start": "5:1", "oplog_end": "4:1"},
		{"oplog_start": "5:1", "oplog_end": "6:1", "oplog_after": "5:1"},
		{"oplog_start": "5:1", "oplog_end": "6:1", "oplog_after": "x"},
	} {
		if _, err := ParseChunkInfo("x", m); err == nil {
			t.Errorf("accepted %v", m)
		}
	}
	if a, b := ChunkFile(Timestamp{T: 9, I: 2}), ChunkFile(Timestamp{T: 10, I: 1}); a >= b {
		t.Errorf("chunk files do not sort by time: %s %s", a, b)
	}
}

// FuzzPrepareEntry: any document is either refused or turned into a valid
// document without "ui".
func FuzzPrepareEntry(f *testing.F) {
	doc := bson.D{{Key: "_id", Value: 1}}
	f.Add([]byte(entry(f, 1, "i", "a.b", doc)))
	f.Add([]byte(entry(f, 1, "c", "a.$cmd", bson.D{{Key: "applyOps", Value: bson.A{entry(f, 1, "u", "a.b", doc)}}})))
	f.Add([]byte(entry(f, 1, "c", "a.$cmd", bson.D{{Key: "drop", Value: "b"}})))
	f.Fuzz(func(t *testing.T, data []byte) {
		raw := bson.Raw(data)
		if raw.Validate() != nil {
			return
		}
		out, _, act, err := prepareEntry(raw, &Selector{})
		if err != nil || act != entryApply {
			return
		}
		if err := out.Validate(); err != nil {
			t.Fatalf("output is not valid BSON: %v", err)
		}
		if _, err := out.LookupErr("ui"); err == nil {
			t.Fatal("ui kept")
		}
	})
}
